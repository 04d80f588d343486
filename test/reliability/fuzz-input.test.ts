/**
 * Fuzzed bad input (issue 7, SPEC 2.2-2.4): junk into every public method of both backends.
 *
 * Each case takes a valid argument list for a method and replaces the value at one random path
 * (an argument itself, or any field or element inside it) by junk:
 *   * "invalid" junk can be valid nowhere: NaN, ±Infinity, functions, symbols, bigints, cycles,
 *     Dates, Maps, Sets, typed arrays other than Uint8Array, class instances, regexps, strings with
 *     lone surrogates. The call must reject with InvalidInput, unless that field is one the method
 *     ignores (the allowlist below; SPEC 2.4 lets structured arguments carry extra fields);
 *   * "any" junk (fc.anything(), huge strings and arrays, objects with `__proto__` keys from
 *     JSON.parse, plus the invalid kinds) may also happen to be valid: then the call may succeed or
 *     fail with a documented domain code.
 * Always: a rejection is a StoreError (never anything else, never a synchronous throw except
 * `session()`, which SPEC 6 makes synchronous), a rejected call writes nothing (Redis: every key
 * under the prefix, read back; memory: a deep copy of the store state), no call hangs, and
 * Object.prototype / Array.prototype are unchanged afterwards.
 */
import { isDeepStrictEqual } from 'node:util';
import fc from 'fast-check';
import { afterAll, describe, expect, test } from 'vitest';
import {
  canonical,
  createInMemoryRuntimeStore,
  createRedisRuntimeStore,
  isStoreError,
  type LeaseOwnerIdentity,
  leaseFence,
  type RuntimeStore,
  type SessionExecutionLease,
  type TurnInputClaim,
} from '../../src/index.js';
import { memoryStoreState } from '../../src/memory/memory-store.js';
import { adminClient, redisUrl, snapshotPrefix, testPrefix } from '../support/prefix.js';

const RUNS_PER_METHOD = Number(process.env.RTS_FUZZ_RUNS ?? 80);
const tally = { calls: 0, invalidInput: 0, otherCodes: 0, accepted: 0 };
const S = 'fz}:{1';

const protoBefore = {
  object: Object.getOwnPropertyNames(Object.prototype).sort(),
  array: Object.getOwnPropertyNames(Array.prototype).sort(),
};
afterAll(() => {
  console.log(
    `[fuzz] ${tally.calls} junk calls over ${METHODS.length} methods x 2 backends: ${tally.invalidInput} InvalidInput, ` +
      `${tally.otherCodes} other documented codes (junk that happened to be valid or ignored), ${tally.accepted} accepted; ` +
      '0 non-StoreErrors, 0 synchronous throws, 0 writes by a rejected call, 0 hangs, prototypes unchanged',
  );
  expect(Object.getOwnPropertyNames(Object.prototype).sort()).toEqual(protoBefore.object);
  expect(Object.getOwnPropertyNames(Array.prototype).sort()).toEqual(protoBefore.array);
  expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  expect(({} as Record<string, unknown>).ingress).toBeUndefined();
});

// ---------------------------------------------------------------- junk

function cyclicObject(): unknown {
  const o: Record<string, unknown> = { a: 1 };
  o.self = o;
  return o;
}
function cyclicArray(): unknown {
  const a: unknown[] = [1];
  a.push(a);
  return a;
}
class Widget {
  x = 1;
}
const INVALID: Array<[string, () => unknown]> = [
  ['NaN', () => Number.NaN],
  ['Infinity', () => Number.POSITIVE_INFINITY],
  ['-Infinity', () => Number.NEGATIVE_INFINITY],
  ['function', () => () => 1],
  ['class', () => Widget],
  ['symbol', () => Symbol('junk')],
  ['bigint', () => 10n],
  ['cyclic object', cyclicObject],
  ['cyclic array', cyclicArray],
  ['Date', () => new Date(0)],
  ['Map', () => new Map([['a', 1]])],
  ['Set', () => new Set([1])],
  ['Float64Array', () => new Float64Array(2)],
  ['Uint16Array', () => new Uint16Array(2)],
  ['DataView', () => new DataView(new ArrayBuffer(2))],
  ['class instance', () => new Widget()],
  ['RegExp', () => /x/],
  ['Error', () => new Error('x')],
  ['lone high surrogate', () => 'a\uD800b'],
  ['lone low surrogate', () => '\uDC00'],
  ['object holding a lone surrogate', () => ({ text: '\uD83D' })],
  ['object holding NaN', () => ({ n: Number.NaN })],
  ['array holding a function', () => [1, () => 2]],
];
const LOOSE: Array<[string, () => unknown]> = [
  ['huge string', () => 'x'.repeat(70_000)],
  ['id of 4097 bytes', () => 'é'.repeat(2048) + 'x'],
  ['huge array', () => Array.from({ length: 1001 }, (_, i) => ({ kind: 'input_id', value: `i${i}` }))],
  [
    '__proto__ payload',
    () => JSON.parse('{"__proto__": {"polluted": "yes", "ingress": {"scope": "next_turn"}}, "a": 1}'),
  ],
  ['null', () => null],
  ['undefined', () => undefined],
  ['empty string', () => ''],
  ['negative', () => -1],
  ['fraction', () => 1.5],
  ['unsafe integer', () => 2 ** 60],
  ['empty object', () => ({})],
  ['empty array', () => []],
  ['null-prototype object', () => Object.create(null)],
  ['Uint8Array', () => new Uint8Array([1, 2])],
];

type Junk = { label: string; value: () => unknown; invalid: boolean };
const junkArb: fc.Arbitrary<Junk> = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...INVALID).map(([label, value]) => ({ label, value, invalid: true })) },
  { weight: 2, arbitrary: fc.constantFrom(...LOOSE).map(([label, value]) => ({ label, value, invalid: false })) },
  {
    weight: 2,
    arbitrary: fc
      .anything({
        withBigInt: true,
        withDate: true,
        withMap: true,
        withSet: true,
        withTypedArray: true,
        withNullPrototype: true,
        withSparseArray: true,
        withBoxedValues: true,
      })
      .map((v) => ({ label: `anything ${fc.stringify(v).slice(0, 60)}`, value: () => v, invalid: false })),
  },
);

// ---------------------------------------------------------------- methods and valid arguments

interface World {
  store: RuntimeStore;
  lease: SessionExecutionLease;
  claim: TurnInputClaim;
}

interface Method {
  name: string;
  args: (w: World) => unknown[];
  call: (store: RuntimeStore, args: unknown[]) => unknown;
  /** Paths (joined with '.') whose value the method ignores by design, optionally only for some junk. */
  ignored?: { test(path: string, junk: string): boolean };
  sync?: boolean;
}

const owner: LeaseOwnerIdentity = {
  ownerId: 'fo',
  incarnationId: 'fo:1',
  liveness: { kind: 'local_process', hostId: 'h', bootId: 'b', pid: 1, processStart: '1' },
};
const node = (id: string) => ({
  nodeId: id,
  parentNodeId: 'root',
  timestamp: 't',
  role: 'user',
  extra: { a: [1, { b: null }] },
});
const anyStore = (s: RuntimeStore) => s as unknown as Record<string, (...a: unknown[]) => unknown>;
const facet = (s: RuntimeStore) => s.session(S) as unknown as Record<string, (...a: unknown[]) => unknown>;

function pathsMatching(re: RegExp): { test(path: string): boolean } {
  return { test: (path) => re.test(path) };
}
// Plain objects with junk in extra fields: extra fields of structured arguments are ignored (SPEC 2.4).
const PLAIN_OBJECTS_WITH_JUNK = new Set(['cyclic object', 'object holding NaN', 'object holding a lone surrogate']);

const METHODS: Method[] = [
  {
    name: 'tryClaimSessionExecutionLease',
    args: () => ['other', owner, 1000],
    call: (s, a) => anyStore(s).tryClaimSessionExecutionLease(...a),
  },
  {
    name: 'reclaimSessionExecutionLease',
    args: (w) => ['other', owner, leaseFence(w.lease), 1000],
    call: (s, a) => anyStore(s).reclaimSessionExecutionLease(...a),
  },
  {
    name: 'renewSessionExecutionLease',
    args: (w) => [leaseFence(w.lease), 600_000],
    call: (s, a) => anyStore(s).renewSessionExecutionLease(...a),
  },
  {
    name: 'releaseSessionExecutionLease',
    args: (w) => [{ ...leaseFence(w.lease), leaseToken: 'not-the-token' }],
    call: (s, a) => anyStore(s).releaseSessionExecutionLease(...a),
  },
  {
    name: 'enqueuePendingTurnInput',
    args: () => [
      {
        sessionId: S,
        inputId: 'fixed',
        sourceKey: 'src',
        ingress: { scope: 'active_turn', turnId: 't', minBoundary: 'after_work' },
        input: { a: [1, 'x', null, { b: true }] },
      },
    ],
    call: (s, a) => anyStore(s).enqueuePendingTurnInput(...a),
  },
  { name: 'listPendingTurnInputs', args: () => [S], call: (s, a) => anyStore(s).listPendingTurnInputs(...a) },
  {
    name: 'cancelPendingTurnInputs',
    args: () => [
      S,
      [
        { kind: 'input_id', value: 'ghost' },
        { kind: 'source_key', value: 'ghost-src' },
      ],
    ],
    call: (s, a) => anyStore(s).cancelPendingTurnInputs(...a),
  },
  {
    name: 'cancelPendingTurnInput',
    args: () => [S, 'ghost'],
    call: (s, a) => anyStore(s).cancelPendingTurnInput(...a),
  },
  {
    name: 'cancelPendingTurnInputSuffix',
    args: () => [S, { kind: 'source_key', value: 'ghost-src' }],
    call: (s, a) => anyStore(s).cancelPendingTurnInputSuffix(...a),
  },
  {
    name: 'claimActiveTurnInputs',
    args: (w) => [
      {
        sessionId: S,
        fence: leaseFence(w.lease),
        owner,
        turnId: 'nothing',
        checkpoint: 'after_work',
        leaseTtlMs: 1000,
        maxInputs: 5,
      },
    ],
    call: (s, a) => anyStore(s).claimActiveTurnInputs(...a),
  },
  {
    name: 'claimNextTurnInputs',
    args: (w) => [
      { sessionId: S, fence: { ...leaseFence(w.lease), leaseToken: 'stale' }, owner, leaseTtlMs: 1000, maxInputs: 5 },
    ],
    call: (s, a) => anyStore(s).claimNextTurnInputs(...a),
  },
  {
    name: 'abandonTurnInputClaim',
    args: (w) => [{ ...structuredClone(w.claim), leaseToken: 'not-the-token' }],
    call: (s, a) => anyStore(s).abandonTurnInputClaim(...a),
    // abandon uses a claim's session, id, token, mode and input ids (schemas.ts claimSchema).
    ignored: pathsMatching(
      /^0\.(owner|fencingToken|sessionLeaseGeneration|claimedAtEpochMs|expiresAtEpochMs)(\.|$)|^0\.inputs\.\d+\.(?!inputId)/,
    ),
  },
  {
    name: 'abandonTurnInputClaims',
    args: (w) => [[{ ...structuredClone(w.claim), leaseToken: 'not-the-token' }]],
    call: (s, a) => anyStore(s).abandonTurnInputClaims(...a),
    ignored: pathsMatching(
      /^0\.\d+\.(owner|fencingToken|sessionLeaseGeneration|claimedAtEpochMs|expiresAtEpochMs)(\.|$)|^0\.\d+\.inputs\.\d+\.(?!inputId)/,
    ),
  },
  {
    name: 'vacuum',
    args: () => [{ olderThanMs: 604_800_000 }],
    call: (s, a) => anyStore(s).vacuum(...a),
    // Every option is optional and extra properties are ignored (SPEC 2.4), so any PLAIN object is
    // valid options; an instance of another class (Date, Map, ...) is not.
    ignored: { test: (path, junk) => path === '0' && PLAIN_OBJECTS_WITH_JUNK.has(junk) },
  },
  { name: 'session', args: () => [S], call: (s, a) => anyStore(s).session(...a), sync: true },
  {
    name: 'loadSession',
    args: () => [{ kind: 'active_path', leafNodeId: 'n1' }],
    call: (s, a) => facet(s).loadSession(...a),
  },
  { name: 'loadNode', args: () => ['n1'], call: (s, a) => facet(s).loadNode(...a) },
  {
    name: 'commitRuntimeState',
    args: (w) => [
      {
        sessionId: S,
        expectedHeadRevision: 0,
        sessionExecutionLease: { ...leaseFence(w.lease), leaseToken: 'stale' },
        releaseSessionExecutionLease: { ...leaseFence(w.lease), leaseToken: 'stale' },
        config: { c: [1, 2] },
        agentFrames: [{ f: 1 }],
        currentAgentFrameId: 'f',
        graph: { kind: 'append', nodes: [node('n2'), node('n3')], leafNodeId: 'n3' },
        checkpoint: {
          turnState: { t: 1 },
          toolState: { x: 1 },
          pluginSnapshot: [1],
          pluginSnapshotRevision: 2,
          executionState: new Uint8Array([1, 2, 3]),
        },
        usageDeltas: [
          {
            source: 's',
            model: 'm',
            usage: {
              inputTokens: 1,
              outputTokens: 2,
              cacheReadInputTokens: 3,
              cacheWriteInputTokens: 4,
              reasoningOutputTokens: 5,
            },
          },
        ],
        turnCommit: { sessionId: S, turnId: 'tt', turnCommitHash: 'h' },
        completedQueueClaims: [],
        completedTurnInputClaims: [{ sessionId: S, claimId: 'c', leaseToken: 'l', inputIds: ['a', 'b'] }],
        interruptedTurnInputTurnId: 't',
        committedAttachmentIds: ['att'],
      },
    ],
    call: (s, a) => facet(s).commitRuntimeState(...a),
  },
  {
    name: 'saveSessionMeta',
    args: () => [
      {
        sessionId: S,
        sessionName: 'n',
        createdAt: 'c',
        model: 'm',
        cwd: '/x',
        relation: { kind: 'child', parentSessionId: 'p', causedBy: { a: 1 } },
      },
    ],
    call: (s, a) => facet(s).saveSessionMeta(...a),
  },
  {
    name: 'recordIntent',
    args: () => [{ attachmentId: 'att', sessionId: S, canonicalUri: 'u', intentAtEpochMs: 5 }],
    call: (s, a) => facet(s).recordIntent(...a),
  },
  { name: 'commitRefs', args: () => [S, ['att', 'att2']], call: (s, a) => facet(s).commitRefs(...a) },
  { name: 'listUncommitted', args: () => [10], call: (s, a) => facet(s).listUncommitted(...a) },
  {
    name: 'forgetAgedUncommittedIntents',
    args: () => [0],
    call: (s, a) => facet(s).forgetAgedUncommittedIntents(...a),
  },
  { name: 'hasLiveRefForId', args: () => ['att', 10], call: (s, a) => facet(s).hasLiveRefForId(...a) },
  { name: 'forget', args: () => [S, 'nope'], call: (s, a) => facet(s).forget(...a) },
  { name: 'holdsRef', args: () => [S, 'att'], call: (s, a) => facet(s).holdsRef(...a) },
];

/** Every path inside the argument list: each argument, and every field and element within. */
function paths(
  value: unknown,
  prefix: (string | number)[] = [],
  out: (string | number)[][] = [],
): (string | number)[][] {
  if (prefix.length > 0) out.push(prefix);
  if (value instanceof Uint8Array) return out;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) paths(value[i], [...prefix, i], out);
  } else if (value && typeof value === 'object')
    for (const k of Object.keys(value)) paths((value as Record<string, unknown>)[k], [...prefix, k], out);
  return out;
}

function replaceAt(root: unknown[], path: (string | number)[], v: unknown): void {
  let cur = root as unknown as Record<string | number, unknown>;
  for (const p of path.slice(0, -1)) cur = cur[p] as Record<string | number, unknown>;
  cur[path[path.length - 1]] = v;
}

// ---------------------------------------------------------------- backends

interface FuzzBackend {
  name: string;
  open(ctx: Parameters<typeof testPrefix>[0]): Promise<{ store: RuntimeStore; snapshot(): Promise<unknown> }>;
}

const BACKENDS: FuzzBackend[] = [
  {
    name: 'memory',
    async open() {
      const store = createInMemoryRuntimeStore();
      return { store, snapshot: async () => structuredClone(memoryStoreState(store)) };
    },
  },
  {
    name: 'redis',
    async open(ctx) {
      const prefix = testPrefix(ctx);
      const store = await createRedisRuntimeStore({ redis: redisUrl(), keyPrefix: prefix, idleDispatch: false });
      ctx.onTestFinished(() => store.close());
      return { store, snapshot: () => snapshotPrefix(adminClient(), prefix) };
    },
  },
];

async function seed(store: RuntimeStore): Promise<World> {
  await store.enqueuePendingTurnInput({
    sessionId: S,
    sourceKey: 'seed',
    ingress: { scope: 'next_turn' },
    input: { seed: true },
  });
  const got = await store.tryClaimSessionExecutionLease(S, owner, 600_000);
  if (got.outcome !== 'acquired') throw new Error('seed lease');
  const claim = await store.claimNextTurnInputs({
    sessionId: S,
    fence: leaseFence(got.lease),
    owner,
    leaseTtlMs: 600_000,
    maxInputs: 1,
  });
  if (!claim) throw new Error('seed claim');
  await store.session(S).commitRuntimeState({
    sessionId: S,
    sessionExecutionLease: leaseFence(got.lease),
    config: {},
    agentFrames: [],
    currentAgentFrameId: 'f',
    graph: {
      kind: 'append',
      nodes: [
        { nodeId: 'root', timestamp: 't' },
        { nodeId: 'n1', parentNodeId: 'root', timestamp: 't' },
      ],
      leafNodeId: 'n1',
    },
    checkpoint: { turnState: null },
    usageDeltas: [],
    completedTurnInputClaims: [],
    committedAttachmentIds: [],
  });
  await store.session(S).recordIntent({ attachmentId: 'att', sessionId: S, canonicalUri: 'u', intentAtEpochMs: 1 });
  return { store, lease: got.lease, claim };
}

const HANG_MS = 10_000;

for (const backend of BACKENDS) {
  describe(`fuzzed bad input [${backend.name}]`, () => {
    for (const method of METHODS) {
      test(`${method.name}: junk at any path -> InvalidInput (or a documented outcome), nothing written`, {
        timeout: 120_000,
      }, async (ctx) => {
        const { store, snapshot } = await backend.open(ctx);
        const world = await seed(store);
        let baseline = await snapshot();
        const problems: string[] = [];
        const acceptedInvalid = new Set<string>();
        let rejected = 0;
        const property = fc.asyncProperty(junkArb, fc.nat(), async (junk, pick) => {
          // A fresh deep copy: the mutation must never reach shared constants or the world.
          const args = structuredClone(method.args(world));
          const all = paths(args);
          // A path inside the arguments, or (sometimes) an argument itself.
          const path = pick % 5 === 0 ? [pick % Math.max(1, args.length)] : all[pick % all.length];
          replaceAt(args, path, junk.value());
          const where = `${method.name}(${path.join('.')} = ${junk.label})`;
          let outcome: { ok: unknown } | { error: unknown } | undefined;
          let returned: unknown;
          try {
            returned = method.call(store, args);
          } catch (e) {
            if (!method.sync) problems.push(`${where}: threw synchronously: ${String(e)}`);
            outcome = { error: e };
          }
          if (!outcome && method.sync) outcome = { ok: returned };
          if (!outcome) {
            if (!(returned instanceof Promise)) problems.push(`${where}: did not return a promise`);
            let timer: NodeJS.Timeout | undefined;
            try {
              const value = await Promise.race([
                returned as Promise<unknown>,
                new Promise((_, reject) => {
                  timer = setTimeout(() => reject(new Error(`HANG ${HANG_MS} ms`)), HANG_MS);
                }),
              ]);
              outcome = { ok: value };
            } catch (e) {
              outcome = { error: e };
            } finally {
              clearTimeout(timer);
            }
          }
          tally.calls++;
          if ('error' in outcome) {
            rejected++;
            if (isStoreError(outcome.error, 'InvalidInput')) tally.invalidInput++;
            else tally.otherCodes++;
            const e = outcome.error;
            if (!isStoreError(e)) {
              problems.push(`${where}: rejected with a non-StoreError: ${String(e)}`);
            } else {
              if (!e.message.startsWith(e.code)) problems.push(`${where}: message does not start with the code`);
              if (e.code === 'InvalidInput') {
                const issues = e.details.issues;
                if (!Array.isArray(issues) || issues.length === 0 || !issues.every((i) => typeof i === 'string')) {
                  problems.push(`${where}: InvalidInput without string issues`);
                }
              } else if (junk.invalid && !method.ignored?.test(path.join('.'), junk.label)) {
                problems.push(`${where}: ${e.code} for junk that is valid nowhere (expected InvalidInput)`);
              } else if (e.code === 'Backend') {
                problems.push(`${where}: Backend ${JSON.stringify(e.details)}`);
              }
              try {
                JSON.stringify(e.details);
              } catch {
                problems.push(`${where}: details are not JSON-serialisable`);
              }
            }
            const after = await snapshot();
            if (!isDeepStrictEqual(after, baseline)) problems.push(`${where}: a rejected call wrote something`);
            baseline = after;
          } else {
            tally.accepted++;
            if (junk.invalid && !method.ignored?.test(path.join('.'), junk.label))
              acceptedInvalid.add(`${path.join('.')} = ${junk.label}`);
            baseline = await snapshot();
          }
          if (problems.length > 0) return false;
          return true;
        });
        const details = await fc.check(property, { numRuns: RUNS_PER_METHOD });
        expect(problems.slice(0, 10)).toEqual([]);
        expect(details.failed, details.counterexample ? fc.stringify(details.counterexample) : '').toBe(false);
        expect([...acceptedInvalid], 'junk that is valid nowhere was accepted').toEqual([]);
        expect(rejected).toBeGreaterThan(0);
      });
    }

    test('__proto__ keys (JSON.parse) are kept as data in payloads and never reach prototypes', async (ctx) => {
      const { store } = await backend.open(ctx);
      const hostile = () =>
        JSON.parse('{"__proto__": {"polluted": "yes"}, "constructor": {"prototype": {"polluted": 1}}, "a": [1]}');
      const row = await store.enqueuePendingTurnInput({
        sessionId: S,
        ingress: { scope: 'next_turn' },
        input: hostile(),
      });
      const expected = JSON.parse(JSON.stringify(hostile()));
      const [listed] = await store.listPendingTurnInputs(S);
      for (const got of [row.input, listed.input]) {
        expect(Object.getPrototypeOf(got)).toBe(Object.prototype);
        expect(Object.hasOwn(got as object, '__proto__')).toBe(true);
        expect(canonical(got)).toBe(canonical(expected));
        expect((got as Record<string, unknown>).polluted).toBeUndefined();
      }
      const got = await store.tryClaimSessionExecutionLease(S, owner, 60_000);
      if (got.outcome !== 'acquired') throw new Error('lease');
      const n = { nodeId: 'p', timestamp: 't', ...hostile() };
      const proto = JSON.parse('{"nodeId": "q", "timestamp": "t", "__proto__": {"nodeId": "hijack"}}');
      await store.session(S).commitRuntimeState({
        sessionId: S,
        sessionExecutionLease: leaseFence(got.lease),
        config: hostile(),
        agentFrames: [hostile()],
        currentAgentFrameId: 'f',
        graph: { kind: 'append', nodes: [n, proto], leafNodeId: 'q' },
        checkpoint: { turnState: hostile(), toolState: hostile() },
        usageDeltas: [],
        completedTurnInputClaims: [],
        committedAttachmentIds: [],
      });
      const read = await store.session(S).loadSession({ kind: 'full_graph' });
      expect(canonical(read?.config)).toBe(canonical(expected));
      expect(canonical(read?.checkpoint?.toolState)).toBe(canonical(expected));
      expect(Object.hasOwn(read?.config as object, '__proto__')).toBe(true);
      expect(read?.graph.nodes.map((x) => x.nodeId)).toEqual(['p', 'q']);
      const q = await store.session(S).loadNode('q');
      // The node's prototype is untouched ('hijack' never becomes an inherited nodeId); its own
      // `__proto__` field survives as data (next test).
      expect(Object.getPrototypeOf(q)).toBe(Object.prototype);
      expect(q?.nodeId).toBe('q');
      // A draft whose required fields hide behind a __proto__ key has no such fields.
      const sneaky = JSON.parse(
        `{"sessionId": ${JSON.stringify(S)}, "input": 1, "__proto__": {"ingress": {"scope": "next_turn"}}}`,
      );
      await expect(store.enqueuePendingTurnInput(sneaky)).rejects.toMatchObject({ code: 'InvalidInput' });
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    });

    // SPEC 2.2: a node's extra fields are kept verbatim and round-trip like
    // JSON.parse(JSON.stringify(node)), an own field named `__proto__` included (the schema returns
    // the original node instead of a rebuilt copy, which would drop it).
    test('a node extra field named __proto__ (from JSON.parse) is kept verbatim', async (ctx) => {
      const { store } = await backend.open(ctx);
      const got = await store.tryClaimSessionExecutionLease(S, owner, 60_000);
      if (got.outcome !== 'acquired') throw new Error('lease');
      const node = JSON.parse('{"nodeId": "q", "timestamp": "t", "__proto__": {"nodeId": "hijack"}}');
      await store.session(S).commitRuntimeState({
        sessionId: S,
        sessionExecutionLease: leaseFence(got.lease),
        config: {},
        agentFrames: [],
        currentAgentFrameId: 'f',
        graph: { kind: 'append', nodes: [node], leafNodeId: 'q' },
        checkpoint: { turnState: null },
        usageDeltas: [],
        completedTurnInputClaims: [],
        committedAttachmentIds: [],
      });
      const q = await store.session(S).loadNode('q');
      expect(canonical(q)).toBe(canonical(JSON.parse(JSON.stringify(node))));
    });

    test('factories: junk options -> InvalidInput', async () => {
      const junk: unknown[] = [
        { keyPrefix: 'has:colon' },
        { keyPrefix: '{brace}' },
        { keyPrefix: 'x'.repeat(65) },
        { keyPrefix: Number.NaN },
        { tombstoneRetentionMs: -1 },
        { tombstoneRetentionMs: Number.POSITIVE_INFINITY },
        { strandedTurnInputs: 'drop' },
        { durability: 'maybe' },
        { idleDispatch: 'yes' },
        { writeBatching: 'autopipeline' },
        { writeBatching: true },
        { redis: 42 },
        { redis: 'http://127.0.0.1:6379' },
        { redis: () => 1 },
        'options',
        5n,
      ];
      for (const options of junk) {
        if (backend.name === 'redis') {
          const e = await createRedisRuntimeStore({
            ...(typeof options === 'object' ? options : {}),
            ...(typeof options === 'object' && options && 'redis' in options ? {} : { redis: redisUrl() }),
          } as never).then(
            (s) => s.close().then(() => 'created'),
            (err: unknown) => err,
          );
          if (typeof options === 'object')
            expect(isStoreError(e, 'InvalidInput'), `${fc.stringify(options)} -> ${String(e)}`).toBe(true);
          const e2 = await createRedisRuntimeStore(options as never).then(
            (s) => s.close().then(() => 'created'),
            (err: unknown) => err,
          );
          expect(isStoreError(e2, 'InvalidInput'), `${fc.stringify(options)} -> ${String(e2)}`).toBe(true);
        } else {
          const memoryJunk = [
            { now: 5 },
            { strandedTurnInputs: 'drop' },
            { tombstoneRetentionMs: -1 },
            { tombstoneRetentionMs: Number.NaN },
            'x',
            5n,
          ];
          for (const o of memoryJunk) {
            let err: unknown;
            try {
              createInMemoryRuntimeStore(o as never);
            } catch (e) {
              err = e;
            }
            expect(isStoreError(err, 'InvalidInput'), `${fc.stringify(o)} -> ${String(err)}`).toBe(true);
          }
          break;
        }
      }
    });
  });
}
