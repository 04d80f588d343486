/**
 * Redis-only tests of the turn-input scripts (lua/enqueue-input, list-inputs, cancel-inputs,
 * cancel-suffix, claim-inputs, abandon-claims): races over separate connections, the batched
 * claim scan, hostile identifiers, exact payload round-trips and the raw index invariant of
 * docs/KEYS.md. Behaviour shared with the in-memory store is pinned by the conformance suite.
 */
import type { Redis } from 'ioredis';
import { describe, expect, type TestContext, test } from 'vitest';
import { isStoreError, type StoreError } from '../../src/contract/errors.js';
import type {
  JsonValue,
  LeaseOwnerIdentity,
  PendingTurnInput,
  PendingTurnInputDraft,
  RuntimeStore,
  SessionExecutionLease,
  SessionExecutionLeaseFence,
  TurnInputClaim,
} from '../../src/contract/types.js';
import { claimCompletion, leaseCompletion, leaseFence } from '../../src/core/projections.js';
import { encodeId } from '../../src/redis/key-encoding.js';
import { KeyLayout } from '../../src/redis/keys.js';
import { createRedisRuntimeStore } from '../../src/redis/redis-store.js';
import { minimalCommit } from '../conformance/fixtures.js';
import { adminClient, clusterNodes, redisTarget, snapshotPrefix, testPrefix } from '../support/prefix.js';

const TTL = 60_000;

function O(x: string): LeaseOwnerIdentity {
  return { ownerId: x, incarnationId: `${x}:1`, liveness: { kind: 'opaque' } };
}

async function open(prefix: string, ctx: TestContext): Promise<RuntimeStore> {
  const store = await createRedisRuntimeStore({ redis: redisTarget(), keyPrefix: prefix, idleDispatch: false });
  ctx.onTestFinished(() => store.close());
  return store;
}

async function fresh(ctx: TestContext): Promise<{ store: RuntimeStore; prefix: string; layout: KeyLayout }> {
  const prefix = testPrefix(ctx);
  const store = await open(prefix, ctx);
  return { store, prefix, layout: new KeyLayout(prefix, clusterNodes() ? 'cluster' : 'standalone') };
}

function nt(sessionId: string, input: JsonValue, extra: Partial<PendingTurnInputDraft> = {}): PendingTurnInputDraft {
  return { sessionId, ingress: { scope: 'next_turn' }, input, ...extra };
}

function at(
  sessionId: string,
  turnId: string,
  minBoundary: 'after_work' | 'before_completion' | undefined,
  input: JsonValue,
  extra: Partial<PendingTurnInputDraft> = {},
): PendingTurnInputDraft {
  const ingress: PendingTurnInputDraft['ingress'] =
    minBoundary === undefined ? { scope: 'active_turn', turnId } : { scope: 'active_turn', turnId, minBoundary };
  return { sessionId, ingress, input, ...extra };
}

async function acquire(store: RuntimeStore, sessionId: string, owner = O('w')): Promise<SessionExecutionLease> {
  const r = await store.tryClaimSessionExecutionLease(sessionId, owner, TTL);
  if (r.outcome !== 'acquired') throw new Error(`lease for ${sessionId} is busy`);
  return r.lease;
}

function next(store: RuntimeStore, fence: SessionExecutionLeaseFence, maxInputs: number, owner = fence.owner) {
  return store.claimNextTurnInputs({ sessionId: fence.sessionId, fence, owner, leaseTtlMs: TTL, maxInputs });
}

function active(
  store: RuntimeStore,
  fence: SessionExecutionLeaseFence,
  turnId: string,
  checkpoint: 'after_work' | 'before_completion',
  maxInputs: number,
) {
  return store.claimActiveTurnInputs({
    sessionId: fence.sessionId,
    fence,
    owner: fence.owner,
    turnId,
    checkpoint,
    leaseTtlMs: TTL,
    maxInputs,
  });
}

async function rejection(p: Promise<unknown>): Promise<StoreError> {
  try {
    await p;
  } catch (e) {
    if (isStoreError(e)) return e;
    throw e;
  }
  throw new Error('expected a rejection');
}

const ids = (inputs: PendingTurnInput[]) => inputs.map((i) => i.inputId);

// ------------------------------------------------------------------------------ raw invariant

/** A stored row as redis-cli shows it (docs/KEYS.md): meta with short names, the input last. */
interface RawRow {
  seq: number;
  at: number;
  state?: string;
  scope: string;
  turnId?: string;
  minBoundary?: string;
  orig?: { scope: string };
  sourceKey?: string;
  inputHash?: string;
  enqueueGen?: number;
  claimFencingToken?: number;
  claimId?: string;
  claimToken?: string;
  claimOwner?: unknown;
  claimGen?: number;
  claimedAtMs?: number;
  claimExpiresAtMs?: number;
  terminalAtMs?: number;
  input: unknown;
}

async function zmembers(redis: Redis, key: string): Promise<Map<string, number>> {
  const reply = (await redis.call('ZRANGE', key, '0', '-1', 'WITHSCORES')) as unknown[];
  const out = new Map<string, number>();
  // RESP2 answers a flat member/score list, RESP3 a list of [member, score] pairs.
  const flat = reply.flat() as unknown[];
  for (let i = 0; i < flat.length; i += 2) {
    const score = String(flat[i + 1]);
    out.set(String(flat[i]), score === '-inf' ? -Infinity : Number(score));
  }
  return out;
}

/**
 * The member lua/include/rows.lua adds to `tomb` and `byseq` (score -inf) once the session has had
 * 32 inputs, to hold them in skiplist encoding.
 */
const PIN = Buffer.concat([
  Buffer.from([0xff]),
  Buffer.from(' pin: keeps this sorted set skiplist-encoded, see docs/KEYS.md; never an input id'),
]);

let listpackValueLimit: number | undefined;
async function maxListpackValue(redis: Redis): Promise<number> {
  if (listpackValueLimit === undefined) {
    const reply = (await redis.config('GET', 'zset-max-ziplist-value').catch(() => [])) as string[];
    listpackValueLimit = reply.length >= 2 ? Number(reply[1]) : 64;
  }
  return listpackValueLimit;
}

async function isPinned(redis: Redis, key: string): Promise<boolean> {
  return (await redis.zscore(Buffer.from(key), PIN)) !== null;
}

/**
 * The members of a tombstone index without its pin. A set holding a row of seq 32 or more
 * (`seqOf` gives a member's row seq) holds the pin, at -inf, in skiplist encoding; a set never
 * holds the pin alone (it is deleted with its last row).
 */
async function pinnedMembers(
  redis: Redis,
  key: string,
  seqOf: (member: string) => number | undefined,
): Promise<Map<string, number>> {
  const pinned = await isPinned(redis, key);
  const members = await zmembers(redis, key);
  for (const [m, score] of members) if (score === -Infinity) members.delete(m);
  expect(members.size).toBe((await zmembers(redis, key)).size - (pinned ? 1 : 0));
  if (pinned) {
    expect(members.size).toBeGreaterThan(0);
    // The pin keeps the skiplist encoding on a server whose zset-max-listpack-value is below its
    // length (64 by default; a server that forbids CONFIG is taken to use the default).
    if (PIN.length > (await maxListpackValue(redis))) expect(await redis.object('ENCODING', key)).toBe('skiplist');
  }
  // Every ZADD of a row of seq >= 32 sends the pin, and only a set's deletion removes it.
  if ([...members.keys()].some((m) => (seqOf(m) ?? 0) >= 32))
    expect(pinned, `${key} holds a row of seq >= 32`).toBe(true);
  return members;
}

/** Reads a session's keys the way redis-cli would and checks the docs/KEYS.md index invariant. */
async function assertIndexInvariant(layout: KeyLayout, sessionId: string): Promise<Map<number, RawRow>> {
  const redis = adminClient();
  const k = layout.session(sessionId).byName;
  const enc = layout.session(sessionId).encodedSessionId;
  const rawRows = await redis.hgetall(k.inputs);
  const rows = new Map<number, RawRow>();
  const idOf = new Map<number, string>();
  for (const [inputId, json] of Object.entries(rawRows)) {
    const row = JSON.parse(json) as RawRow;
    // The payload is the last member, so Lua can split it off without decoding it.
    expect(json.endsWith(`,"input":${JSON.stringify(row.input)}}`)).toBe(true);
    expect(rows.has(row.seq)).toBe(false);
    rows.set(row.seq, row);
    idOf.set(row.seq, inputId);
  }
  const seqOfId = new Map([...idOf].map(([seq, id]) => [id, seq]));
  const seqOf = (id: string) => seqOfId.get(id);
  const srcMap = await redis.hgetall(k.src);
  const counter = Number((await redis.hget(k.lease, 'lastEnqueueSeq')) ?? '0');

  const idx = {
    next: await zmembers(redis, k.next),
    active: await zmembers(redis, k.active),
    accepted: await zmembers(redis, k.accepted),
    genactive: await zmembers(redis, k.genactive),
    byseq: await pinnedMembers(redis, k.byseq, seqOf),
    tomb: await pinnedMembers(redis, k.tomb, seqOf),
  };
  const expected = {
    next: new Map<string, number>(),
    active: new Map<string, number>(),
    accepted: new Map<string, number>(),
    genactive: new Map<string, number>(),
    byseq: new Map<string, number>(),
    tomb: new Map<string, number>(),
  };
  let srcCount = 0;
  for (const row of rows.values()) {
    const id = idOf.get(row.seq)!;
    const m = String(row.seq);
    expect(row.seq).toBeLessThanOrEqual(counter);
    const state = row.state ?? (row.scope === 'next_turn' ? 'deferred_next_turn' : 'pending_active');
    // A row no transition has touched stores no state (its scope implies it); every later write
    // stores the state first in the dynamic part, which ends right before the input.
    if (row.state === undefined) {
      expect(row.claimFencingToken).toBeUndefined();
      expect(row.terminalAtMs).toBeUndefined();
    } else {
      const json = rawRows[id];
      const dynamicAt = json.indexOf(',"state":"');
      expect(dynamicAt).toBeGreaterThan(0);
      expect(json.indexOf(',"input":')).toBeGreaterThan(dynamicAt);
    }
    if (row.sourceKey !== undefined) {
      // The content hash a source-key replay compares: only source-keyed rows carry it.
      expect(row.inputHash).toMatch(/^[0-9a-f]{64}$/);
      srcCount++;
      expect(srcMap[row.sourceKey]).toBe(id);
    } else {
      expect(row.inputHash).toBeUndefined();
    }
    // Claim fields: all or none; the counter is absent while 0 and survives clearing.
    const claimFields = [
      row.claimId,
      row.claimToken,
      row.claimOwner,
      row.claimGen,
      row.claimedAtMs,
      row.claimExpiresAtMs,
    ];
    const present = claimFields.filter((f) => f !== undefined).length;
    expect([0, claimFields.length]).toContain(present);
    if (present > 0) expect(row.claimFencingToken).toBeGreaterThanOrEqual(1);
    // The claim owner is kept as the client's JSON text (a string member).
    if (row.claimOwner !== undefined) expect(JSON.parse(row.claimOwner as string)).toHaveProperty('ownerId');
    if (row.claimFencingToken !== undefined) expect(row.claimFencingToken).toBeGreaterThanOrEqual(1);
    if (row.orig !== undefined) expect(row.scope).toBe('next_turn');
    if (state !== 'deferred_next_turn') expected.byseq.set(id, row.seq);
    rows.set(row.seq, { ...row, state });
    switch (state) {
      case 'pending_active': {
        expect(row.scope).toBe('active_turn');
        const b = row.minBoundary === 'before_completion' ? 'b' : 'a';
        expected.active.set(`${encodeId(row.turnId!)}:${m.padStart(16, '0')}:${b}:${id}`, 0);
        if (row.enqueueGen !== undefined) expected.genactive.set(id, row.seq);
        expect(row.terminalAtMs).toBeUndefined();
        break;
      }
      case 'deferred_next_turn':
        expect(row.scope).toBe('next_turn');
        expect(row.turnId).toBeUndefined();
        expected.next.set(id, row.seq);
        expect(row.terminalAtMs).toBeUndefined();
        break;
      case 'accepted':
        expect(present).toBeGreaterThan(0);
        expected.accepted.set(id, row.seq);
        break;
      case 'cancelled':
      case 'completed':
        expect(present).toBe(0);
        expect(typeof row.terminalAtMs).toBe('number');
        expected.tomb.set(id, row.terminalAtMs!);
        break;
      default:
        throw new Error(`unknown state ${state}`);
    }
  }
  expect(Object.keys(srcMap).length).toBe(srcCount);
  expect(idx).toEqual(expected);
  if (expected.next.size > 0 || expected.accepted.size > 0) {
    expect(await redis.zscore(k.dispatch, enc)).not.toBeNull();
  }
  if (expected.tomb.size > 0) {
    const oldest = Math.min(...expected.tomb.values());
    const score = Number(await redis.zscore(k.tombs, enc));
    expect(score).toBeLessThanOrEqual(oldest);
  }
  return rows;
}

// ------------------------------------------------------------------------------ tests

describe('turn-input scripts [redis]', () => {
  test('eight connections racing max-1 next claims under one fence claim each of 200 inputs exactly once', async (ctx) => {
    const { store, prefix, layout } = await fresh(ctx);
    const sid = 'race';
    const enqueued: string[] = [];
    for (let i = 0; i < 200; i++) enqueued.push((await store.enqueuePendingTurnInput(nt(sid, { i }))).inputId);
    const fence = leaseFence(await acquire(store, sid));
    const stores = [store];
    for (let i = 1; i < 8; i++) stores.push(await open(prefix, ctx));

    const claimed = await Promise.all(
      stores.map(async (s, w) => {
        const mine: TurnInputClaim[] = [];
        for (;;) {
          const c = await next(s, fence, 1, O(`w${w}`));
          if (c === null) return mine;
          mine.push(c);
        }
      }),
    );
    const all = claimed.flat();
    expect(all.length).toBe(200);
    for (const c of all) {
      expect(c.inputs.length).toBe(1);
      expect(c.claimId).toBe(`tic:${c.inputs[0].enqueueSeq}:1`);
      expect(c.sessionLeaseGeneration).toBe(fence.fencingToken);
    }
    const got = all.map((c) => c.inputs[0].inputId);
    expect(new Set(got).size).toBe(200);
    expect([...got].sort()).toEqual([...enqueued].sort());
    expect(new Set(all.map((c) => c.leaseToken)).size).toBe(200);
    // More than one connection won something (they really raced).
    expect(claimed.filter((m) => m.length > 0).length).toBeGreaterThan(1);
    expect(await store.listPendingTurnInputs(sid)).toEqual([]);
    await assertIndexInvariant(layout, sid);
  });

  test('34 successive max-1 next claims return the 34 inputs in order, held rows in front', async (ctx) => {
    const { store } = await fresh(ctx);
    const sid = 's34';
    const enqueued: PendingTurnInput[] = [];
    for (let i = 0; i < 34; i++) enqueued.push(await store.enqueuePendingTurnInput(nt(sid, `n${i}`)));
    const fence = leaseFence(await acquire(store, sid));
    for (let k = 0; k < 34; k++) {
      const c = await next(store, fence, 1);
      expect(c?.inputs.map((i) => i.inputId)).toEqual([enqueued[k].inputId]);
      expect(c?.claimId).toBe(`tic:${k + 1}:1`);
      expect(c?.inputs[0].state).toBe('deferred_next_turn');
    }
    expect(await next(store, fence, 1)).toBeNull();
  });

  test('active claims skip many before_completion and other-turn rows without missing an admitted one', async (ctx) => {
    const { store, layout } = await fresh(ctx);
    const sid = 'act';
    // 70 rows the after_work scan must skip, then 34 admitted rows interleaved with more skips.
    for (let i = 0; i < 70; i++) await store.enqueuePendingTurnInput(at(sid, 't1', 'before_completion', `b${i}`));
    const admitted: string[] = [];
    for (let i = 0; i < 34; i++) {
      admitted.push(
        (await store.enqueuePendingTurnInput(at(sid, 't1', i % 2 ? undefined : 'after_work', `a${i}`))).inputId,
      );
      await store.enqueuePendingTurnInput(at(sid, 't1', 'before_completion', `bb${i}`));
      await store.enqueuePendingTurnInput(at(sid, 't10', 'after_work', `o${i}`));
      await store.enqueuePendingTurnInput(nt(sid, `n${i}`));
    }
    const fence = leaseFence(await acquire(store, sid));
    for (let k = 0; k < 34; k++) {
      const c = await active(store, fence, 't1', 'after_work', 1);
      expect(c?.inputs.map((i) => i.inputId)).toEqual([admitted[k]]);
      expect(c?.inputs[0].state).toBe('accepted');
      // An omitted minBoundary comes back defaulted.
      expect(c?.inputs[0].ingress).toEqual({ scope: 'active_turn', turnId: 't1', minBoundary: 'after_work' });
    }
    expect(await active(store, fence, 't1', 'after_work', 1)).toBeNull();
    const bc = await active(store, fence, 't1', 'before_completion', 1000);
    expect(bc?.inputs.length).toBe(104);
    expect(
      bc?.inputs.every((i) => i.ingress.scope === 'active_turn' && i.ingress.minBoundary === 'before_completion'),
    ).toBe(true);
    await assertIndexInvariant(layout, sid);
  });

  test('hostile session, input, source-key and turn ids cannot reach across sessions or collide', async (ctx) => {
    const { store, prefix, layout } = await fresh(ctx);
    const long = 'x'.repeat(4096);
    const longUnicode = 'é'.repeat(2048); // 4096 bytes
    const pairs: [string, string][] = [
      ['a}:x', 'a'],
      ['{b}', 'b'],
      ['a%3Ax', 'a:x'],
      ['s\nx', 's x'],
      ['ü', '%C3%BC'],
      [long, long.slice(1)],
      [longUnicode, `${longUnicode.slice(1)}`],
      ['a}:inputs', 'a}'],
    ];
    const inputIds = ['in:1', 'in%3A1', 'line\nbreak', '💬 ü', long, '{x}'];
    for (const [s1, s2] of pairs) {
      for (const inputId of inputIds) {
        const r1 = await store.enqueuePendingTurnInput(nt(s1, 'one', { inputId, sourceKey: inputId }));
        const r2 = await store.enqueuePendingTurnInput(nt(s2, 'two', { inputId, sourceKey: inputId }));
        expect(r1.sessionId).toBe(s1);
        expect(r2.sessionId).toBe(s2);
        expect(r1.inputId).toBe(inputId);
        expect(r2.inputId).toBe(inputId);
      }
    }
    // Ids that differ only by their encoded form are two rows of one session.
    expect((await store.listPendingTurnInputs('a:x')).map((i) => i.inputId)).toEqual(inputIds);

    for (const [s1, s2] of pairs) {
      const l1 = await store.listPendingTurnInputs(s1);
      expect(l1.map((i) => i.input)).toEqual(inputIds.map(() => 'one'));
      const [res] = await store.cancelPendingTurnInputs(s2, [{ kind: 'input_id', value: inputIds[0] }]);
      expect(res.outcome.outcome).toBe('cancelled');
      if (res.outcome.outcome === 'cancelled') expect(res.outcome.input.input).toBe('two');
      expect((await store.listPendingTurnInputs(s1)).length).toBe(inputIds.length);
      const suffix = await store.cancelPendingTurnInputSuffix(s2, { kind: 'source_key', value: inputIds[1] });
      expect(suffix.outcome).toBe('outcomes');
      expect((await store.listPendingTurnInputs(s1)).length).toBe(inputIds.length);
      expect(await store.listPendingTurnInputs(s2)).toEqual([]);
    }

    // Turn ids that would collide in the `active` lex index under naive concatenation.
    const sid = 'turns';
    const turns = ['a', 'a:0000000000000001:a', 'a:', 'a;', 'a%3A', 'a\u0000', '😀', long];
    for (const t of turns) await store.enqueuePendingTurnInput(at(sid, t, 'after_work', t));
    const fence = leaseFence(await acquire(store, sid));
    for (const t of turns) {
      const c = await active(store, fence, t, 'after_work', 1000);
      expect(c?.inputs.map((i) => i.input)).toEqual([t]);
    }

    // Every key written belongs to the prefix, in one of the sessions' tags or the shard.
    const all = Object.keys(await snapshotPrefix(adminClient(), prefix));
    const tags = new Set([...pairs.flat(), sid].map((s) => `{${encodeId(s)}}`));
    for (const key of all) {
      const rest = key.slice(prefix.length + 1);
      const tag = rest.slice(0, rest.indexOf('}') + 1);
      expect(tags.has(tag) || rest.startsWith('shard:') || rest === 'layout', key).toBe(true);
    }
    for (const [s1, s2] of pairs) {
      await assertIndexInvariant(layout, s1);
      await assertIndexInvariant(layout, s2);
    }
  });

  test('payloads round-trip exactly through enqueue, list, claim, cancel and source-key replay', async (ctx) => {
    const { store } = await fresh(ctx);
    const sid = 'payloads';
    const values: JsonValue[] = [
      [],
      {},
      [[]],
      { a: [], b: {} },
      0.1 + 0.2,
      1e300,
      -0,
      5e-324,
      2 ** 53 - 1,
      -(2 ** 53 - 1),
      123456789012345680000,
      [1, [2, [3, [4, []]]], { x: [{}] }],
      'ünïcødé 💬 \u0000 \u2028 "quoted" \\ /',
      { '': 'empty key', z: 1, a: 2, '😀': [true, false, null] },
      null,
      true,
      '',
      { nested: { deeper: { deepest: [0.1, 1.7976931348623157e308, 1e-7] } } },
    ];
    const expected = values.map((v) => JSON.parse(JSON.stringify(v)) as JsonValue);
    const enq: PendingTurnInput[] = [];
    for (let i = 0; i < values.length; i++) {
      const r = await store.enqueuePendingTurnInput(nt(sid, values[i], { sourceKey: `k${i}` }));
      expect(r.input).toStrictEqual(expected[i]);
      enq.push(r);
    }
    expect(Object.is(enq[6].input, 0)).toBe(true);
    const listed = await store.listPendingTurnInputs(sid);
    expect(listed.map((i) => i.input)).toStrictEqual(expected);

    // A replay with the same content (keys in another order) returns the stored payload.
    const replay = await store.enqueuePendingTurnInput(
      nt(sid, { '😀': [true, false, null], a: 2, z: 1, '': 'empty key' }, { sourceKey: 'k13' }),
    );
    expect(replay.inputId).toBe(enq[13].inputId);
    expect(replay.input).toStrictEqual(expected[13]);
    expect(Object.keys(replay.input as object)).toEqual(Object.keys(expected[13] as object));
    // [] and {} are different content.
    const conflict = await rejection(store.enqueuePendingTurnInput(nt(sid, {}, { sourceKey: 'k0' })));
    expect(conflict.code).toBe('PendingTurnInputSourceKeyConflict');
    expect(conflict.details).toEqual({ sessionId: sid, sourceKey: 'k0', existingInputId: enq[0].inputId });

    const fence = leaseFence(await acquire(store, sid));
    const c = await next(store, fence, 8);
    expect(c?.inputs.map((i) => i.input)).toStrictEqual(expected.slice(0, 8));
    const cancelled = await store.cancelPendingTurnInputs(
      sid,
      enq.map((i) => ({ kind: 'input_id' as const, value: i.inputId })),
    );
    expect(cancelled.map((r) => (r.outcome.outcome === 'not_found' ? undefined : r.outcome.input.input))).toStrictEqual(
      expected,
    );
    expect(cancelled.slice(0, 8).every((r) => r.outcome.outcome === 'already_claimed')).toBe(true);
    expect(cancelled.slice(8).every((r) => r.outcome.outcome === 'cancelled')).toBe(true);
  });

  test('a payload that spells row fields (state, counter, claim) never passes for the row itself', async (ctx) => {
    // The claim and commit scripts read rows as text (lua/include/rows.lua, row_text): every
    // marker they look for must be found before the payload, never inside it.
    const { store, layout } = await fresh(ctx);
    const sid = 'markers';
    const forgedToken = 'f'.repeat(32);
    const payload = {
      y: 1,
      state: 'accepted',
      claimFencingToken: 7,
      claimId: 'tic:1:1',
      claimToken: forgedToken,
      claimOwner: '{"ownerId":"x"}',
      z: ',"input":{}',
    };
    const a = await store.enqueuePendingTurnInput(nt(sid, payload));
    const lease = await acquire(store, sid);
    // An untouched next-turn row whose payload says "accepted" and "claimed" is claimable.
    const claim = await next(store, leaseFence(lease), 5);
    expect(claim?.claimId).toBe('tic:1:1');
    expect(claim?.inputs.map((i) => i.input)).toStrictEqual([payload]);
    if (!claim) throw new Error('nothing claimed');
    // Now the row carries a real claim: one with the same id and the payload's token is not it.
    const commit = (completion: ReturnType<typeof claimCompletion>) =>
      store
        .session(sid)
        .commitRuntimeState(
          minimalCommit(lease, [completion], { releaseSessionExecutionLease: leaseCompletion(lease) }),
        );
    const forged = await rejection(commit({ ...claimCompletion(claim), leaseToken: forgedToken }));
    expect(forged.code).toBe('TurnInputClaimSuperseded');
    // Nor is the real token run on into the stored text up to a `","` inside the payload.
    const raw = (await adminClient().hget(layout.session(sid).byName.inputs, a.inputId)) as string;
    const tokenAt = raw.indexOf(`"claimToken":"${claim.leaseToken}`) + '"claimToken":"'.length;
    const payloadAt = raw.indexOf(',"input":');
    const runOn = raw.slice(tokenAt, raw.indexOf('","', payloadAt));
    expect(runOn.startsWith(claim.leaseToken) && runOn.length > claim.leaseToken.length).toBe(true);
    const straddling = await rejection(commit({ ...claimCompletion(claim), leaseToken: runOn }));
    expect(straddling.code).toBe('TurnInputClaimSuperseded');
    // A second claim finds nothing: the row carries a live claim (the payload's text is not read).
    expect(await next(store, leaseFence(lease), 5)).toBeNull();
    await commit(claimCompletion(claim));
    expect(await store.listPendingTurnInputs(sid)).toEqual([]);
    const rows = await assertIndexInvariant(layout, sid);
    expect([...rows.values()].map((r) => [r.state, r.input])).toStrictEqual([['completed', payload]]);
    expect(a.input).toStrictEqual(payload);
  });

  test('tombstone indexes are pinned to a skiplist from the 32nd input on, and dropped with their last row', async (ctx) => {
    const { store, layout } = await fresh(ctx);
    const redis = adminClient();
    const cancelAll = async (sid: string, n: number) => {
      const ids: string[] = [];
      for (let i = 0; i < n; i++) ids.push((await store.enqueuePendingTurnInput(nt(sid, { i }))).inputId);
      for (const id of ids) expect((await store.cancelPendingTurnInput(sid, id)).outcome).toBe('cancelled');
    };
    // A small session keeps the compact listpack encoding and no pin.
    await cancelAll('few', 5);
    const few = layout.session('few').byName;
    for (const key of [few.tomb, few.byseq]) {
      expect(await isPinned(redis, key)).toBe(false);
      expect(await redis.zcard(key)).toBe(5);
      expect(await redis.object('ENCODING', key)).toBe('listpack');
    }
    await assertIndexInvariant(layout, 'few');
    // From seq 32 on, every insert sends the pin: the sets turn into skiplists and stay so.
    await cancelAll('many', 40);
    const many = layout.session('many').byName;
    for (const key of [many.tomb, many.byseq]) {
      expect(await isPinned(redis, key)).toBe(true);
      expect(await redis.zcount(key, '(-inf', '+inf')).toBe(40);
      if (PIN.length > (await maxListpackValue(redis))) expect(await redis.object('ENCODING', key)).toBe('skiplist');
    }
    await assertIndexInvariant(layout, 'many');
    // Vacuum takes the last rows and the pin with them: no set is left holding the pin alone.
    expect(await store.vacuum({ olderThanMs: 0 })).toEqual({ removedPendingTurnInputTombstones: 45 });
    for (const key of [few.tomb, few.byseq, many.tomb, many.byseq]) expect(await redis.exists(key)).toBe(0);
  });

  test('a mixed sequence keeps every index true (raw reads)', async (ctx) => {
    const { store, layout } = await fresh(ctx);
    const sid = 'mixed:{s}';
    const redis = adminClient();
    const k = layout.session(sid).byName;
    const n1 = await store.enqueuePendingTurnInput(nt(sid, 'n1'));
    const n2 = await store.enqueuePendingTurnInput(nt(sid, 'n2', { sourceKey: 'src:n2' }));
    const a1 = await store.enqueuePendingTurnInput(at(sid, 't1', 'after_work', 'a1'));
    const a2 = await store.enqueuePendingTurnInput(at(sid, 't1', 'before_completion', 'a2'));
    const a3 = await store.enqueuePendingTurnInput(at(sid, 't2', undefined, 'a3', { sourceKey: 'src:a3' }));
    expect(a3.ingress).toEqual({ scope: 'active_turn', turnId: 't2', minBoundary: 'after_work' });
    await assertIndexInvariant(layout, sid);

    const lease = await acquire(store, sid);
    const fence = leaseFence(lease);
    const a4 = await store.enqueuePendingTurnInput(at(sid, 't1', 'after_work', 'a4'));
    // A stamped turn: active input for it is deferred at once (T3), its original ingress kept.
    await redis.hset(k.stamps, 'tdone', JSON.stringify({ turnCommitHash: 'h', committedAtMs: 1, result: {} }));
    const a5 = await store.enqueuePendingTurnInput(
      at(sid, 'tdone', 'before_completion', 'a5', { sourceKey: 'src:a5' }),
    );
    expect(a5.state).toBe('deferred_next_turn');
    expect(a5.ingress).toEqual({ scope: 'next_turn' });
    const a5again = await store.enqueuePendingTurnInput(
      at(sid, 'tdone', 'before_completion', 'a5', { sourceKey: 'src:a5', inputId: 'ignored' }),
    );
    expect(a5again.inputId).toBe(a5.inputId);
    const rows1 = await assertIndexInvariant(layout, sid);
    expect(rows1.get(a4.enqueueSeq)?.enqueueGen).toBe(lease.fencingToken);
    expect(rows1.get(a1.enqueueSeq)?.enqueueGen).toBeUndefined();
    expect(rows1.get(a5.enqueueSeq)?.orig).toEqual({
      scope: 'active_turn',
      turnId: 'tdone',
      minBoundary: 'before_completion',
    });

    const k1 = await active(store, fence, 't1', 'after_work', 10);
    expect(k1?.inputs.map((i) => i.inputId)).toEqual([a1.inputId, a4.inputId]);
    expect(k1?.claimId).toBe(`tic:${a1.enqueueSeq}:1`);
    const k2 = await next(store, fence, 1);
    expect(k2?.inputs.map((i) => i.inputId)).toEqual([n1.inputId]);
    const k3 = await active(store, fence, 't2', 'before_completion', 10);
    expect(k3?.inputs.map((i) => i.inputId)).toEqual([a3.inputId]);
    await assertIndexInvariant(layout, sid);

    const [c1, c2] = await store.cancelPendingTurnInputs(sid, [
      { kind: 'source_key', value: 'src:n2' },
      { kind: 'input_id', value: n1.inputId },
    ]);
    expect(c1.outcome).toMatchObject({ outcome: 'cancelled', input: { inputId: n2.inputId, state: 'cancelled' } });
    expect(c2.outcome).toMatchObject({
      outcome: 'already_claimed',
      claim: {
        state: 'deferred_next_turn',
        claimId: k2?.claimId,
        claimFencingToken: 1,
        claimSessionLeaseGeneration: 1,
      },
    });
    await assertIndexInvariant(layout, sid);

    // Abandon: t1 is open, so its rows go back to pending_active; t2 gets stamped first, so a3
    // is deferred with its ingress rewritten; n1 stays deferred with its claim cleared.
    await redis.hset(k.stamps, 't2', JSON.stringify({ turnCommitHash: 'h2', committedAtMs: 1, result: {} }));
    await store.abandonTurnInputClaims([k1!, k2!, k3!]);
    const rows2 = await assertIndexInvariant(layout, sid);
    expect(rows2.get(a1.enqueueSeq)).toMatchObject({ state: 'pending_active', claimFencingToken: 1 });
    expect(rows2.get(a1.enqueueSeq)?.claimId).toBeUndefined();
    expect(rows2.get(a3.enqueueSeq)).toMatchObject({ state: 'deferred_next_turn', scope: 'next_turn' });
    expect(rows2.get(n1.enqueueSeq)).toMatchObject({ state: 'deferred_next_turn', claimFencingToken: 1 });
    // Abandon is idempotent.
    await store.abandonTurnInputClaim(k1!);
    expect(await assertIndexInvariant(layout, sid)).toEqual(rows2);
    // The original draft of a3 still replays to a3 (deferred now).
    const a3again = await store.enqueuePendingTurnInput(at(sid, 't2', 'after_work', 'a3', { sourceKey: 'src:a3' }));
    expect(a3again).toMatchObject({
      inputId: a3.inputId,
      state: 'deferred_next_turn',
      ingress: { scope: 'next_turn' },
    });

    const list = await store.listPendingTurnInputs(sid);
    expect(ids(list)).toEqual([n1, a1, a2, a3, a4, a5].map((i) => i.inputId));

    // Re-claim gets a higher counter and a new id; the suffix then cancels the rest in order.
    const k4 = await next(store, fence, 10);
    expect(k4?.claimId).toBe(`tic:${n1.enqueueSeq}:2`);
    expect(k4?.fencingToken).toBe(2);
    const suffix = await store.cancelPendingTurnInputSuffix(sid, { kind: 'input_id', value: a1.inputId });
    if (suffix.outcome !== 'outcomes') throw new Error('anchor not found');
    expect(suffix.outcomes.map((o) => o.outcome)).toEqual([
      'cancelled',
      'cancelled',
      'already_claimed',
      'cancelled',
      'already_claimed',
    ]);
    await assertIndexInvariant(layout, sid);
    expect(await store.cancelPendingTurnInputSuffix(sid, { kind: 'source_key', value: 'nope' })).toEqual({
      outcome: 'anchor_not_found',
      anchor: { kind: 'source_key', value: 'nope' },
    });
    // Releasing the lease frees the live claims: they list and cancel again.
    await store.releaseSessionExecutionLease(fence);
    expect(ids(await store.listPendingTurnInputs(sid))).toEqual([n1, a3, a5].map((i) => i.inputId));
    const last = await store.cancelPendingTurnInputSuffix(sid, { kind: 'input_id', value: n1.inputId });
    if (last.outcome !== 'outcomes') throw new Error('anchor not found');
    expect(last.outcomes.map((o) => o.outcome)).toEqual([
      'cancelled',
      'already_cancelled',
      'already_cancelled',
      'already_cancelled',
      'cancelled',
      'already_cancelled',
      'cancelled',
    ]);
    const rows3 = await assertIndexInvariant(layout, sid);
    expect([...rows3.values()].every((r) => r.state === 'cancelled')).toBe(true);
    expect(await store.listPendingTurnInputs(sid)).toEqual([]);
  });

  test('rejected claims and enqueues leave no trace; zero-work calls make no I/O', async (ctx) => {
    const { store, prefix } = await fresh(ctx);
    const sid = 'fence';
    await store.enqueuePendingTurnInput(nt(sid, 'x', { inputId: 'dup', sourceKey: 'sk' }));
    await store.enqueuePendingTurnInput(at(sid, 't', undefined, 'y'));
    const fence = leaseFence(await acquire(store, sid));
    const before = await snapshotPrefix(adminClient(), prefix);

    const bad: SessionExecutionLeaseFence[] = [
      { ...fence, leaseToken: 'nope' },
      { ...fence, fencingToken: fence.fencingToken + 1 },
      { ...fence, owner: { ...fence.owner, incarnationId: 'other' } },
      { ...fence, sessionId: 'other' },
    ];
    for (const f of bad) {
      const e1 = await rejection(
        store.claimNextTurnInputs({ sessionId: sid, fence: f, owner: fence.owner, leaseTtlMs: TTL, maxInputs: 5 }),
      );
      expect(e1.code).toBe('SessionExecutionLeaseExpired');
      expect(e1.details).toEqual({ sessionId: sid });
      const e2 = await rejection(
        store.claimActiveTurnInputs({
          sessionId: sid,
          fence: f,
          owner: fence.owner,
          turnId: 't',
          checkpoint: 'after_work',
          leaseTtlMs: TTL,
          maxInputs: 5,
        }),
      );
      expect(e2.code).toBe('SessionExecutionLeaseExpired');
    }
    const idConflict = await rejection(store.enqueuePendingTurnInput(nt(sid, 'z', { inputId: 'dup' })));
    expect(idConflict.code).toBe('PendingTurnInputIdConflict');
    expect(idConflict.details).toEqual({ sessionId: sid, inputId: 'dup' });
    const srcConflict = await rejection(store.enqueuePendingTurnInput(nt(sid, 'other', { sourceKey: 'sk' })));
    expect(srcConflict.code).toBe('PendingTurnInputSourceKeyConflict');
    // Same content, other ingress: still a conflict.
    const ingressConflict = await rejection(
      store.enqueuePendingTurnInput(at(sid, 't', undefined, 'x', { sourceKey: 'sk' })),
    );
    expect(ingressConflict.code).toBe('PendingTurnInputSourceKeyConflict');
    const invalid = await rejection(
      store.claimNextTurnInputs({ sessionId: sid, fence, owner: fence.owner, leaseTtlMs: TTL, maxInputs: 1001 }),
    );
    expect(invalid.code).toBe('InvalidInput');
    expect(await snapshotPrefix(adminClient(), prefix)).toEqual(before);

    // Once closed, anything that reached Redis would reject with StoreClosed.
    await store.close();
    expect(await next(store, fence, 0)).toBeNull();
    expect(await active(store, fence, 't', 'after_work', 0)).toBeNull();
    expect(await store.cancelPendingTurnInputs(sid, [])).toEqual([]);
    await store.abandonTurnInputClaims([]);
    const closed = await rejection(store.listPendingTurnInputs(sid));
    expect(closed.code).toBe('StoreClosed');
  });
});
