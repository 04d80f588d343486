/**
 * Redis-only tests of the turn-input scripts (lua/enqueue-input, list-inputs, cancel-inputs,
 * cancel-suffix, claim-next-inputs, claim-active-inputs, abandon-claims): races over separate connections, the batched
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

/** An input's record (K.inputs) as redis-cli shows it (docs/KEYS.md): written once at enqueue. */
interface RawRecord {
  seq: number;
  at: number;
  enqueuedAs: string;
  scope: string;
  turnId?: string;
  minBoundary?: string;
  sourceKey?: string;
  inputHash?: string;
  enqueueGen?: number;
  input: unknown;
}

/** A claim entry (K.claims): `<carriers>|<generation>|<claimToken>|<claimedAtMs>|<expiresAtMs>|<ownerJson>`. */
interface RawClaim {
  carriers: number;
  generation: number;
  token: string;
  claimedAtMs: number;
  expiresAtMs: number;
  owner: LeaseOwnerIdentity;
}

/**
 * A row as the scripts see it: its state from the state entry (K.states), or, for a row without
 * one, the untouched deferred_next_turn row its record and `next` entry imply; plus its record.
 */
interface RawRow {
  inputId: string;
  record: RawRecord;
  /** The K.states entry as stored; undefined for a row that has none yet. */
  entry?: string;
  state: string;
  seq: number;
  /** The claim counter (claimFencingToken). */
  counter: number;
  claimId?: string;
  terminalAtMs?: number;
  /** The current ingress: 'n', or 'a:<pct(turnId)>' / 'b:<pct(turnId)>'. */
  ingress: string;
  gen: boolean;
  sourceKey?: string;
  /** The entry of the claim the row carries. */
  claim?: RawClaim;
  input: unknown;
}

const STATE_ENTRY = /^([a-z_]+)\|(\d+)\|(\d+)\|([^|]*)\|(\d*)\|([^|]*)\|(1?f?)\|([\s\S]*)$/;
const CLAIM_ENTRY = /^(\d+)\|(\d+)\|([^|]*)\|(\d+)\|(\d+)\|([\s\S]*)$/;
const TOMB_ENTRY = /^(\d+)\|([\s\S]*)$/;
const STATES = ['pending_active', 'deferred_next_turn', 'accepted', 'cancelled', 'completed', 'failed'];

async function zmembers(redis: Redis, key: string): Promise<Map<string, number>> {
  const reply = (await redis.call('ZRANGE', key, '0', '-1', 'WITHSCORES')) as unknown[];
  const out = new Map<string, number>();
  // RESP2 answers a flat member/score list, RESP3 a list of [member, score] pairs.
  const flat = reply.flat() as unknown[];
  for (let i = 0; i < flat.length; i += 2) out.set(String(flat[i]), Number(flat[i + 1]));
  return out;
}

/** The active ingress of a record, encoded as a state entry's ingress field. */
function recordIngress(r: RawRecord): string {
  if (r.scope === 'next_turn') return 'n';
  return `${r.minBoundary === 'before_completion' ? 'b' : 'a'}:${encodeId(r.turnId!)}`;
}

function parseRecord(inputId: string, json: string, lastEnqueueSeq: number): RawRecord {
  const r = JSON.parse(json) as RawRecord;
  // The payload is the last member, exactly as the client serialised it.
  expect(json.endsWith(`,"input":${JSON.stringify(r.input)}}`), inputId).toBe(true);
  expect(Object.keys(r)[0]).toBe('seq');
  expect(Number.isSafeInteger(r.seq) && r.seq >= 1 && r.seq <= lastEnqueueSeq, `seq of ${inputId}`).toBe(true);
  expect(Number.isSafeInteger(r.at) && r.at > 0).toBe(true);
  expect(['deferred_next_turn', 'pending_active']).toContain(r.enqueuedAs);
  if (r.scope === 'next_turn') {
    expect(r.enqueuedAs).toBe('deferred_next_turn');
    expect(r.turnId).toBeUndefined();
    expect(r.minBoundary).toBeUndefined();
  } else {
    // An active_turn record always carries its minBoundary; a deferred one is T3 (stamped turn).
    expect(r.scope).toBe('active_turn');
    expect(typeof r.turnId).toBe('string');
    expect(['after_work', 'before_completion']).toContain(r.minBoundary);
  }
  if (r.sourceKey !== undefined) {
    // The content hash a source-key replay compares: only source-keyed rows carry it.
    expect(typeof r.sourceKey).toBe('string');
    expect(r.inputHash).toMatch(/^[0-9a-f]{64}$/);
  } else {
    expect(r.inputHash).toBeUndefined();
  }
  if (r.enqueueGen !== undefined) expect(Number.isSafeInteger(r.enqueueGen) && r.enqueueGen >= 1).toBe(true);
  return r;
}

function parseClaim(claimId: string, entry: string, generation: number): RawClaim {
  expect(claimId).toMatch(/^tic:[1-9]\d*:[1-9]\d*$/);
  const m = CLAIM_ENTRY.exec(entry);
  expect(m, `claim entry ${claimId}: ${entry}`).not.toBeNull();
  const [, carriers, gen, token, claimedAt, expiresAt, ownerJson] = m!;
  const claim: RawClaim = {
    carriers: Number(carriers),
    generation: Number(gen),
    token,
    claimedAtMs: Number(claimedAt),
    expiresAtMs: Number(expiresAt),
    owner: JSON.parse(ownerJson) as LeaseOwnerIdentity,
  };
  expect(claim.carriers).toBeGreaterThanOrEqual(1);
  // Claims are taken under a lease generation of this session.
  expect(claim.generation).toBeGreaterThanOrEqual(1);
  expect(claim.generation).toBeLessThanOrEqual(generation);
  expect(claim.token).toMatch(/^[0-9a-f]{32}$/);
  expect(claim.expiresAtMs).toBeGreaterThanOrEqual(claim.claimedAtMs);
  // The owner is kept as the client's JSON text: normalised, liveness present.
  expect(typeof claim.owner.ownerId).toBe('string');
  expect(typeof claim.owner.incarnationId).toBe('string');
  expect(claim.owner.liveness).toBeDefined();
  return claim;
}

/** Reads a session's keys the way redis-cli would and checks the docs/KEYS.md index invariant. */
async function assertIndexInvariant(layout: KeyLayout, sessionId: string): Promise<Map<number, RawRow>> {
  const redis = adminClient();
  const k = layout.session(sessionId).byName;
  const enc = layout.session(sessionId).encodedSessionId;
  const records = await redis.hgetall(k.inputs);
  const entries = await redis.hgetall(k.states);
  const claimEntries = await redis.hgetall(k.claims);
  const srcMap = await redis.hgetall(k.src);
  const failures = await redis.hgetall(k.failures);
  const flagged: string[] = [];
  const [lastSeq, fencingToken] = await redis.hmget(k.lease, 'lastEnqueueSeq', 'fencingToken');
  const lastEnqueueSeq = Number(lastSeq ?? '0');
  const generation = Number(fencingToken ?? '0');

  // No state entry outlives its record.
  for (const id of Object.keys(entries)) expect(records[id], `state entry of ${id} without a record`).toBeDefined();

  const idx = {
    next: await zmembers(redis, k.next),
    active: await zmembers(redis, k.active),
    accepted: await zmembers(redis, k.accepted),
    genactive: await zmembers(redis, k.genactive),
    tomb: await redis.lrange(k.tomb, 0, -1),
  };
  const expected = {
    next: new Map<string, number>(),
    active: new Map<string, number>(),
    accepted: new Map<string, number>(),
    genactive: new Map<string, number>(),
    tomb: [] as string[],
  };
  const rows = new Map<number, RawRow>();
  const noGeneration: string[] = [];
  const carriers = new Map<string, number>();
  const expectedSrc: Record<string, string> = {};
  for (const [inputId, json] of Object.entries(records)) {
    const record = parseRecord(inputId, json, lastEnqueueSeq);
    expect(rows.has(record.seq), `seq ${record.seq} twice`).toBe(false);
    const entry = entries[inputId];
    let row: RawRow;
    if (entry === undefined) {
      // No state entry: an untouched plain deferred row, which must be in `next` to exist at all.
      expect(record.enqueuedAs, inputId).toBe('deferred_next_turn');
      expect(record.sourceKey, inputId).toBeUndefined();
      expect(idx.next.get(inputId), `${inputId} has no state entry and is not in next`).toBe(record.seq);
      row = {
        inputId,
        record,
        state: 'deferred_next_turn',
        seq: record.seq,
        counter: 0,
        ingress: 'n',
        gen: false,
        input: record.input,
      };
    } else {
      const m = STATE_ENTRY.exec(entry);
      expect(m, `state entry of ${inputId}: ${entry}`).not.toBeNull();
      const [, state, seq, counter, claimId, terminalAt, ingress, gen, sourceKey] = m!;
      expect(STATES).toContain(state);
      row = {
        inputId,
        record,
        entry,
        state,
        seq: Number(seq),
        counter: Number(counter),
        ingress,
        gen: gen.startsWith('1'),
        input: record.input,
      };
      if (gen.endsWith('f')) flagged.push(inputId);
      if (claimId !== '') row.claimId = claimId;
      if (terminalAt !== '') row.terminalAtMs = Number(terminalAt);
      if (sourceKey !== '') row.sourceKey = sourceKey;
      // The entry agrees with the record on what the record fixes.
      expect(row.seq, inputId).toBe(record.seq);
      expect(sourceKey, inputId).toBe(record.sourceKey ?? '');
      // The current ingress is the enqueued one or, once deferred, next_turn.
      expect(['n', recordIngress(record)], inputId).toContain(ingress);
      // A generation was live at enqueue, or an acquisition adopted the no-lease row (T9).
      if (row.gen && record.enqueueGen === undefined) expect(record.enqueuedAs, inputId).toBe('pending_active');
    }
    rows.set(record.seq, row);
    const { state, seq } = row;
    if (row.sourceKey !== undefined) expectedSrc[row.sourceKey] = inputId;
    if (row.claimId !== undefined) {
      expect(row.counter, inputId).toBeGreaterThanOrEqual(1);
      carriers.set(row.claimId, (carriers.get(row.claimId) ?? 0) + 1);
    }
    if (state === 'cancelled' || state === 'completed' || state === 'failed') {
      expect(row.claimId, inputId).toBeUndefined();
      expect(row.terminalAtMs, inputId).toBeGreaterThan(0);
      expected.tomb.push(`${row.terminalAtMs}|${inputId}`);
    } else {
      expect(row.terminalAtMs, inputId).toBeUndefined();
    }
    switch (state) {
      case 'pending_active':
        expect(row.ingress, inputId).toBe(recordIngress(record));
        expect(row.ingress, inputId).not.toBe('n');
        expect(row.claimId, inputId).toBeUndefined();
        expected.active.set(`${row.ingress.slice(2)}:${String(seq).padStart(16, '0')}:${row.ingress[0]}:${inputId}`, 0);
        // The gen flag is set when a generation was live at enqueue, or when an acquisition adopted
        // the no-lease row (T9); a row without it is in nogen (requeue mode), or nowhere (keep mode).
        if (record.enqueueGen !== undefined) expect(row.gen, inputId).toBe(true);
        if (row.gen) expected.genactive.set(inputId, seq);
        else noGeneration.push(inputId);
        break;
      case 'deferred_next_turn':
        expect(row.ingress, inputId).toBe('n');
        expected.next.set(inputId, seq);
        break;
      case 'accepted':
        expect(row.ingress, inputId).toBe(recordIngress(record));
        expect(row.ingress, inputId).not.toBe('n');
        expect(row.claimId, inputId).toBeDefined();
        expected.accepted.set(inputId, seq);
        break;
    }
  }
  // Every claim a row carries has its entry, counting exactly its carriers; none is orphaned.
  for (const [claimId, n] of carriers) {
    const entry = claimEntries[claimId];
    expect(entry, `claim ${claimId} carried by ${n} rows has no entry`).toBeDefined();
    expect(parseClaim(claimId, entry, generation).carriers, `carriers of ${claimId}`).toBe(n);
  }
  expect(Object.keys(claimEntries).sort(), 'claim entries without carriers').toEqual([...carriers.keys()].sort());
  for (const row of rows.values())
    if (row.claimId) row.claim = parseClaim(row.claimId, claimEntries[row.claimId], generation);
  expect(srcMap).toEqual(expectedSrc);

  // The tomb list holds exactly the tombstones, in the time order they became ones.
  const times = idx.tomb.map((e) => {
    const m = TOMB_ENTRY.exec(e);
    expect(m, `tomb entry ${e}`).not.toBeNull();
    return Number(m![1]);
  });
  for (let i = 1; i < times.length; i++) expect(times[i]).toBeGreaterThanOrEqual(times[i - 1]);
  expect(new Set(idx.tomb).size).toBe(idx.tomb.length);
  // Besides, stale entries of rows that left the failed state (retried, or failed again since):
  // their time is not the row's terminalAtMs, so vacuum drops them without removing the row.
  const current = new Set(expected.tomb);
  const stale = idx.tomb.filter((e) => !current.has(e));
  for (const e of stale) {
    const id = TOMB_ENTRY.exec(e)![2];
    const row = [...rows.values()].find((r) => r.inputId === id);
    expect(row, `stale tomb entry ${e} of no row`).toBeDefined();
    expect(`${row!.terminalAtMs}|${id}`, `stale tomb entry ${e}`).not.toBe(e);
  }
  expect(idx.tomb.filter((e) => current.has(e)).sort()).toEqual([...expected.tomb].sort());
  // SPEC 3.8: the 'f' flag marks exactly the rows with an attempt count.
  expect(flagged.sort(), 'rows flagged f').toEqual(Object.keys(failures).sort());
  for (const [id, json] of Object.entries(failures)) {
    const f = JSON.parse(json) as { attempts: number; lastError: string };
    expect(Object.keys(f), id).toEqual(['attempts', 'lastError']);
    expect(f.attempts, id).toBeGreaterThanOrEqual(1);
  }
  expect({ ...idx, tomb: [] }).toEqual({ ...expected, tomb: [] });

  if (expected.next.size > 0 || expected.accepted.size > 0) {
    expect(await redis.zscore(k.dispatch, enc)).not.toBeNull();
  }
  // nogen is lazy (members whose row moved on stay until an acquisition or a sweep drops them),
  // but it holds every no-generation pending_active row, or none (a keep-mode store adds none).
  const nogen = new Set(await redis.zrange(k.nogen, '0', '-1'));
  if (nogen.size > 0) for (const id of noGeneration) expect(nogen.has(id), `${id} is not in nogen`).toBe(true);
  if (noGeneration.some((id) => nogen.has(id))) expect(await redis.zscore(k.dispatch, enc)).not.toBeNull();
  // The shard `tombs` score is the oldest tombstone's time; no tombstones, no member.
  const tombsScore = await redis.zscore(k.tombs, enc);
  if (times.length > 0) expect(Number(tombsScore)).toBe(times[0]);
  else expect(tombsScore).toBeNull();
  // In enqueueSeq order (HGETALL's order is the hash's own).
  return new Map([...rows].sort(([x], [y]) => x - y));
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
    // Ids and source keys that spell the positional entries' separators and fields
    // (docs/KEYS.md): a state entry keeps its source key last, a tomb entry its input id.
    const inputIds = ['in:1', 'in%3A1', 'line\nbreak', '💬 ü', long, '{x}', 'p|completed|1|tic:1:1|5|n|1|', '7|x'];
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
    // Scripts read a row's state only from its state entry (K.states) and a claim only from its
    // claim entry (K.claims); the record, payload included, is written once and never read by Lua.
    // A payload spelling either of them, or a record's members, changes nothing the scripts see.
    const { store, layout } = await fresh(ctx);
    const redis = adminClient();
    const sid = 'markers';
    const k = layout.session(sid).byName;
    const forgedToken = 'f'.repeat(32);
    const payload = {
      y: 1,
      state: 'completed',
      enqueuedAs: 'accepted',
      entry: 'completed|1|7|tic:1:1|1|n||',
      row: '|completed|1|7|tic:1:1|1|a:t|1|',
      record: '"state":"completed","enqueuedAs":"accepted"',
      claimFencingToken: 7,
      claimId: 'tic:1:1',
      claimToken: forgedToken,
      claim: `1|1|${forgedToken}|1|99999999999999|{"ownerId":"x","incarnationId":"x:1"}`,
      claimOwner: '{"ownerId":"x"}',
      z: ',"input":{}',
    };
    const a = await store.enqueuePendingTurnInput(nt(sid, payload));
    expect(a.state).toBe('deferred_next_turn');
    const record = await redis.hget(k.inputs, a.inputId);
    // A plain next-turn row has no state entry: the payload is all there is to misread.
    expect(await redis.hget(k.states, a.inputId)).toBeNull();
    expect((await store.listPendingTurnInputs(sid)).map((i) => [i.state, i.input])).toStrictEqual([
      ['deferred_next_turn', payload],
    ]);
    // A source key that spells a state entry's fields: the entry keeps it last, so the split stays exact.
    const sourceKey = 'x|completed|9|tic:9:9|1|n|1|';
    const b = await store.enqueuePendingTurnInput(at(sid, 't', 'after_work', payload, { sourceKey }));
    expect(await redis.hget(k.states, b.inputId)).toBe(`pending_active|2|0|||a:t||${sourceKey}`);
    expect((await store.enqueuePendingTurnInput(at(sid, 't', 'after_work', payload, { sourceKey }))).inputId).toBe(
      b.inputId,
    );

    const lease = await acquire(store, sid);
    // An untouched next-turn row whose payload says "completed" and "claimed" is claimable.
    const claim = await next(store, leaseFence(lease), 5);
    expect(claim?.claimId).toBe('tic:1:1');
    expect(claim?.fencingToken).toBe(1);
    expect(claim?.inputs.map((i) => i.input)).toStrictEqual([payload]);
    if (!claim) throw new Error('nothing claimed');
    expect(claim.leaseToken).not.toBe(forgedToken);
    // The claim is in the row's entry and the claim's own entry, nowhere else; the record is untouched.
    expect(await redis.hget(k.states, a.inputId)).toBe('deferred_next_turn|1|1|tic:1:1||n||');
    expect(await redis.hget(k.claims, 'tic:1:1')).toBe(
      `1|${lease.fencingToken}|${claim.leaseToken}|${claim.claimedAtEpochMs}|${claim.expiresAtEpochMs}|${JSON.stringify(claim.owner)}`,
    );
    expect(await redis.hget(k.inputs, a.inputId)).toBe(record);
    // Cancel reports the real claim (from K.claims), not the payload's.
    expect(await store.cancelPendingTurnInput(sid, a.inputId)).toMatchObject({
      outcome: 'already_claimed',
      claim: {
        state: 'deferred_next_turn',
        claimId: 'tic:1:1',
        claimFencingToken: 1,
        claimOwner: claim.owner,
        claimSessionLeaseGeneration: lease.fencingToken,
      },
    });
    // The active row with the same payload and a field-spelling source key is claimable too.
    const activeClaim = await active(store, leaseFence(lease), 't', 'after_work', 5);
    expect(activeClaim?.inputs.map((i) => [i.inputId, i.state, i.sourceKey])).toStrictEqual([
      [b.inputId, 'accepted', sourceKey],
    ]);
    if (!activeClaim) throw new Error('nothing claimed');

    // The row carries a real claim: the same id with the payload's token is not it, nor is a token
    // that runs on into the claim entry's next field, nor a prefix of the real one.
    const commit = (...completions: ReturnType<typeof claimCompletion>[]) =>
      store
        .session(sid)
        .commitRuntimeState(
          minimalCommit(lease, completions, { releaseSessionExecutionLease: leaseCompletion(lease) }),
        );
    const snapshot = await snapshotPrefix(redis, layout.prefix);
    for (const leaseToken of [
      forgedToken,
      `${claim.leaseToken}|${claim.claimedAtEpochMs}`,
      claim.leaseToken.slice(0, -1),
      claim.leaseToken.toUpperCase(),
    ]) {
      const forged = await rejection(commit({ ...claimCompletion(claim), leaseToken }));
      expect(forged.code, leaseToken).toBe('TurnInputClaimSuperseded');
    }
    expect(await snapshotPrefix(redis, layout.prefix)).toEqual(snapshot);
    // A second claim finds nothing: the row carries a live claim (the payload's text is not read).
    expect(await next(store, leaseFence(lease), 5)).toBeNull();
    await commit(claimCompletion(claim), claimCompletion(activeClaim));
    expect(await store.listPendingTurnInputs(sid)).toEqual([]);
    const rows = await assertIndexInvariant(layout, sid);
    expect([...rows.values()].map((r) => [r.state, r.counter, r.claimId, r.sourceKey, r.input])).toStrictEqual([
      ['completed', 1, undefined, undefined, payload],
      ['completed', 1, undefined, sourceKey, payload],
    ]);
    // Records are write-once: completing a row rewrote its entry only.
    expect(await redis.hget(k.inputs, a.inputId)).toBe(record);
    expect(await redis.hlen(k.claims)).toBe(0);
    expect(a.input).toStrictEqual(payload);
  });

  test('failing runs in redis-cli terms: the f flag, the failures hash, failed tombstones and stale tomb entries', async (ctx) => {
    const { store, layout } = await fresh(ctx);
    const redis = adminClient();
    const sid = 'poison';
    const k = layout.session(sid).byName;
    const a = await store.enqueuePendingTurnInput(nt(sid, 'a', { inputId: 'a' }));
    await store.enqueuePendingTurnInput(nt(sid, 'b', { inputId: 'b', sourceKey: 'kb' }));
    const failRun = async (max: number, error = 'boom "quoted"') => {
      const lease = await acquire(store, sid);
      const claim = await next(store, leaseFence(lease), 10);
      if (claim) await store.abandonTurnInputClaims([claim], { failure: { error, maxAttempts: max } });
      await store.releaseSessionExecutionLease(leaseCompletion(lease));
      return claim;
    };
    await failRun(2);
    // Both rows counted, neither failed (a batch): entries readable as they are.
    expect(await redis.hget(k.states, 'a')).toBe('deferred_next_turn|1|1|||n|f|');
    expect(await redis.hget(k.states, 'b')).toBe('deferred_next_turn|2|1|||n|f|kb');
    expect(await redis.hgetall(k.failures)).toEqual({
      a: '{"attempts":1,"lastError":"boom \\"quoted\\""}',
      b: '{"attempts":1,"lastError":"boom \\"quoted\\""}',
    });
    await assertIndexInvariant(layout, sid);
    // Isolated: a alone, which fails (2 >= 2).
    expect((await failRun(2, 'second'))?.inputs.map((i) => [i.inputId, i.attempts, i.lastError])).toEqual([
      ['a', 1, 'boom "quoted"'],
    ]);
    const aEntry = (await redis.hget(k.states, 'a')) ?? '';
    expect(aEntry).toMatch(/^failed\|1\|2\|\|\d+\|n\|f\|$/);
    expect(await redis.hget(k.failures, 'a')).toBe('{"attempts":2,"lastError":"second"}');
    expect(await redis.lrange(k.tomb, 0, -1)).toEqual([`${aEntry.split('|')[4]}|a`]);
    await assertIndexInvariant(layout, sid);
    // Retry: back in `next` at seq 1, flag and count gone; the old tomb entry stays, stale.
    await store.retryFailedTurnInputs(sid, ['a']);
    expect(await redis.hget(k.states, 'a')).toBe('deferred_next_turn|1|2|||n||');
    expect(await redis.zscore(k.next, 'a')).toBe('1');
    expect(await redis.hexists(k.failures, 'a')).toBe(0);
    expect(await redis.llen(k.tomb)).toBe(1);
    await assertIndexInvariant(layout, sid);
    // a is no longer flagged, b still is: the claim takes a and stops before b.
    const lease = await acquire(store, sid);
    const claim = await next(store, leaseFence(lease), 10);
    expect(claim?.inputs.map((i) => i.inputId)).toEqual(['a']);
    await store
      .session(sid)
      .commitRuntimeState(minimalCommit(lease, [claim!], { releaseSessionExecutionLease: leaseCompletion(lease) }));
    await failRun(1, 'b fails');
    await assertIndexInvariant(layout, sid);
    // Vacuum drops a's stale entry without acting on it, then removes a (completed, its own entry)
    // and b (failed); the counts go with their rows.
    expect((await store.vacuum({ olderThanMs: 0 })).removedPendingTurnInputTombstones).toBe(2);
    expect(await redis.exists(k.failures, k.tomb, k.states, k.inputs)).toBe(0);
    expect(a.enqueueSeq).toBe(1);
  });

  test('vacuum takes tombstones from the head of the tomb list in time order; the shard score follows the oldest left', async (ctx) => {
    const { store, layout } = await fresh(ctx);
    const redis = adminClient();
    const sid = 'tombs';
    const k = layout.session(sid).byName;
    const enc = layout.session(sid).encodedSessionId;
    const serverNow = async () => {
      const [s, us] = await redis.time();
      return Number(s) * 1000 + Math.floor(Number(us) / 1000);
    };
    /** Waits until the server clock is past `ms` (the event vacuum's cutoff is computed from). */
    const clockPast = async (ms: number) => {
      while ((await serverNow()) <= ms) await new Promise((r) => setTimeout(r, 5));
    };
    const tomb = async () =>
      (await redis.lrange(k.tomb, 0, -1)).map((e) => {
        const [t, ...id] = e.split('|');
        return [Number(t), id.join('|')] as const;
      });
    const r: PendingTurnInput[] = [];
    for (let i = 0; i < 7; i++)
      r.push(await store.enqueuePendingTurnInput(nt(sid, { i }, i === 3 ? { sourceKey: 'k|3' } : {})));
    const lease = await acquire(store, sid);
    const cancel = async (row: PendingTurnInput) =>
      expect((await store.cancelPendingTurnInput(sid, row.inputId)).outcome).toBe('cancelled');

    // Group A, out of seq order.
    for (const i of [3, 1, 5]) await cancel(r[i]);
    const a = await tomb();
    expect(a.map(([, id]) => id)).toEqual([r[3], r[1], r[5]].map((x) => x.inputId));
    expect(Number(await redis.zscore(k.tombs, enc))).toBe(a[0][0]);
    // Group B, later: a completion (of r0, the first claimable row) and a cancel.
    await clockPast(a[2][0] + 150);
    const claim = await next(store, leaseFence(lease), 1);
    expect(claim?.inputs.map((i) => i.inputId)).toEqual([r[0].inputId]);
    await store.session(sid).commitRuntimeState(minimalCommit(lease, [claimCompletion(claim!)], {}));
    await cancel(r[6]);
    // Group C, later again.
    const ab = await tomb();
    await clockPast(ab[4][0] + 150);
    await cancel(r[2]);
    const all = await tomb();
    expect(all.map(([, id]) => id)).toEqual([3, 1, 5, 0, 6, 2].map((i) => r[i].inputId));
    for (let i = 1; i < all.length; i++) expect(all[i][0]).toBeGreaterThanOrEqual(all[i - 1][0]);
    expect(all[3][0]).toBeGreaterThan(all[2][0] + 150);
    expect(all[5][0]).toBeGreaterThan(all[4][0] + 150);
    expect(Number(await redis.zscore(k.tombs, enc))).toBe(all[0][0]);
    await assertIndexInvariant(layout, sid);

    // Each vacuum takes a due prefix of the list and rescores the session to the oldest left.
    const gone = async (i: number) => {
      expect(await redis.hexists(k.inputs, r[i].inputId)).toBe(0);
      expect(await redis.hexists(k.states, r[i].inputId)).toBe(0);
    };
    // Due: everything at least (now - A's last) old, i.e. group A and none of B.
    expect(await store.vacuum({ olderThanMs: (await serverNow()) - all[2][0] })).toEqual({
      removedPendingTurnInputTombstones: 3,
    });
    for (const i of [3, 1, 5]) await gone(i);
    expect(await redis.hexists(k.src, 'k|3')).toBe(0);
    expect(await tomb()).toEqual(all.slice(3));
    expect(Number(await redis.zscore(k.tombs, enc))).toBe(all[3][0]);
    await assertIndexInvariant(layout, sid);

    expect(await store.vacuum({ olderThanMs: (await serverNow()) - all[4][0] })).toEqual({
      removedPendingTurnInputTombstones: 2,
    });
    for (const i of [0, 6]) await gone(i);
    expect(await tomb()).toEqual(all.slice(5));
    expect(Number(await redis.zscore(k.tombs, enc))).toBe(all[5][0]);
    await assertIndexInvariant(layout, sid);

    // The last one: the list is gone and so is the session's `tombs` member.
    expect(await store.vacuum({ olderThanMs: 0 })).toEqual({ removedPendingTurnInputTombstones: 1 });
    await gone(2);
    expect(await redis.exists(k.tomb)).toBe(0);
    expect(await redis.zscore(k.tombs, enc)).toBeNull();
    // Untouched: the one pending row.
    expect(ids(await store.listPendingTurnInputs(sid))).toEqual([r[4].inputId]);
    const rows = await assertIndexInvariant(layout, sid);
    expect([...rows.values()].map((x) => [x.inputId, x.state])).toEqual([[r[4].inputId, 'deferred_next_turn']]);
    // A new tombstone starts the list and the shard member afresh.
    await cancel(r[4]);
    const last = await tomb();
    expect(last.map(([, id]) => id)).toEqual([r[4].inputId]);
    expect(Number(await redis.zscore(k.tombs, enc))).toBe(last[0][0]);
    await assertIndexInvariant(layout, sid);
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
    expect(rows1.get(a4.enqueueSeq)?.record.enqueueGen).toBe(lease.fencingToken);
    expect(rows1.get(a4.enqueueSeq)).toMatchObject({ state: 'pending_active', gen: true, ingress: 'a:t1' });
    // a1 was enqueued with no lease live; the acquisition adopted it (T9), within its grace.
    expect(rows1.get(a1.enqueueSeq)?.record.enqueueGen).toBeUndefined();
    expect(rows1.get(a1.enqueueSeq)).toMatchObject({ state: 'pending_active', gen: true, ingress: 'a:t1' });
    // n1 is a plain next-turn row: no state entry until its first transition.
    expect(rows1.get(n1.enqueueSeq)?.entry).toBeUndefined();
    expect(rows1.get(n2.enqueueSeq)?.entry).toBe(`deferred_next_turn|${n2.enqueueSeq}|0|||n||src:n2`);
    // a5 (T3): the record keeps the ingress it was enqueued with, the entry says next_turn.
    expect(rows1.get(a5.enqueueSeq)?.record).toMatchObject({
      enqueuedAs: 'deferred_next_turn',
      scope: 'active_turn',
      turnId: 'tdone',
      minBoundary: 'before_completion',
      enqueueGen: lease.fencingToken,
    });
    expect(rows1.get(a5.enqueueSeq)?.entry).toBe(`deferred_next_turn|${a5.enqueueSeq}|0|||n|1|src:a5`);

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
    expect(rows2.get(a1.enqueueSeq)).toMatchObject({ state: 'pending_active', counter: 1, ingress: 'a:t1' });
    expect(rows2.get(a1.enqueueSeq)?.claimId).toBeUndefined();
    expect(rows2.get(a3.enqueueSeq)).toMatchObject({ state: 'deferred_next_turn', ingress: 'n', counter: 1 });
    expect(rows2.get(a3.enqueueSeq)?.record).toMatchObject({ scope: 'active_turn', turnId: 't2' });
    expect(rows2.get(n1.enqueueSeq)).toMatchObject({ state: 'deferred_next_turn', counter: 1 });
    expect(rows2.get(n1.enqueueSeq)?.claimId).toBeUndefined();
    // Every claim lost its last carrier, so no claim entry is left.
    expect(await redis.hlen(k.claims)).toBe(0);
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

  test('a new generation (T9), an interrupt (T10) and a claim over a dead one keep every index and claim entry true', async (ctx) => {
    const { store, layout } = await fresh(ctx);
    const sid = 'gens';
    const redis = adminClient();
    const k = layout.session(sid).byName;
    // Generation 1, dead on arrival for its claims' purposes once generation 2 starts.
    const l1 = await store.tryClaimSessionExecutionLease(sid, O('w1'), 0);
    if (l1.outcome !== 'acquired') throw new Error('busy');
    const g1 = await acquire(store, sid, O('w1b'));
    expect(g1.fencingToken).toBe(2);
    const n = [];
    for (let i = 0; i < 3; i++) n.push(await store.enqueuePendingTurnInput(nt(sid, `n${i}`)));
    const a = [];
    for (let i = 0; i < 3; i++) a.push(await store.enqueuePendingTurnInput(at(sid, 't1', 'after_work', `a${i}`)));
    const stray = await store.enqueuePendingTurnInput(at(sid, 't9', 'before_completion', 'stray'));
    const kn = await next(store, leaseFence(g1), 2);
    const ka = await active(store, leaseFence(g1), 't1', 'after_work', 2);
    expect(kn?.claimId).toBe(`tic:${n[0].enqueueSeq}:1`);
    expect(ka?.claimId).toBe(`tic:${a[0].enqueueSeq}:1`);
    let rows = await assertIndexInvariant(layout, sid);
    expect(rows.get(kn!.inputs[0].enqueueSeq)?.claim).toMatchObject({ carriers: 2, generation: 2 });
    expect(rows.get(ka!.inputs[1].enqueueSeq)?.claim).toMatchObject({ carriers: 2, generation: 2 });
    expect(rows.get(stray.enqueueSeq)).toMatchObject({ state: 'pending_active', gen: true });

    // The holder dies; generation 3 starts: T9 requeues the accepted rows and the rows enqueued
    // under a generation (claims cleared, so ka's entry goes); the next-turn claim of a dead
    // generation stays on its rows until a claim takes them over.
    await store.releaseSessionExecutionLease(leaseFence(g1));
    const g2 = await acquire(store, sid, O('w2'));
    expect(g2.fencingToken).toBe(3);
    rows = await assertIndexInvariant(layout, sid);
    for (const x of [...a, stray])
      expect(rows.get(x.enqueueSeq)).toMatchObject({ state: 'deferred_next_turn', ingress: 'n' });
    expect(await redis.hexists(k.claims, ka!.claimId)).toBe(0);
    expect(await redis.hexists(k.claims, kn!.claimId)).toBe(1);

    // A claim of generation 3 takes the dead claim over row by row: its carriers count down to 0.
    const k1 = await next(store, leaseFence(g2), 1);
    expect(k1?.inputs.map((i) => i.inputId)).toEqual([n[0].inputId]);
    expect(k1?.claimId).toBe(`tic:${n[0].enqueueSeq}:2`);
    rows = await assertIndexInvariant(layout, sid);
    expect(rows.get(n[1].enqueueSeq)?.claim).toMatchObject({ carriers: 1, generation: 2 });
    const k2 = await next(store, leaseFence(g2), 1);
    expect(k2?.inputs.map((i) => i.inputId)).toEqual([n[1].inputId]);
    expect(await redis.hexists(k.claims, kn!.claimId)).toBe(0);
    await assertIndexInvariant(layout, sid);

    // T10: a commit that interrupts t2 defers its pending rows, and completes k1.
    const b = await store.enqueuePendingTurnInput(at(sid, 't2', 'after_work', 'b'));
    const c = await store.enqueuePendingTurnInput(at(sid, 't2', 'before_completion', 'c', { sourceKey: 'c' }));
    await store.session(sid).commitRuntimeState(minimalCommit(g2, [k1!], { interruptedTurnInputTurnId: 't2' }));
    rows = await assertIndexInvariant(layout, sid);
    expect(rows.get(n[0].enqueueSeq)).toMatchObject({ state: 'completed', counter: 2 });
    for (const x of [b, c]) expect(rows.get(x.enqueueSeq)).toMatchObject({ state: 'deferred_next_turn', ingress: 'n' });
    expect(await redis.hexists(k.claims, k1!.claimId)).toBe(0);
    expect(await redis.hexists(k.claims, k2!.claimId)).toBe(1);
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
