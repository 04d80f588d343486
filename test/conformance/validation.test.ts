/**
 * SPEC.md 2.3 (identifiers), 2.4 (validation), 2.5 (fresh copies) and 2.6 (errors), against both
 * backends: for every public method, bad arguments reject with InvalidInput whose issues start with
 * the dotted path of the offending field (rooted at the argument's name in the contract), and
 * nothing is written.
 */
import { describe, expect, test, vi } from 'vitest';
import * as api from '../../src/index.js';
import {
  claimCompletion,
  isStoreError,
  type JsonValue,
  leaseCompletion,
  leaseFence,
  type PendingTurnInput,
  type RuntimeStore,
  type SessionExecutionLease,
  type SessionExecutionLeaseFence,
  type TurnInputClaim,
} from '../../src/index.js';
import { describeBackends } from './backends.js';
import {
  acquire,
  assertInvalidInput,
  at,
  claimActive,
  enqueue,
  expectInvalidInput,
  expectStoreError,
  minimalCommit,
  nt,
  O,
  rejection,
  thrown,
} from './fixtures.js';

// ------------------------------------------------------------------ bad values

/** Values that are not identifiers (SPEC 2.3). */
const BAD_IDS: unknown[] = [
  '',
  '\uD800',
  'a\uDC00b',
  'x'.repeat(4097),
  'é'.repeat(2049), // 4098 bytes in UTF-8
  '🎉'.repeat(1024) + 'x', // 4097 bytes
  42,
  null,
  undefined,
  {},
  ['a'],
];

const BAD_TTLS: unknown[] = [-1, 86_400_001, 1.5, Number.NaN, Number.POSITIVE_INFINITY, '10', null, undefined];
const BAD_MAX_INPUTS: unknown[] = [-1, 1001, 1.5, Number.NaN, Number.POSITIVE_INFINITY, '1', null, undefined];
const BAD_SAFE_INTS: unknown[] = [-1, 1.5, 2 ** 53, Number.NaN, Number.POSITIVE_INFINITY, '1', null];

function cyclicObject(): unknown {
  const o: Record<string, unknown> = { a: 1 };
  o.self = o;
  return o;
}
function cyclicArray(): unknown {
  const a: unknown[] = [1];
  a.push([a]);
  return a;
}
class Custom {
  a = 1;
}

/** Values that are not JSON payloads (SPEC 2.2). */
const BAD_PAYLOADS: Array<[string, unknown]> = [
  ['NaN', Number.NaN],
  ['Infinity', Number.POSITIVE_INFINITY],
  ['-Infinity', Number.NEGATIVE_INFINITY],
  ['nested NaN', { a: { b: [1, Number.NaN] } }],
  ['function', () => 1],
  ['nested function', { f: () => 1 }],
  ['Date', new Date(0)],
  ['nested Date', { when: new Date(0) }],
  ['Map', new Map([['a', 1]])],
  ['Set', new Set([1])],
  ['Uint8Array', new Uint8Array([1, 2])],
  ['bigint', 10n],
  ['symbol', Symbol('s')],
  ['cyclic object', cyclicObject()],
  ['cyclic array', cyclicArray()],
  ['class instance', new Custom()],
  ['object with a custom prototype', Object.create({ inherited: 1 })],
  ['undefined (absent input)', undefined],
];

// ------------------------------------------------------------------ the seeded session

interface Seed {
  store: RuntimeStore;
  lease: SessionExecutionLease;
  fence: SessionExecutionLeaseFence;
  /** A deferred next-turn row, claimable (source key 'kp'). */
  P: PendingTurnInput;
  /** An accepted row of turn 't', held by claim K. */
  Q: PendingTurnInput;
  K: TurnInputClaim;
  /** A pending_active row of turn 't2', claimable at after_work. */
  R: PendingTurnInput;
  /** A cancelled row (source key 'kt'). */
  T: PendingTurnInput;
  /** Asserts that no state the seed can observe changed. */
  unchanged(label: string): Promise<void>;
}

async function seed(store: RuntimeStore): Promise<Seed> {
  const T = await enqueue(store, 's', nt('tomb', { sourceKey: 'kt' }));
  await store.cancelPendingTurnInput('s', T.inputId);
  const P = await enqueue(store, 's', nt('p', { sourceKey: 'kp' }));
  const Q = await enqueue(store, 's', at('t', undefined, 'q', { sourceKey: 'kq' }));
  const R = await enqueue(store, 's', at('t2', undefined, 'r'));
  const lease = await acquire(store, 's', O('w'));
  const K = (await claimActive(store, lease, 't', 'after_work'))!;
  expect(K.inputs.map((r) => r.inputId)).toEqual([Q.inputId]);
  const fence = leaseFence(lease);
  const unchanged = async (label: string) => {
    expect(await store.listPendingTurnInputs('s'), `${label}: list of s`).toEqual([P, R]);
    expect(await store.tryClaimSessionExecutionLease('s', O('probe'), 1), `${label}: lease of s`).toEqual({
      outcome: 'busy',
      holder: lease,
    });
    expect(await store.listPendingTurnInputs('free'), `${label}: list of free`).toEqual([]);
    // Source-key replays read without writing.
    expect(await enqueue(store, 's', nt('tomb', { sourceKey: 'kt' })), `${label}: tombstone`).toEqual({
      ...T,
      state: 'cancelled',
    });
    expect(await enqueue(store, 's', at('t', undefined, 'q', { sourceKey: 'kq' })), `${label}: accepted`).toEqual({
      ...Q,
      state: 'accepted',
    });
  };
  return { store, lease, fence, P, Q, K, R, T, unchanged };
}

type Case = [label: string, call: () => Promise<unknown>, path: string];

/**
 * Runs every case and collects every failure (so one bad case does not hide the others), then
 * asserts there were none.
 */
async function runCases(s: Seed, cases: Case[]): Promise<void> {
  const failures: string[] = [];
  for (const [label, call, path] of cases) {
    // SPEC 2.4: a failure *rejects*; every method is async, so a synchronous throw is a bug too.
    let promise: Promise<unknown>;
    try {
      promise = call();
    } catch (err) {
      failures.push(`${label}: threw synchronously instead of returning a rejected promise: ${String(err)}`);
      continue;
    }
    try {
      assertInvalidInput(await rejection(promise), path);
    } catch (err) {
      failures.push(`${label}: ${(err as Error).message}`);
    }
    try {
      await s.unchanged(label);
    } catch (err) {
      failures.push(`${label}: state changed: ${(err as Error).message}`);
    }
  }
  expect(failures).toEqual([]);
}

/** A free session's lease was never taken by any of the rejected calls: its first acquisition is generation 1. */
async function freeNeverLeased(store: RuntimeStore): Promise<void> {
  const r = await store.tryClaimSessionExecutionLease('free', O('probe'), 1);
  expect(r.outcome).toBe('acquired');
  if (r.outcome === 'acquired') expect(r.lease.fencingToken).toBe(1);
}

const ownerVariants = (root: string): Array<[string, unknown, string]> => [
  ['null owner', null, root],
  ['string owner', 'w', root],
  ['empty owner', {}, `${root}.ownerId`],
  ['empty ownerId', { ownerId: '', incarnationId: 'i' }, `${root}.ownerId`],
  ['missing incarnationId', { ownerId: 'o' }, `${root}.incarnationId`],
  ['lone surrogate incarnationId', { ownerId: 'o', incarnationId: '\uD800' }, `${root}.incarnationId`],
  ['4097-byte ownerId', { ownerId: 'x'.repeat(4097), incarnationId: 'i' }, `${root}.ownerId`],
  ['unknown liveness kind', { ownerId: 'o', incarnationId: 'i', liveness: { kind: 'zombie' } }, `${root}.liveness`],
  [
    'pid 0',
    {
      ownerId: 'o',
      incarnationId: 'i',
      liveness: { kind: 'local_process', hostId: 'h', bootId: 'b', pid: 0, processStart: '1' },
    },
    `${root}.liveness`,
  ],
  [
    'pid 1.5',
    {
      ownerId: 'o',
      incarnationId: 'i',
      liveness: { kind: 'local_process', hostId: 'h', bootId: 'b', pid: 1.5, processStart: '1' },
    },
    `${root}.liveness`,
  ],
  [
    'missing hostId',
    { ownerId: 'o', incarnationId: 'i', liveness: { kind: 'local_process', bootId: 'b', pid: 5, processStart: '1' } },
    `${root}.liveness`,
  ],
];

// `root` names the argument as a whole; its fields are rooted at it, or relative to it when the
// fence is the method's single structured argument (release: SPEC 2.4 example form).
const fenceVariants = (
  fence: SessionExecutionLeaseFence,
  root: string,
  relative = false,
): Array<[string, unknown, string]> => {
  const f = relative ? '' : `${root}.`;
  return [
    ['null', null, root],
    ['a string', 'fence', root],
    ['empty object', {}, `${f}sessionId`],
    ['empty sessionId', { ...fence, sessionId: '' }, `${f}sessionId`],
    ['lone surrogate sessionId', { ...fence, sessionId: '\uD800' }, `${f}sessionId`],
    ['missing leaseToken', { ...fence, leaseToken: undefined }, `${f}leaseToken`],
    ['empty leaseToken', { ...fence, leaseToken: '' }, `${f}leaseToken`],
    ['4097-byte leaseToken', { ...fence, leaseToken: 'x'.repeat(4097) }, `${f}leaseToken`],
    ...BAD_SAFE_INTS.map((v): [string, unknown, string] => [
      `fencingToken ${String(v)}`,
      { ...fence, fencingToken: v },
      `${f}fencingToken`,
    ]),
    ['owner null', { ...fence, owner: null }, `${f}owner`],
    [
      'owner with bad pid',
      {
        ...fence,
        owner: {
          ...fence.owner,
          liveness: { kind: 'local_process', hostId: 'h', bootId: 'b', pid: -3, processStart: '1' },
        },
      },
      `${f}owner`,
    ],
  ];
};

describeBackends('validation', (b) => {
  // ------------------------------------------------------------------ lease methods

  test('tryClaimSessionExecutionLease rejects bad sessionId, owner and leaseTtlMs', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const s = await seed(store);
    const cases: Case[] = [
      ...BAD_IDS.map(
        (v): Case => [
          `sessionId ${JSON.stringify(v)?.slice(0, 20)}`,
          () => store.tryClaimSessionExecutionLease(v as string, O('x'), 1000),
          'sessionId',
        ],
      ),
      ...ownerVariants('owner').map(
        ([l, v, p]): Case => [l, () => store.tryClaimSessionExecutionLease('free', v as never, 1000), p],
      ),
      // The holder itself with a bad ttl: a re-entry would move the expiry.
      ...BAD_TTLS.map(
        (v): Case => [
          `leaseTtlMs ${String(v)}`,
          () => store.tryClaimSessionExecutionLease('s', O('w'), v as number),
          'leaseTtlMs',
        ],
      ),
      ...BAD_TTLS.map(
        (v): Case => [
          `leaseTtlMs ${String(v)} (free)`,
          () => store.tryClaimSessionExecutionLease('free', O('w'), v as number),
          'leaseTtlMs',
        ],
      ),
    ];
    await runCases(s, cases);
    // Every problem is reported, each with its own path.
    await expectInvalidInput(
      store.tryClaimSessionExecutionLease('', { ownerId: '' } as never, -1),
      'sessionId',
      'owner',
      'leaseTtlMs',
    );
    await freeNeverLeased(store);
  });

  test('leaseTtlMs bounds are inclusive: 0 and 86_400_000 are accepted', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const a = await acquire(store, 'a', O('w'), 86_400_000);
    expect(a.expiresAtEpochMs).toBe(a.claimedAtEpochMs + 86_400_000);
    const z = await acquire(store, 'z', O('w'), 0);
    expect(z.expiresAtEpochMs).toBe(z.claimedAtEpochMs);
  });

  test('reclaimSessionExecutionLease rejects bad sessionId, owner, observedHolder and leaseTtlMs', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const s = await seed(store);
    const observed = { ...s.fence, sessionId: 'free' };
    const cases: Case[] = [
      ...BAD_IDS.map(
        (v): Case => [
          `sessionId ${String(v).slice(0, 10)}`,
          () => store.reclaimSessionExecutionLease(v as string, O('x'), observed, 1000),
          'sessionId',
        ],
      ),
      ...ownerVariants('owner').map(
        ([l, v, p]): Case => [l, () => store.reclaimSessionExecutionLease('free', v as never, observed, 1000), p],
      ),
      ...fenceVariants(observed, 'observedHolder').map(
        ([l, v, p]): Case => [l, () => store.reclaimSessionExecutionLease('free', O('x'), v as never, 1000), p],
      ),
      ...BAD_TTLS.map(
        (v): Case => [
          `leaseTtlMs ${String(v)}`,
          () => store.reclaimSessionExecutionLease('free', O('x'), observed, v as number),
          'leaseTtlMs',
        ],
      ),
    ];
    await runCases(s, cases);
    await freeNeverLeased(store);
  });

  test('renewSessionExecutionLease rejects a bad fence or leaseTtlMs', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const s = await seed(store);
    const cases: Case[] = [
      ...fenceVariants(s.fence, 'fence').map(
        ([l, v, p]): Case => [l, () => store.renewSessionExecutionLease(v as never, 1000), p],
      ),
      // With the valid fence: a renew would move the expiry.
      ...BAD_TTLS.map(
        (v): Case => [
          `leaseTtlMs ${String(v)}`,
          () => store.renewSessionExecutionLease(s.fence, v as number),
          'leaseTtlMs',
        ],
      ),
    ];
    await runCases(s, cases);
  });

  test('releaseSessionExecutionLease rejects a bad completion and releases nothing', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const s = await seed(store);
    const completion = leaseCompletion(s.lease);
    const cases: Case[] = [
      ...fenceVariants(completion, 'completion', true).map(
        ([l, v, p]): Case => [l, () => store.releaseSessionExecutionLease(v as never), p],
      ),
      ['undefined', () => store.releaseSessionExecutionLease(undefined as never), 'completion'],
    ];
    await runCases(s, cases);
  });

  // ------------------------------------------------------------------ turn-input methods

  test('enqueuePendingTurnInput rejects bad drafts, payloads included, and writes nothing', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const s = await seed(store);
    const ok = { sessionId: 's', ingress: { scope: 'next_turn' }, input: { text: 'x' } };
    const protoNoInput = JSON.parse('{"sessionId":"s","ingress":{"scope":"next_turn"},"__proto__":{"input":"x"}}');
    const protoNoIngress = JSON.parse('{"sessionId":"s","input":1,"__proto__":{"ingress":{"scope":"next_turn"}}}');
    const cases: Case[] = [
      ['null draft', () => store.enqueuePendingTurnInput(null as never), 'draft'],
      ['string draft', () => store.enqueuePendingTurnInput('draft' as never), 'draft'],
      ['array draft', () => store.enqueuePendingTurnInput([] as never), 'draft'],
      ...BAD_IDS.map(
        (v): Case => [
          `sessionId ${String(v).slice(0, 10)}`,
          () => store.enqueuePendingTurnInput({ ...ok, sessionId: v } as never),
          'sessionId',
        ],
      ),
      ...BAD_IDS.filter((v) => v !== undefined).map(
        (v): Case => [
          `inputId ${String(v).slice(0, 10)}`,
          () => store.enqueuePendingTurnInput({ ...ok, inputId: v } as never),
          'inputId',
        ],
      ),
      ...BAD_IDS.filter((v) => v !== undefined).map(
        (v): Case => [
          `sourceKey ${String(v).slice(0, 10)}`,
          () => store.enqueuePendingTurnInput({ ...ok, sourceKey: v } as never),
          'sourceKey',
        ],
      ),
      ['ingress missing', () => store.enqueuePendingTurnInput({ ...ok, ingress: undefined } as never), 'ingress'],
      [
        'ingress scope bogus',
        () => store.enqueuePendingTurnInput({ ...ok, ingress: { scope: 'soon' } } as never),
        'ingress',
      ],
      [
        'active without turnId',
        () => store.enqueuePendingTurnInput({ ...ok, ingress: { scope: 'active_turn' } } as never),
        'ingress',
      ],
      [
        'active with empty turnId',
        () => store.enqueuePendingTurnInput({ ...ok, ingress: { scope: 'active_turn', turnId: '' } } as never),
        'ingress',
      ],
      [
        'active with bad minBoundary',
        () =>
          store.enqueuePendingTurnInput({
            ...ok,
            ingress: { scope: 'active_turn', turnId: 't', minBoundary: 'whenever' },
          } as never),
        'ingress',
      ],
      ...BAD_PAYLOADS.map(
        ([l, v]): Case => [`input ${l}`, () => store.enqueuePendingTurnInput({ ...ok, input: v } as never), 'input'],
      ),
      ...BAD_PAYLOADS.map(
        ([l, v]): Case => [
          `input ${l} under P's source key`,
          () => store.enqueuePendingTurnInput({ ...ok, sourceKey: 'kp', input: v } as never),
          'input',
        ],
      ),
      ...BAD_PAYLOADS.filter(([l]) => !l.startsWith('undefined')).map(
        ([l, v]): Case => [
          `nested input ${l}`,
          () => store.enqueuePendingTurnInput({ ...ok, input: { deep: [{ x: v }] } } as never),
          'input',
        ],
      ),
      ['__proto__ smuggles the input', () => store.enqueuePendingTurnInput(protoNoInput), 'input'],
      ['__proto__ smuggles the ingress', () => store.enqueuePendingTurnInput(protoNoIngress), 'ingress'],
    ];
    await runCases(s, cases);
    // The seq counter did not move either.
    expect((await enqueue(store, 's', nt('next'))).enqueueSeq).toBe(s.R.enqueueSeq + 1);
    expect(({} as Record<string, unknown>).input).toBeUndefined();
    expect(({} as Record<string, unknown>).ingress).toBeUndefined();
  });

  test('identifiers at the limits are accepted: 4096 bytes, any character', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const ids = ['x'.repeat(4096), 'é'.repeat(2048), '🎉'.repeat(1024), 'a:b{c}%d e\n\t\u0000', '{s}', 'a}:x'];
    for (const id of ids) {
      const row = await store.enqueuePendingTurnInput({
        sessionId: id,
        inputId: id,
        sourceKey: id,
        ingress: { scope: 'active_turn', turnId: id },
        input: id,
      });
      expect(row.inputId).toBe(id);
      expect(row.sessionId).toBe(id);
      expect(row.sourceKey).toBe(id);
      expect(row.ingress).toEqual({ scope: 'active_turn', turnId: id, minBoundary: 'after_work' });
      expect(await store.listPendingTurnInputs(id)).toEqual([row]);
      const lease = await acquire(store, id, { ownerId: id, incarnationId: id });
      expect(lease.sessionId).toBe(id);
    }
  });

  test('listPendingTurnInputs rejects a bad sessionId', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const s = await seed(store);
    await runCases(
      s,
      BAD_IDS.map(
        (v): Case => [
          `sessionId ${String(v).slice(0, 10)}`,
          () => store.listPendingTurnInputs(v as string),
          'sessionId',
        ],
      ),
    );
  });

  test('cancelPendingTurnInputs rejects bad arguments and cancels nothing, not even the valid targets', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const s = await seed(store);
    const good = { kind: 'source_key', value: 'kp' };
    const tooMany = [good, ...Array.from({ length: 1000 }, (_, i) => ({ kind: 'input_id', value: `missing-${i}` }))];
    const cases: Case[] = [
      ...BAD_IDS.map(
        (v): Case => [
          `sessionId ${String(v).slice(0, 10)}`,
          () => store.cancelPendingTurnInputs(v as string, [good as never]),
          'sessionId',
        ],
      ),
      ['targets null', () => store.cancelPendingTurnInputs('s', null as never), 'targets'],
      ['targets a string', () => store.cancelPendingTurnInputs('s', 'kp' as never), 'targets'],
      ['targets an object', () => store.cancelPendingTurnInputs('s', good as never), 'targets'],
      ['1001 targets', () => store.cancelPendingTurnInputs('s', tooMany as never), 'targets'],
      ['bad kind', () => store.cancelPendingTurnInputs('s', [good, { kind: 'seq', value: '1' }] as never), 'targets.1'],
      [
        'empty value',
        () => store.cancelPendingTurnInputs('s', [good, { kind: 'input_id', value: '' }] as never),
        'targets.1',
      ],
      ['missing value', () => store.cancelPendingTurnInputs('s', [good, { kind: 'input_id' }] as never), 'targets.1'],
      [
        'lone surrogate value',
        () => store.cancelPendingTurnInputs('s', [good, { kind: 'source_key', value: '\uD800' }] as never),
        'targets.1',
      ],
      ['null target', () => store.cancelPendingTurnInputs('s', [good, null] as never), 'targets.1'],
    ];
    await runCases(s, cases);
  });

  test('cancel accepts exactly 1000 targets', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const p = await enqueue(store, 's', nt('p', { sourceKey: 'kp' }));
    const targets = [
      { kind: 'source_key' as const, value: 'kp' },
      ...Array.from({ length: 999 }, (_, i) => ({ kind: 'input_id' as const, value: `missing-${i}` })),
    ];
    const results = await store.cancelPendingTurnInputs('s', targets);
    expect(results).toHaveLength(1000);
    expect(results[0]!.outcome).toEqual({ outcome: 'cancelled', input: { ...p, state: 'cancelled' } });
    expect(results.slice(1).every((r) => r.outcome.outcome === 'not_found')).toBe(true);
  });

  test('cancelPendingTurnInput rejects a bad sessionId or inputId', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const s = await seed(store);
    const cases: Case[] = [
      ...BAD_IDS.map(
        (v): Case => [
          `sessionId ${String(v).slice(0, 10)}`,
          () => store.cancelPendingTurnInput(v as string, s.P.inputId),
          'sessionId',
        ],
      ),
      ...BAD_IDS.map(
        (v): Case => [
          `inputId ${String(v).slice(0, 10)}`,
          () => store.cancelPendingTurnInput('s', v as string),
          'inputId',
        ],
      ),
    ];
    await runCases(s, cases);
  });

  test('cancelPendingTurnInputSuffix rejects a bad sessionId or anchor', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const s = await seed(store);
    const anchor = { kind: 'source_key' as const, value: 'kp' };
    const cases: Case[] = [
      ...BAD_IDS.map(
        (v): Case => [
          `sessionId ${String(v).slice(0, 10)}`,
          () => store.cancelPendingTurnInputSuffix(v as string, anchor),
          'sessionId',
        ],
      ),
      ['anchor null', () => store.cancelPendingTurnInputSuffix('s', null as never), 'anchor'],
      ['anchor empty', () => store.cancelPendingTurnInputSuffix('s', {} as never), 'anchor'],
      [
        'anchor bad kind',
        () => store.cancelPendingTurnInputSuffix('s', { kind: 'seq', value: 'kp' } as never),
        'anchor',
      ],
      [
        'anchor empty value',
        () => store.cancelPendingTurnInputSuffix('s', { kind: 'source_key', value: '' }),
        'anchor',
      ],
      [
        'anchor 4097 bytes',
        () => store.cancelPendingTurnInputSuffix('s', { kind: 'input_id', value: 'x'.repeat(4097) }),
        'anchor',
      ],
    ];
    await runCases(s, cases);
  });

  test('claimNextTurnInputs rejects a bad request before the maxInputs 0 shortcut and claims nothing', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const s = await seed(store);
    const ok = { sessionId: 's', fence: s.fence, owner: O('w'), leaseTtlMs: 1000, maxInputs: 10 };
    const cases: Case[] = [
      ['null request', () => store.claimNextTurnInputs(null as never), 'request'],
      ...BAD_IDS.map(
        (v): Case => [
          `sessionId ${String(v).slice(0, 10)}`,
          () => store.claimNextTurnInputs({ ...ok, sessionId: v } as never),
          'sessionId',
        ],
      ),
      ...fenceVariants(s.fence, 'fence').map(
        ([l, v, p]): Case => [l, () => store.claimNextTurnInputs({ ...ok, fence: v } as never), p],
      ),
      ['fence missing', () => store.claimNextTurnInputs({ ...ok, fence: undefined } as never), 'fence'],
      ...ownerVariants('owner').map(
        ([l, v, p]): Case => [l, () => store.claimNextTurnInputs({ ...ok, owner: v } as never), p],
      ),
      ...BAD_TTLS.map(
        (v): Case => [
          `leaseTtlMs ${String(v)}`,
          () => store.claimNextTurnInputs({ ...ok, leaseTtlMs: v } as never),
          'leaseTtlMs',
        ],
      ),
      ...BAD_MAX_INPUTS.map(
        (v): Case => [
          `maxInputs ${String(v)}`,
          () => store.claimNextTurnInputs({ ...ok, maxInputs: v } as never),
          'maxInputs',
        ],
      ),
      [
        'maxInputs 0 with a bad leaseTtlMs',
        () => store.claimNextTurnInputs({ ...ok, maxInputs: 0, leaseTtlMs: -1 }),
        'leaseTtlMs',
      ],
      [
        'maxInputs 0 with a bad fence',
        () => store.claimNextTurnInputs({ ...ok, maxInputs: 0, fence: { ...s.fence, leaseToken: '' } }),
        'fence.leaseToken',
      ],
    ];
    await runCases(s, cases);
  });

  test('claimActiveTurnInputs rejects a bad request and claims nothing', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const s = await seed(store);
    const ok = {
      sessionId: 's',
      fence: s.fence,
      owner: O('w'),
      turnId: 't2',
      checkpoint: 'after_work' as const,
      leaseTtlMs: 1000,
      maxInputs: 10,
    };
    const cases: Case[] = [
      ['null request', () => store.claimActiveTurnInputs(null as never), 'request'],
      ...BAD_IDS.map(
        (v): Case => [
          `sessionId ${String(v).slice(0, 10)}`,
          () => store.claimActiveTurnInputs({ ...ok, sessionId: v } as never),
          'sessionId',
        ],
      ),
      ...fenceVariants(s.fence, 'fence').map(
        ([l, v, p]): Case => [l, () => store.claimActiveTurnInputs({ ...ok, fence: v } as never), p],
      ),
      ...ownerVariants('owner').map(
        ([l, v, p]): Case => [l, () => store.claimActiveTurnInputs({ ...ok, owner: v } as never), p],
      ),
      ...BAD_IDS.map(
        (v): Case => [
          `turnId ${String(v).slice(0, 10)}`,
          () => store.claimActiveTurnInputs({ ...ok, turnId: v } as never),
          'turnId',
        ],
      ),
      ['checkpoint bogus', () => store.claimActiveTurnInputs({ ...ok, checkpoint: 'midway' } as never), 'checkpoint'],
      [
        'checkpoint missing',
        () => store.claimActiveTurnInputs({ ...ok, checkpoint: undefined } as never),
        'checkpoint',
      ],
      ...BAD_TTLS.map(
        (v): Case => [
          `leaseTtlMs ${String(v)}`,
          () => store.claimActiveTurnInputs({ ...ok, leaseTtlMs: v } as never),
          'leaseTtlMs',
        ],
      ),
      ...BAD_MAX_INPUTS.map(
        (v): Case => [
          `maxInputs ${String(v)}`,
          () => store.claimActiveTurnInputs({ ...ok, maxInputs: v } as never),
          'maxInputs',
        ],
      ),
      [
        'maxInputs 0 with a bad checkpoint',
        () => store.claimActiveTurnInputs({ ...ok, maxInputs: 0, checkpoint: 'x' } as never),
        'checkpoint',
      ],
    ];
    await runCases(s, cases);
  });

  test('maxInputs 0 returns null even with a garbage-but-valid fence, for both claim kinds', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const s = await seed(store);
    const garbage = { sessionId: 'nowhere', owner: O('ghost'), leaseToken: 'no', fencingToken: 999 };
    expect(
      await store.claimNextTurnInputs({ sessionId: 's', fence: garbage, owner: O('g'), leaseTtlMs: 0, maxInputs: 0 }),
    ).toBeNull();
    expect(
      await store.claimActiveTurnInputs({
        sessionId: 's',
        fence: garbage,
        owner: O('g'),
        turnId: 't2',
        checkpoint: 'before_completion',
        leaseTtlMs: 0,
        maxInputs: 0,
      }),
    ).toBeNull();
    await s.unchanged('maxInputs 0');
  });

  test('abandonTurnInputClaim(s) reject a bad claim and abandon nothing, not even the valid claims', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const s = await seed(store);
    const K = s.K;
    const cases: Case[] = [
      ['null claim', () => store.abandonTurnInputClaim(null as never), 'claim'],
      ['string claim', () => store.abandonTurnInputClaim('tic:1:1' as never), 'claim'],
      ...BAD_IDS.map(
        (v): Case => [
          `claimId ${String(v).slice(0, 10)}`,
          () => store.abandonTurnInputClaim({ ...K, claimId: v } as never),
          'claimId',
        ],
      ),
      ...BAD_IDS.map(
        (v): Case => [
          `leaseToken ${String(v).slice(0, 10)}`,
          () => store.abandonTurnInputClaim({ ...K, leaseToken: v } as never),
          'leaseToken',
        ],
      ),
      ...BAD_IDS.map(
        (v): Case => [
          `sessionId ${String(v).slice(0, 10)}`,
          () => store.abandonTurnInputClaim({ ...K, sessionId: v } as never),
          'sessionId',
        ],
      ),
      ['mode bogus', () => store.abandonTurnInputClaim({ ...K, mode: { kind: 'sometime' } } as never), 'mode'],
      ['inputs not an array', () => store.abandonTurnInputClaim({ ...K, inputs: 'q' } as never), 'inputs'],
      ['claims null', () => store.abandonTurnInputClaims(null as never), 'claims'],
      ['claims an object', () => store.abandonTurnInputClaims(K as never), 'claims'],
      ['claims with a null', () => store.abandonTurnInputClaims([K, null] as never), 'claims.1'],
      [
        'claims with an empty claimId',
        () => store.abandonTurnInputClaims([K, { ...K, claimId: '' }]),
        'claims.1.claimId',
      ],
      [
        'claims with a lone surrogate token',
        () => store.abandonTurnInputClaims([K, { ...K, leaseToken: '\uD800' }]),
        'claims.1.leaseToken',
      ],
    ];
    await runCases(s, cases);
  });

  // ------------------------------------------------------------------ store-level methods

  test('session() validates its sessionId synchronously', async (ctx) => {
    const { store } = await b.fresh(ctx);
    for (const v of BAD_IDS) {
      assertInvalidInput(
        thrown(() => store.session(v as string)),
        'sessionId',
      );
    }
    const facet = store.session('ok');
    expect(facet.sessionId).toBe('ok');
    expect(facet.durabilityTier()).toBe(store.durabilityTier());
  });

  test('vacuum rejects bad options and removes nothing', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const s = await seed(store);
    const cases: Case[] = [
      ...BAD_SAFE_INTS.filter((v) => v !== null).map(
        (v): Case => [`olderThanMs ${String(v)}`, () => store.vacuum({ olderThanMs: v as number }), 'olderThanMs'],
      ),
      ['options a string', () => store.vacuum('0' as never), 'options'],
      ['options a number', () => store.vacuum(0 as never), 'options'],
    ];
    await runCases(s, cases);
  });

  // ------------------------------------------------------------------ session facet methods

  test('commitRuntimeState rejects bad commits and writes nothing', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const s = await seed(store);
    const facet = store.session('s');
    const ok = minimalCommit(s.fence, [s.K]);
    const completion = claimCompletion(s.K);
    const node = { nodeId: 'n1', timestamp: 't' };
    const cases: Case[] = [
      ['null commit', () => facet.commitRuntimeState(null as never), 'commit'],
      ['sessionId empty', () => facet.commitRuntimeState({ ...ok, sessionId: '' }), 'sessionId'],
      ...BAD_PAYLOADS.filter(([l]) => !l.startsWith('undefined')).map(
        ([l, v]): Case => [`config ${l}`, () => facet.commitRuntimeState({ ...ok, config: v as JsonValue }), 'config'],
      ),
      ['agentFrames not an array', () => facet.commitRuntimeState({ ...ok, agentFrames: {} as never }), 'agentFrames'],
      ['agentFrames with NaN', () => facet.commitRuntimeState({ ...ok, agentFrames: [Number.NaN] }), 'agentFrames'],
      [
        'currentAgentFrameId a number',
        () => facet.commitRuntimeState({ ...ok, currentAgentFrameId: 5 as never }),
        'currentAgentFrameId',
      ],
      ...BAD_SAFE_INTS.filter((v) => v !== null).map(
        (v): Case => [
          `expectedHeadRevision ${String(v)}`,
          () => facet.commitRuntimeState({ ...ok, expectedHeadRevision: v as number }),
          'expectedHeadRevision',
        ],
      ),
      ['graph kind bogus', () => facet.commitRuntimeState({ ...ok, graph: { kind: 'rewrite' } as never }), 'graph'],
      [
        'duplicate appended nodeId',
        () => facet.commitRuntimeState({ ...ok, graph: { kind: 'append', nodes: [node, node] } }),
        'graph',
      ],
      ['checkpoint missing', () => facet.commitRuntimeState({ ...ok, checkpoint: undefined as never }), 'checkpoint'],
      [
        'usage counter -1',
        () =>
          facet.commitRuntimeState({
            ...ok,
            usageDeltas: [
              {
                source: 'turn',
                model: 'm',
                usage: {
                  inputTokens: -1,
                  outputTokens: 0,
                  cacheReadInputTokens: 0,
                  cacheWriteInputTokens: 0,
                  reasoningOutputTokens: 0,
                },
              },
            ],
          }),
        'usageDeltas.0',
      ],
      [
        'completion with no inputIds',
        () => facet.commitRuntimeState({ ...ok, completedTurnInputClaims: [{ ...completion, inputIds: [] }] }),
        'completedTurnInputClaims.0',
      ],
      [
        'completion with duplicate inputIds',
        () =>
          facet.commitRuntimeState({
            ...ok,
            completedTurnInputClaims: [{ ...completion, inputIds: [s.Q.inputId, s.Q.inputId] }],
          }),
        'completedTurnInputClaims.0',
      ],
      [
        'completion with 1001 inputIds',
        () =>
          facet.commitRuntimeState({
            ...ok,
            completedTurnInputClaims: [{ ...completion, inputIds: Array.from({ length: 1001 }, (_, i) => `i${i}`) }],
          }),
        'completedTurnInputClaims.0',
      ],
      [
        'attachment id empty',
        () => facet.commitRuntimeState({ ...ok, committedAttachmentIds: [''] }),
        'committedAttachmentIds.0',
      ],
      [
        'release for another session',
        () =>
          facet.commitRuntimeState({
            ...ok,
            releaseSessionExecutionLease: { ...leaseCompletion(s.lease), sessionId: 'other' },
          }),
        'releaseSessionExecutionLease',
      ],
      [
        'fence with a bad token',
        () => facet.commitRuntimeState({ ...ok, sessionExecutionLease: { ...s.fence, leaseToken: '' } }),
        'sessionExecutionLease',
      ],
    ];
    await runCases(s, cases);
    expect(await facet.loadSession({ kind: 'full_graph' })).toBeNull();
  });

  test('read, meta and attachment methods of the facet reject bad arguments', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const s = await seed(store);
    const facet = store.session('s');
    const meta = { sessionId: 's', sessionName: 'n', createdAt: 'c', model: 'm', relation: { kind: 'root' } };
    const intent = { attachmentId: 'a', sessionId: 's', canonicalUri: 'u', intentAtEpochMs: 1 };
    const cases: Case[] = [
      ['scope null', () => facet.loadSession(null as never), 'scope'],
      ['scope bogus', () => facet.loadSession({ kind: 'everything' } as never), 'kind'],
      ['scope empty leaf', () => facet.loadSession({ kind: 'active_path', leafNodeId: '' }), 'leafNodeId'],
      ...BAD_IDS.map((v): Case => [`nodeId ${String(v).slice(0, 10)}`, () => facet.loadNode(v as string), 'nodeId']),
      ['meta null', () => facet.saveSessionMeta(null as never), 'meta'],
      ['meta sessionName a number', () => facet.saveSessionMeta({ ...meta, sessionName: 5 } as never), 'sessionName'],
      [
        'meta relation bogus',
        () => facet.saveSessionMeta({ ...meta, relation: { kind: 'sibling' } } as never),
        'relation',
      ],
      [
        'meta causedBy NaN',
        () =>
          facet.saveSessionMeta({
            ...meta,
            relation: { kind: 'child', parentSessionId: 'p', causedBy: Number.NaN },
          } as never),
        'relation',
      ],
      ['intent null', () => facet.recordIntent(null as never), 'intent'],
      ['intent attachmentId empty', () => facet.recordIntent({ ...intent, attachmentId: '' }), 'attachmentId'],
      ['intent sessionId lone surrogate', () => facet.recordIntent({ ...intent, sessionId: '\uD800' }), 'sessionId'],
      ['intent intentAtEpochMs -1', () => facet.recordIntent({ ...intent, intentAtEpochMs: -1 }), 'intentAtEpochMs'],
      ['intent intentAtEpochMs 1.5', () => facet.recordIntent({ ...intent, intentAtEpochMs: 1.5 }), 'intentAtEpochMs'],
      ['commitRefs sessionId empty', () => facet.commitRefs('', ['a']), 'sessionId'],
      ['commitRefs ids not an array', () => facet.commitRefs('s', 'a' as never), 'attachmentIds'],
      ['commitRefs empty id', () => facet.commitRefs('s', ['a', '']), 'attachmentIds.1'],
      ['listUncommitted -1', () => facet.listUncommitted(-1), 'olderThanEpochMs'],
      ['listUncommitted 1.5', () => facet.listUncommitted(1.5), 'olderThanEpochMs'],
      ['forgetAgedUncommittedIntents NaN', () => facet.forgetAgedUncommittedIntents(Number.NaN), 'cutoffEpochMs'],
      ['hasLiveRefForId empty id', () => facet.hasLiveRefForId('', 0), 'attachmentId'],
      ['hasLiveRefForId cutoff -1', () => facet.hasLiveRefForId('a', -1), 'cutoffEpochMs'],
      ['forget empty session', () => facet.forget('', 'a'), 'sessionId'],
      ['forget empty id', () => facet.forget('s', ''), 'attachmentId'],
      ['holdsRef lone surrogate session', () => facet.holdsRef('\uD800', 'a'), 'sessionId'],
      ['holdsRef 4097-byte id', () => facet.holdsRef('s', 'x'.repeat(4097)), 'attachmentId'],
    ];
    await runCases(s, cases);
    expect(await facet.loadSessionMeta()).toBeNull();
    expect(await facet.listAllRefs()).toEqual([]);
  });

  // ------------------------------------------------------------------ extra properties (2.4)

  test('a full lease works as a fence and a completion, a full claim for abandon (their own keys are known)', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const n = await enqueue(store, 's', nt('n'));
    const lease = await acquire(store, 's', O('w'));
    const renewed = await store.renewSessionExecutionLease(lease, 60_000);
    expect(renewed.leaseToken).toBe(lease.leaseToken);
    const claim = await store.claimNextTurnInputs({
      sessionId: 's',
      fence: renewed,
      owner: O('w'),
      leaseTtlMs: 1000,
      maxInputs: 5,
    });
    expect(claim!.inputs).toEqual([n]);
    await store.abandonTurnInputClaim({ ...claim! });
    const again = await store.claimNextTurnInputs({
      sessionId: 's',
      fence: renewed,
      owner: O('w'),
      leaseTtlMs: 1000,
      maxInputs: 5,
    });
    const r = await store.session('s').commitRuntimeState({
      ...minimalCommit(undefined, [], { sessionId: 's' }),
      sessionExecutionLease: renewed,
      completedTurnInputClaims: [claimCompletion(again!)],
      releaseSessionExecutionLease: renewed,
    });
    expect(r.headRevision).toBe(1);
    // The full lease released it: the next acquisition is generation 2.
    const next = await acquire(store, 's', O('other'));
    expect(next.fencingToken).toBe(2);
    await store.releaseSessionExecutionLease(next);
  });

  test('unknown keys in argument and option objects are InvalidInput naming them; nothing is written', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const row = await store.enqueuePendingTurnInput({
      sessionId: 's',
      sourceKey: 'k',
      ingress: { scope: 'active_turn', turnId: 't' },
      input: { kept: { extra: 'payload fields are data, never checked for keys' } },
    });
    expect(row.input).toEqual({ kept: { extra: 'payload fields are data, never checked for keys' } });
    const before = await store.listPendingTurnInputs('s');
    const lease = await acquire(store, 's', O('w'));
    const fence = leaseFence(lease);
    const unknownKey = async (promise: Promise<unknown>, path: string, key: string) => {
      const e = await expectInvalidInput(promise, path);
      const issues = e.details.issues as string[];
      expect(
        issues.some((i) => i.startsWith(`${path}: unknown key`) && i.includes(JSON.stringify(key))),
        `an issue "${path}: unknown key ... ${JSON.stringify(key)}" (issues: ${JSON.stringify(issues)})`,
      ).toBe(true);
    };
    const bad = <T>(value: T, extra: Record<string, unknown>): T => ({ ...value, ...extra }) as T;

    await unknownKey(
      store.cancelPendingTurnInputs('s', [bad({ kind: 'source_key', value: 'k' } as const, { extra: 1 })]),
      'targets.0',
      'extra',
    );
    await unknownKey(
      store.cancelPendingTurnInputSuffix('s', bad({ kind: 'input_id', value: row.inputId } as const, { x: 2 })),
      'anchor',
      'x',
    );
    await unknownKey(store.vacuum(bad({ olderThanMs: 0 }, { olderThan: 5 })), 'options', 'olderThan');
    await unknownKey(store.renewSessionExecutionLease(bad(fence, { ttl: 1 }), 1000), 'fence', 'ttl');
    await unknownKey(store.releaseSessionExecutionLease(bad(fence, { force: true })), 'completion', 'force');
    await unknownKey(
      store.reclaimSessionExecutionLease('s', O('x'), bad(fence, { stale: true }), 1000),
      'observedHolder',
      'stale',
    );
    await unknownKey(
      store.claimActiveTurnInputs({
        sessionId: 's',
        fence,
        owner: O('w'),
        turnId: 't',
        checkpoint: 'after_work',
        leaseTtlMs: 1000,
        maxInputs: 5,
        ...{ whenBusy: 'reject' },
      }),
      'request',
      'whenBusy',
    );
    const facet = store.session('s');
    await unknownKey(facet.loadSession(bad({ kind: 'full_graph' } as const, { depth: 1 })), 'scope', 'depth');
    await unknownKey(
      facet.saveSessionMeta(
        bad({ sessionId: 's', sessionName: 'n', createdAt: 'c', model: 'm', relation: { kind: 'root' } } as const, {
          tags: [],
        }),
      ),
      'meta',
      'tags',
    );
    await unknownKey(
      facet.recordIntent(
        bad({ attachmentId: 'a', sessionId: 's', canonicalUri: 'u', intentAtEpochMs: 1 }, { size: 1 }),
      ),
      'intent',
      'size',
    );
    expect(await store.listPendingTurnInputs('s')).toEqual(before);
    await store.releaseSessionExecutionLease(fence);
  });

  test('unknown keys on the four calls of a turn (enqueue, tryClaim, claimNext, commit)', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const expectUnknown = async (promise: Promise<unknown>, path: string) => {
      const e = await expectInvalidInput(promise, path);
      expect((e.details.issues as string[]).some((i) => i.startsWith(`${path}: unknown key`))).toBe(true);
    };
    await expectUnknown(
      store.enqueuePendingTurnInput({
        sessionId: 's',
        ingress: { scope: 'next_turn' },
        input: 1,
        ...{ priority: 'high' },
      }),
      'draft',
    );
    await expectUnknown(
      store.enqueuePendingTurnInput({
        sessionId: 's',
        ingress: { scope: 'next_turn', ...{ turnId: 't' } },
        input: 1,
      }),
      'ingress',
    );
    await expectUnknown(store.tryClaimSessionExecutionLease('s', { ...O('w'), ...{ extra: 1 } }, 1000), 'owner');
    const lease = await acquire(store, 's', O('w'));
    await expectUnknown(
      store.claimNextTurnInputs({
        sessionId: 's',
        fence: leaseFence(lease),
        owner: O('w'),
        leaseTtlMs: 1000,
        maxInputs: 5,
        ...{ extra: true },
      }),
      'request',
    );
    await expectUnknown(
      store.session('s').commitRuntimeState({ ...minimalCommit(lease, []), ...{ leafNodeID: 'n' } }),
      'commit',
    );
    expect(await store.listPendingTurnInputs('s')).toEqual([]);
  });
});

// ------------------------------------------------------------------ errors (2.6)

describeBackends('errors', (b) => {
  test('every StoreError message starts with its code, details are plain JSON, isStoreError filters by code', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const row = await enqueue(store, 's', nt('x', { sourceKey: 'k', inputId: 'in-1' }));
    const lease = await acquire(store, 's');
    const claim = await claimActive(store, lease, 'none', 'after_work');
    expect(claim).toBeNull();
    const errors = [
      await expectStoreError(store.listPendingTurnInputs(''), 'InvalidInput'),
      await expectStoreError(enqueue(store, 's', nt('y', { sourceKey: 'k' })), 'PendingTurnInputSourceKeyConflict', {
        sessionId: 's',
        sourceKey: 'k',
        existingInputId: row.inputId,
      }),
      await expectStoreError(enqueue(store, 's', nt('y', { inputId: 'in-1' })), 'PendingTurnInputIdConflict', {
        sessionId: 's',
        inputId: 'in-1',
      }),
      await expectStoreError(
        store.renewSessionExecutionLease({ ...leaseFence(lease), leaseToken: 'x' }, 1),
        'SessionExecutionLeaseExpired',
        { sessionId: 's' },
      ),
      await expectStoreError(
        store
          .session('s')
          .commitRuntimeState(
            minimalCommit(lease, [{ sessionId: 's', claimId: 'tic:9:9', leaseToken: 't', inputIds: ['in-1'] }]),
          ),
        'TurnInputClaimSuperseded',
        { sessionId: 's', claimId: 'tic:9:9' },
      ),
    ];
    for (const e of errors) {
      expect(e).toBeInstanceOf(Error);
      expect(e.message.startsWith(e.code)).toBe(true);
      expect(isStoreError(e)).toBe(true);
      expect(isStoreError(e, e.code)).toBe(true);
      expect(isStoreError(e, e.code === 'Backend' ? 'InvalidInput' : 'Backend')).toBe(false);
      expect(JSON.parse(JSON.stringify(e.details))).toEqual(e.details);
    }
    const invalid = errors[0]!;
    expect(Object.keys(invalid.details)).toEqual(['issues']);
    for (const other of [new Error('InvalidInput: x'), null, undefined, 'InvalidInput', 42]) {
      expect(isStoreError(other)).toBe(false);
      expect(isStoreError(other, 'InvalidInput')).toBe(false);
    }
  });
});

describe('isStoreError across loaded copies of the package', () => {
  test('an error thrown by another copy of the module is recognised', async () => {
    // A second, independent instance of every module of the package.
    vi.resetModules();
    const copy = (await import('../../src/index.js')) as typeof api;
    expect(copy.StoreError).not.toBe(api.StoreError);
    const e = await rejection(copy.createInMemoryRuntimeStore().listPendingTurnInputs(''));
    expect(e instanceof api.StoreError).toBe(false);
    expect(api.isStoreError(e)).toBe(true);
    expect(api.isStoreError(e, 'InvalidInput')).toBe(true);
    expect(api.isStoreError(e, 'Backend')).toBe(false);
    assertInvalidInput(e, 'sessionId');
    // And the other way round.
    const mine = await rejection(api.createInMemoryRuntimeStore().listPendingTurnInputs(''));
    expect(copy.isStoreError(mine, 'InvalidInput')).toBe(true);
  });
});
