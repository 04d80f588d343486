/**
 * White-box tests of the in-memory reference store, with an injected clock. The shared
 * conformance suite (test/conformance) covers the contract on both backends; this file pins the
 * tricky parts against exact clock values and checks internal state directly (rows, indexes,
 * blobs, counters), including a deep snapshot before and after every commit rejection path.
 *
 * It imports the memory backend directly (not src/index.ts) so it runs without the Redis side.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { isStoreError, type StoreError, type StoreErrorCode } from '../../src/contract/errors.js';
import type {
  CheckpointKind,
  LeaseOwnerIdentity,
  PendingTurnInputDraft,
  RuntimeCommit,
  RuntimeStore,
  SessionExecutionLease,
  SessionExecutionLeaseFence,
  SessionNodeRecord,
  TokenLedgerEntry,
  TurnInputClaim,
} from '../../src/contract/types.js';
import { canonical, sha256hex } from '../../src/core/canonical.js';
import { claimCompletion, leaseCompletion, leaseFence } from '../../src/core/projections.js';
import { turnCommitHash } from '../../src/core/turn-commit-hash.js';
import { createInMemoryRuntimeStore, memoryStoreState } from '../../src/memory/memory-store.js';

// ---------------------------------------------------------------- helpers

const LONG = 600_000;

function O(x: string): LeaseOwnerIdentity {
  return { ownerId: x, incarnationId: `${x}:1`, liveness: { kind: 'opaque' } };
}

type Body = Omit<PendingTurnInputDraft, 'sessionId'>;

function nt(text: string, extra: Partial<Pick<PendingTurnInputDraft, 'sourceKey' | 'inputId'>> = {}): Body {
  return { ...extra, ingress: { scope: 'next_turn' }, input: { text } };
}

function at(
  turnId: string,
  boundary: CheckpointKind | undefined,
  text = 'active',
  extra: Partial<Pick<PendingTurnInputDraft, 'sourceKey' | 'inputId'>> = {},
): Body {
  const ingress: PendingTurnInputDraft['ingress'] =
    boundary === undefined ? { scope: 'active_turn', turnId } : { scope: 'active_turn', turnId, minBoundary: boundary };
  return { ...extra, ingress, input: { text } };
}

function setup(options: { strandedTurnInputs?: 'requeue' | 'keep'; tombstoneRetentionMs?: number } = {}) {
  const clock = { now: 0 };
  const store = createInMemoryRuntimeStore({ ...options, now: () => clock.now });
  const state = () => memoryStoreState(store);
  return {
    store,
    clock,
    state,
    /** A deep copy of everything the store holds. */
    snapshot: () => structuredClone(state()),
    enqueue: (sessionId: string, body: Body) => store.enqueuePendingTurnInput({ sessionId, ...body }),
    acquire: async (sessionId: string, owner = O('w'), ttl = LONG): Promise<SessionExecutionLease> => {
      const r = await store.tryClaimSessionExecutionLease(sessionId, owner, ttl);
      if (r.outcome !== 'acquired') throw new Error(`expected acquired, got busy (${r.holder.owner.ownerId})`);
      return r.lease;
    },
    /** The internal row of an input. */
    row: (sessionId: string, inputId: string) => {
      const table = state().sessions.get(sessionId)!.inputs;
      return table.rows.get(table.byId.get(inputId)!)!;
    },
  };
}

function claimNext(
  store: RuntimeStore,
  lease: SessionExecutionLease,
  maxInputs = 100,
  leaseTtlMs = LONG,
): Promise<TurnInputClaim | null> {
  return store.claimNextTurnInputs({
    sessionId: lease.sessionId,
    fence: leaseFence(lease),
    owner: lease.owner,
    leaseTtlMs,
    maxInputs,
  });
}

function claimActive(
  store: RuntimeStore,
  lease: SessionExecutionLease,
  turnId: string,
  checkpoint: CheckpointKind,
  maxInputs = 100,
): Promise<TurnInputClaim | null> {
  return store.claimActiveTurnInputs({
    sessionId: lease.sessionId,
    fence: leaseFence(lease),
    owner: lease.owner,
    turnId,
    checkpoint,
    leaseTtlMs: LONG,
    maxInputs,
  });
}

function commitOf(
  sessionId: string,
  fence?: SessionExecutionLeaseFence,
  extra: Partial<RuntimeCommit> = {},
): RuntimeCommit {
  const c: RuntimeCommit = {
    sessionId,
    config: { model: 'm' },
    agentFrames: [{ frame: 1 }],
    currentAgentFrameId: 'f1',
    graph: { kind: 'unchanged' },
    checkpoint: { turnState: { step: 1 } },
    usageDeltas: [],
    completedTurnInputClaims: [],
    committedAttachmentIds: [],
    ...extra,
  };
  if (fence && !('sessionExecutionLease' in extra))
    c.sessionExecutionLease = leaseFence(fence as SessionExecutionLease);
  return c;
}

function node(nodeId: string, parentNodeId?: string): SessionNodeRecord {
  return parentNodeId === undefined
    ? { nodeId, timestamp: `ts-${nodeId}`, body: { n: nodeId } }
    : { nodeId, parentNodeId, timestamp: `ts-${nodeId}`, body: { n: nodeId } };
}

function usage(source: string, model: string, i = 0, o = 0, cr = 0, cw = 0, r = 0): TokenLedgerEntry {
  return {
    source,
    model,
    usage: {
      inputTokens: i,
      outputTokens: o,
      cacheReadInputTokens: cr,
      cacheWriteInputTokens: cw,
      reasoningOutputTokens: r,
    },
  };
}

async function storeError(
  promise: Promise<unknown>,
  code: StoreErrorCode,
  details?: Record<string, unknown>,
): Promise<StoreError> {
  let error: unknown;
  try {
    await promise;
  } catch (e) {
    error = e;
  }
  expect(isStoreError(error, code), `expected StoreError ${code}, got ${String(error)}`).toBe(true);
  const e = error as StoreError;
  expect(e.message.startsWith(code)).toBe(true);
  if (details) expect(e.details).toEqual(details);
  return e;
}

/** The StoreError code a synchronous call threw. */
function syncError(fn: () => unknown): StoreErrorCode | undefined {
  try {
    fn();
  } catch (e) {
    return isStoreError(e) ? e.code : undefined;
  }
  return undefined;
}

const ids = (rows: { inputId: string }[]) => rows.map((r) => r.inputId);

/** Asserts that no optional field anywhere is present as undefined or null (SPEC 2.5). */
function assertNoUndefined(value: unknown, path = '(value)'): void {
  if (value === undefined) throw new Error(`${path} is undefined`);
  if (value === null || typeof value !== 'object' || value instanceof Uint8Array) return;
  for (const [k, v] of Object.entries(value)) {
    if (v === undefined) throw new Error(`${path}.${k} is present as undefined`);
    assertNoUndefined(v, `${path}.${k}`);
  }
}

// ---------------------------------------------------------------- leases

describe('leases (E7, re-entry, reclaim)', () => {
  test('E7: re-entry keeps token, generation and claimedAt; other incarnations are busy; release keeps the counter', async () => {
    const { store, clock } = setup();
    clock.now = 1_000;
    const r1 = await store.tryClaimSessionExecutionLease('s7', O('w1'), 30_000);
    expect(r1).toEqual({
      outcome: 'acquired',
      lease: {
        sessionId: 's7',
        owner: O('w1'),
        leaseToken: expect.any(String),
        fencingToken: 1,
        claimedAtEpochMs: 1_000,
        expiresAtEpochMs: 31_000,
      },
    });
    if (r1.outcome !== 'acquired') throw new Error('unreachable');
    const t1 = r1.lease;
    expect(t1.leaseToken).toMatch(/^[0-9a-f]{32}$/);

    clock.now = 5_000;
    const r2 = await store.tryClaimSessionExecutionLease('s7', O('w1'), 60_000);
    expect(r2).toEqual({ outcome: 'acquired', lease: { ...t1, expiresAtEpochMs: 65_000 } });

    clock.now = 6_000;
    const heldT1 = { ...t1, expiresAtEpochMs: 65_000 };
    expect(await store.tryClaimSessionExecutionLease('s7', { ownerId: 'w1', incarnationId: 'w1:2' }, 1)).toEqual({
      outcome: 'busy',
      holder: heldT1,
    });
    expect(await store.tryClaimSessionExecutionLease('s7', O('w2'), 1)).toEqual({ outcome: 'busy', holder: heldT1 });

    clock.now = 7_000;
    await store.releaseSessionExecutionLease(leaseCompletion(t1));
    const r3 = await store.tryClaimSessionExecutionLease('s7', O('w2'), 30_000);
    if (r3.outcome !== 'acquired') throw new Error('expected acquired');
    expect(r3.lease).toMatchObject({ fencingToken: 2, claimedAtEpochMs: 7_000, expiresAtEpochMs: 37_000 });
    expect(r3.lease.leaseToken).not.toBe(t1.leaseToken);

    // A stale release is a silent no-op; a stale renew is rejected.
    await store.releaseSessionExecutionLease(leaseCompletion(t1));
    expect(await store.tryClaimSessionExecutionLease('s7', O('w3'), 1)).toEqual({ outcome: 'busy', holder: r3.lease });
    await storeError(store.renewSessionExecutionLease(leaseFence(t1), 1_000), 'SessionExecutionLeaseExpired', {
      sessionId: 's7',
    });

    clock.now = 8_000;
    const b1 = await store.tryClaimSessionExecutionLease('s7b', O('w3'), 0);
    expect(b1).toMatchObject({ outcome: 'acquired', lease: { fencingToken: 1, expiresAtEpochMs: 8_000 } });
    const b2 = await store.tryClaimSessionExecutionLease('s7b', O('w4'), 30_000);
    expect(b2).toMatchObject({ outcome: 'acquired', lease: { fencingToken: 2, owner: O('w4') } });
  });

  test('re-entry may shorten the lease and a ttl of 0 ends it; expiry equality counts as expired', async () => {
    const { store, clock, acquire } = setup();
    clock.now = 100;
    const l1 = await acquire('s', O('a'), 1_000);
    clock.now = 200;
    const again = await store.tryClaimSessionExecutionLease('s', O('a'), 10);
    expect(again).toEqual({ outcome: 'acquired', lease: { ...l1, expiresAtEpochMs: 210 } });
    clock.now = 210; // expiresAt == now: expired
    await storeError(store.renewSessionExecutionLease(leaseFence(l1), 1_000), 'SessionExecutionLeaseExpired');
    const l2 = await acquire('s', O('a'), 1_000); // the same owner gets a fresh generation now
    expect(l2.fencingToken).toBe(2);
    expect(l2.claimedAtEpochMs).toBe(210);
    const ended = await store.tryClaimSessionExecutionLease('s', O('a'), 0);
    expect(ended).toMatchObject({ outcome: 'acquired', lease: { fencingToken: 2, expiresAtEpochMs: 210 } });
    const l3 = await acquire('s', O('b'), 1_000);
    expect(l3.fencingToken).toBe(3);
  });

  test('re-entry keeps the stored owner (its liveness) and renew keeps everything but the expiry', async () => {
    const { store, clock, acquire } = setup();
    const owner: LeaseOwnerIdentity = { ownerId: 'o', incarnationId: 'i' };
    const l1 = await acquire('s', owner, 100);
    expect(l1.owner).toEqual({ ownerId: 'o', incarnationId: 'i', liveness: { kind: 'opaque' } });
    const local = {
      ownerId: 'o',
      incarnationId: 'i',
      liveness: { kind: 'local_process' as const, hostId: 'h', bootId: 'b', pid: 1, processStart: '1' },
    };
    const again = await store.tryClaimSessionExecutionLease('s', local, 100);
    expect(again).toEqual({ outcome: 'acquired', lease: l1 });
    clock.now = 50;
    const renewed = await store.renewSessionExecutionLease({ ...leaseFence(l1), owner: local }, 500);
    expect(renewed).toEqual({ ...l1, expiresAtEpochMs: 550 });
  });

  test('the fencing counter survives release, expiry and vacuum', async () => {
    const { store, clock, acquire } = setup();
    for (let g = 1; g <= 3; g++) {
      const l = await acquire('s', O(`w${g}`), 10);
      expect(l.fencingToken).toBe(g);
      if (g % 2 === 0) await store.releaseSessionExecutionLease(leaseCompletion(l));
      else clock.now += 10;
      await store.vacuum({ olderThanMs: 0 });
    }
    expect((await acquire('s')).fencingToken).toBe(4);
  });

  describe('reclaim', () => {
    const bootId = (() => {
      try {
        return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
      } catch {
        return undefined;
      }
    })();
    const local = (id: string, pid: number, processStart = '12345'): LeaseOwnerIdentity => ({
      ownerId: id,
      incarnationId: `${id}:1`,
      liveness: { kind: 'local_process', hostId: 'host-a', bootId: bootId ?? 'boot', pid, processStart },
    });
    const DEAD_PID = 999_999_999; // above any pid_max: /proc/<pid>/stat cannot exist

    test.runIf(bootId !== undefined)(
      'takes over a live holder only on an exact observation and a dead verdict',
      async () => {
        const { store, clock, acquire, enqueue, row } = setup();
        const holder = await acquire('s', local('dead', DEAD_PID), LONG);
        const a = await enqueue('s', at('t1', 'after_work', 'x'));
        const claim = await claimActive(store, holder, 't1', 'after_work');
        expect(claim?.inputs.map((i) => i.state)).toEqual(['accepted']);
        clock.now = 10;

        // (a) fails: liveness differs in one field, or a stale token / generation.
        const wrongStart = { ...leaseFence(holder), owner: local('dead', DEAD_PID, '999') };
        const busy = { outcome: 'busy', holder };
        expect(await store.reclaimSessionExecutionLease('s', local('me', process.pid), wrongStart, LONG)).toEqual(busy);
        const staleToken = { ...leaseFence(holder), leaseToken: 'nope' };
        expect(await store.reclaimSessionExecutionLease('s', local('me', process.pid), staleToken, LONG)).toEqual(busy);
        const otherSession = { ...leaseFence(holder), sessionId: 'other' };
        expect(await store.reclaimSessionExecutionLease('s', local('me', process.pid), otherSession, LONG)).toEqual(
          busy,
        );
        // (b) fails: an opaque claimant can never prove deadness.
        expect(await store.reclaimSessionExecutionLease('s', O('me'), leaseFence(holder), LONG)).toEqual(busy);
        // (b) fails: the holder is this very process (alive).
        const alive = await (async () => {
          const { store: s2, acquire: acq } = setup();
          const start = readFileSync('/proc/self/stat', 'utf8').split(')').pop()!.trim().split(/\s+/)[19];
          const h = await acq('s', local('alive', process.pid, start), LONG);
          return s2.reclaimSessionExecutionLease('s', local('me', process.pid), leaseFence(h), LONG);
        })();
        expect(alive.outcome).toBe('busy');

        const taken = await store.reclaimSessionExecutionLease(
          's',
          local('me', process.pid),
          leaseFence(holder),
          1_000,
        );
        expect(taken).toMatchObject({
          outcome: 'acquired',
          lease: { fencingToken: 2, claimedAtEpochMs: 10, expiresAtEpochMs: 1_010, owner: local('me', process.pid) },
        });
        // The takeover is a fresh acquisition: T9 requeued the accepted row.
        expect(row('s', a.inputId)).toMatchObject({ state: 'deferred_next_turn', claimFencingToken: 1 });
        expect(row('s', a.inputId).claim).toBeUndefined();
        // A second reclaimer with the same (now stale) observation is busy.
        const second = await store.reclaimSessionExecutionLease(
          's',
          local('me2', process.pid),
          leaseFence(holder),
          1_000,
        );
        expect(second.outcome).toBe('busy');
      },
    );

    test('a lease that is not live is acquired whatever the observation says', async () => {
      const { store, clock, acquire } = setup();
      const l1 = await acquire('s', O('a'), 10);
      clock.now = 10;
      const r = await store.reclaimSessionExecutionLease('s', O('b'), { ...leaseFence(l1), leaseToken: 'junk' }, 5);
      expect(r).toMatchObject({ outcome: 'acquired', lease: { fencingToken: 2, owner: O('b'), expiresAtEpochMs: 15 } });
    });
  });
});

// ---------------------------------------------------------------- turn inputs

describe('turn inputs', () => {
  test('E3: next-turn claim, abandon, reclaim, superseded completion writes nothing', async () => {
    const { store, enqueue, acquire, snapshot, row } = setup();
    const F = await enqueue('s3', nt('first'));
    const S = await enqueue('s3', nt('second'));
    expect(F.inputId).toMatch(/^ti_[0-9a-f-]{36}$/);
    expect([F.enqueueSeq, S.enqueueSeq]).toEqual([1, 2]);
    const L1 = await acquire('s3');
    const K = await claimNext(store, L1, 10);
    expect(K).toMatchObject({
      claimId: 'tic:1:1',
      fencingToken: 1,
      sessionLeaseGeneration: 1,
      mode: { kind: 'next_turn' },
      inputs: [
        { inputId: F.inputId, state: 'deferred_next_turn' },
        { inputId: S.inputId, state: 'deferred_next_turn' },
      ],
    });
    expect(K!.leaseToken).toMatch(/^[0-9a-f]{32}$/);
    expect(await claimNext(store, L1, 10)).toBeNull();
    expect(await store.listPendingTurnInputs('s3')).toEqual([]);
    expect(await store.cancelPendingTurnInput('s3', F.inputId)).toMatchObject({
      outcome: 'already_claimed',
      claim: { state: 'deferred_next_turn', claimId: 'tic:1:1', claimFencingToken: 1, claimSessionLeaseGeneration: 1 },
    });

    await store.abandonTurnInputClaim(K!);
    expect(ids(await store.listPendingTurnInputs('s3'))).toEqual([F.inputId, S.inputId]);
    expect([row('s3', F.inputId).claimFencingToken, row('s3', S.inputId).claimFencingToken]).toEqual([1, 1]);
    // Abandon is idempotent.
    await store.abandonTurnInputClaim(K!);

    const R = await claimNext(store, L1, 10);
    expect(R).toMatchObject({ claimId: 'tic:1:2', fencingToken: 2 });

    const before = snapshot();
    await storeError(
      store.session('s3').commitRuntimeState(commitOf('s3', L1, { completedTurnInputClaims: [claimCompletion(K!)] })),
      'TurnInputClaimSuperseded',
      { sessionId: 's3', claimId: 'tic:1:1' },
    );
    expect(snapshot()).toEqual(before);

    const ok = await store.session('s3').commitRuntimeState(
      commitOf('s3', L1, {
        completedTurnInputClaims: [claimCompletion(R!)],
        releaseSessionExecutionLease: leaseCompletion(L1),
      }),
    );
    expect(ok.headRevision).toBe(1);
    expect(row('s3', F.inputId)).toMatchObject({ state: 'completed', terminalAtMs: 0, claimFencingToken: 2 });
    expect(row('s3', F.inputId).claim).toBeUndefined();
    expect(await store.cancelPendingTurnInput('s3', F.inputId)).toMatchObject({ outcome: 'already_completed' });
    const L2 = await acquire('s3');
    expect(L2.fencingToken).toBe(2);
    expect(await claimNext(store, L2)).toBeNull();
  });

  test('E8: a fresh generation requeues orphaned accepted input (requeue mode)', async () => {
    const { store, clock, enqueue, acquire, row, snapshot } = setup();
    const q1 = await enqueue('s8', at('t1', 'after_work', 'q', { sourceKey: 'k:q1' }));
    const A = await acquire('s8', O('A'), 30_000);
    const KA = await claimActive(store, A, 't1', 'after_work');
    expect(KA).toMatchObject({ claimId: 'tic:1:1', inputs: [{ state: 'accepted' }] });

    clock.now = 31_000;
    expect(await store.listPendingTurnInputs('s8')).toEqual([]);
    expect(await store.cancelPendingTurnInput('s8', q1.inputId)).toEqual({
      outcome: 'already_claimed',
      input: { ...q1, state: 'accepted' },
      claim: {
        state: 'accepted',
        claimId: 'tic:1:1',
        claimOwner: O('A'),
        claimSessionLeaseGeneration: 1,
        claimFencingToken: 1,
      },
    });

    const B = await acquire('s8', O('B'));
    expect(B.fencingToken).toBe(2);
    const r = row('s8', q1.inputId);
    expect(r).toMatchObject({
      seq: 1,
      state: 'deferred_next_turn',
      ingress: { scope: 'next_turn' },
      origIngress: { scope: 'active_turn', turnId: 't1', minBoundary: 'after_work' },
      claimFencingToken: 1,
    });
    expect(r.claim).toBeUndefined();
    expect(await store.listPendingTurnInputs('s8')).toEqual([
      { ...q1, state: 'deferred_next_turn', ingress: { scope: 'next_turn' } },
    ]);
    const KB = await claimNext(store, B);
    expect(KB).toMatchObject({ claimId: 'tic:1:2', fencingToken: 2, sessionLeaseGeneration: 2 });

    const before = snapshot();
    await storeError(
      store.session('s8').commitRuntimeState(commitOf('s8', A, { completedTurnInputClaims: [claimCompletion(KA!)] })),
      'SessionExecutionLeaseExpired',
      { sessionId: 's8' },
    );
    await storeError(
      store.session('s8').commitRuntimeState(commitOf('s8', B, { completedTurnInputClaims: [claimCompletion(KA!)] })),
      'TurnInputClaimSuperseded',
      { sessionId: 's8', claimId: 'tic:1:1' },
    );
    expect(snapshot()).toEqual(before);
    // A replay of the original draft matches the original ingress and returns the row as it is now.
    expect(await enqueue('s8', at('t1', undefined, 'q', { sourceKey: 'k:q1' }))).toEqual({
      ...q1,
      state: 'deferred_next_turn',
      ingress: { scope: 'next_turn' },
    });
    // ...but the rewritten ingress is not the original: that is a conflict.
    await storeError(enqueue('s8', nt('q', { sourceKey: 'k:q1' })), 'PendingTurnInputSourceKeyConflict', {
      sessionId: 's8',
      sourceKey: 'k:q1',
      existingInputId: q1.inputId,
    });
    expect(snapshot()).toEqual(before);
  });

  test("E8 with 'keep': the accepted row stays accepted and hidden", async () => {
    const { store, clock, enqueue, acquire, row } = setup({ strandedTurnInputs: 'keep' });
    const q1 = await enqueue('s8', at('t1', 'after_work'));
    const A = await acquire('s8', O('A'), 30_000);
    const pa = await enqueue('s8', at('t1', 'after_work', 'while live')); // enqueueGen 1
    const KA = await claimActive(store, A, 't1', 'after_work', 1);
    clock.now = 31_000;
    const B = await acquire('s8', O('B'));
    expect(row('s8', q1.inputId)).toMatchObject({ state: 'accepted', claim: { claimId: 'tic:1:1', claimGen: 1 } });
    expect(row('s8', pa.inputId)).toMatchObject({ state: 'pending_active', enqueueGen: 1 });
    expect(ids(await store.listPendingTurnInputs('s8'))).toEqual([pa.inputId]);
    expect(await claimNext(store, B)).toBeNull();
    expect(ids((await claimActive(store, B, 't1', 'after_work'))!.inputs)).toEqual([pa.inputId]);
    // Only the claim's own completion (or abandon) releases it; ownership, not liveness.
    await store
      .session('s8')
      .commitRuntimeState(commitOf('s8', B, { completedTurnInputClaims: [claimCompletion(KA!)] }));
    expect(row('s8', q1.inputId).state).toBe('completed');
  });

  test('T9 moves pending_active rows enqueued under a generation; a row enqueued while no lease was live is adopted within its grace', async () => {
    const { store, clock, enqueue, acquire, row } = setup();
    const before = await enqueue('s', at('t1', 'before_completion', 'no lease'));
    const L1 = await acquire('s', O('a'), 100);
    const during = await enqueue('s', at('t1', 'before_completion', 'under gen 1', { sourceKey: 'k' }));
    const next = await enqueue('s', nt('n'));
    // Adopted by generation 1 (the grace is 30 s by default): its deadline is dropped.
    expect(row('s', before.inputId).enqueueGen).toBe(1);
    expect(row('s', before.inputId).graceDeadlineMs).toBeUndefined();
    expect(row('s', during.inputId).enqueueGen).toBe(1);
    expect(row('s', next.inputId).enqueueGen).toBe(1);
    // Re-entry is not a fresh acquisition: nothing moves.
    await store.tryClaimSessionExecutionLease('s', O('a'), 100);
    expect(row('s', during.inputId).state).toBe('pending_active');
    clock.now = 100;
    expect(L1.fencingToken).toBe(1);
    await acquire('s', O('b'));
    // Generation 1 ended without admitting it: it moves with the rest.
    expect(row('s', before.inputId)).toMatchObject({
      state: 'deferred_next_turn',
      ingress: { scope: 'next_turn' },
      seq: 1,
    });
    expect(row('s', during.inputId)).toMatchObject({
      state: 'deferred_next_turn',
      ingress: { scope: 'next_turn' },
      origIngress: { scope: 'active_turn', turnId: 't1', minBoundary: 'before_completion' },
      seq: 2,
    });
    expect(ids(await store.listPendingTurnInputs('s'))).toEqual([before.inputId, during.inputId, next.inputId]);
  });

  test('E9: claim liveness follows the lease, not the stall deadline', async () => {
    const { store, clock, enqueue, acquire } = setup();
    const n1 = await enqueue('s9', nt('n1'));
    const L1 = await acquire('s9', O('w'), 60_000);
    const K1 = await claimNext(store, L1, 10, 1);
    expect(K1).toMatchObject({ claimedAtEpochMs: 0, expiresAtEpochMs: 1 });
    clock.now = 2_000;
    expect(await store.listPendingTurnInputs('s9')).toEqual([]);
    expect(
      (await store.cancelPendingTurnInputs('s9', [{ kind: 'input_id', value: n1.inputId }]))[0].outcome.outcome,
    ).toBe('already_claimed');
    await store.releaseSessionExecutionLease(leaseCompletion(L1));
    expect(ids(await store.listPendingTurnInputs('s9'))).toEqual([n1.inputId]);
    const L2 = await acquire('s9');
    expect(L2.fencingToken).toBe(2);
    const K2 = await claimNext(store, L2);
    expect(K2?.claimId).toBe('tic:1:2');
    await storeError(
      store.session('s9').commitRuntimeState(commitOf('s9', L2, { completedTurnInputClaims: [claimCompletion(K1!)] })),
      'TurnInputClaimSuperseded',
      { sessionId: 's9', claimId: 'tic:1:1' },
    );
  });

  test('a dead claim on a deferred row is cancellable after expiry, and a live one is not', async () => {
    const { store, clock, enqueue, acquire, row } = setup();
    const a = await enqueue('s', nt('a'));
    const b = await enqueue('s', nt('b'));
    const L = await acquire('s', O('w'), 100);
    await claimNext(store, L);
    expect((await store.cancelPendingTurnInput('s', a.inputId)).outcome).toBe('already_claimed');
    clock.now = 100; // lease expired: its claims are dead on lease-less paths
    expect(await store.cancelPendingTurnInput('s', a.inputId)).toEqual({
      outcome: 'cancelled',
      input: { ...a, state: 'cancelled' },
    });
    expect(row('s', a.inputId)).toMatchObject({ state: 'cancelled', terminalAtMs: 100, claimFencingToken: 1 });
    expect(row('s', a.inputId).claim).toBeUndefined();
    expect(ids(await store.listPendingTurnInputs('s'))).toEqual([b.inputId]);
  });

  test('claim selection skips ineligible and held rows: the k-th maxInputs-1 claim gets the k-th eligible row', async () => {
    const { store, enqueue, acquire } = setup();
    const eligible: string[] = [];
    for (let i = 0; i < 6; i++) {
      await enqueue('s', at('t1', 'before_completion', `bc${i}`));
      await enqueue('s', at('other', 'after_work', `o${i}`));
      await enqueue('s', nt(`n${i}`));
      eligible.push((await enqueue('s', at('t1', i % 2 ? undefined : 'after_work', `aw${i}`))).inputId);
    }
    const L = await acquire('s');
    const got: string[] = [];
    for (let k = 0; k < 6; k++) got.push(...ids((await claimActive(store, L, 't1', 'after_work', 1))!.inputs));
    expect(got).toEqual(eligible);
    expect(await claimActive(store, L, 't1', 'after_work', 1)).toBeNull();
    // before_completion admits both boundaries; the after_work rows are held by this generation.
    const bc = await claimActive(store, L, 't1', 'before_completion', 100);
    expect(bc!.inputs.map((i) => (i.input as { text: string }).text)).toEqual([
      'bc0',
      'bc1',
      'bc2',
      'bc3',
      'bc4',
      'bc5',
    ]);
    expect(bc!.claimId).toBe('tic:1:1');
    const next = await claimNext(store, L, 2);
    expect(next!.claimId).toBe('tic:3:1');
    expect(next!.inputs.map((i) => i.enqueueSeq)).toEqual([3, 7]);
  });

  test('maxInputs 0 returns null without a fence check', async () => {
    const { store } = setup();
    const fence = { sessionId: 's', owner: O('x'), leaseToken: 'nope', fencingToken: 9 };
    expect(
      await store.claimNextTurnInputs({ sessionId: 's', fence, owner: O('x'), leaseTtlMs: 1, maxInputs: 0 }),
    ).toBeNull();
    await storeError(
      store.claimNextTurnInputs({ sessionId: 's', fence, owner: O('x'), leaseTtlMs: 1, maxInputs: 1 }),
      'SessionExecutionLeaseExpired',
      { sessionId: 's' },
    );
  });

  test('T6: abandoning an accepted claim returns it to pending_active, or to the next turn once its turn is stamped', async () => {
    const { store, enqueue, acquire, row } = setup();
    const a1 = await enqueue('s', at('t1', 'after_work', 'a1', { sourceKey: 'k1' }));
    const a2 = await enqueue('s', at('t2', 'after_work', 'a2'));
    const L = await acquire('s');
    const K1 = await claimActive(store, L, 't1', 'after_work');
    const K2 = await claimActive(store, L, 't2', 'after_work');
    const c = commitOf('s', L);
    await store
      .session('s')
      .commitRuntimeState({ ...c, turnCommit: { sessionId: 's', turnId: 't2', turnCommitHash: turnCommitHash(c) } });
    await store.abandonTurnInputClaims([K1!, K2!]);
    expect(row('s', a1.inputId)).toMatchObject({
      state: 'pending_active',
      ingress: { scope: 'active_turn', turnId: 't1' },
    });
    expect(row('s', a1.inputId).origIngress).toBeUndefined();
    expect(row('s', a2.inputId)).toMatchObject({
      state: 'deferred_next_turn',
      ingress: { scope: 'next_turn' },
      origIngress: { scope: 'active_turn', turnId: 't2', minBoundary: 'after_work' },
      claimFencingToken: 1,
    });
    // Re-claimed at once with a higher counter and a new id.
    const again = await claimActive(store, L, 't1', 'after_work');
    expect(again!.claimId).toBe('tic:1:2');
  });

  test('abandon matches claim id and token only: a stale or forged claim changes nothing', async () => {
    const { store, enqueue, acquire, snapshot } = setup();
    await enqueue('s', nt('a'));
    const L = await acquire('s');
    const K = await claimNext(store, L);
    const before = snapshot();
    await store.abandonTurnInputClaim({ ...K!, leaseToken: 'forged' });
    await store.abandonTurnInputClaim({ ...K!, claimId: 'tic:1:9' });
    await store.abandonTurnInputClaim({ ...K!, sessionId: 'other' });
    await store.abandonTurnInputClaims([]);
    expect(snapshot()).toEqual(before);
  });

  test('E2/suffix: every row from the anchor on, in any state, is judged by the cancel rule', async () => {
    const { store, enqueue, acquire, snapshot } = setup();
    const P = await enqueue('s2', nt('before'));
    const A = await enqueue('s2', nt('anchor', { sourceKey: 'suffix:anchor' }));
    const M = await enqueue('s2', at('t1', 'after_work', 'mid', { sourceKey: 'suffix:claimed' }));
    const X = await enqueue('s2', nt('x'));
    const L = await enqueue('s2', nt('later'));
    await store.cancelPendingTurnInput('s2', X.inputId);
    const lease = await acquire('s2');
    const K = await claimActive(store, lease, 't1', 'after_work');
    expect(K!.claimId).toBe('tic:3:1');
    const r = await store.cancelPendingTurnInputSuffix('s2', { kind: 'source_key', value: 'suffix:anchor' });
    expect(r).toEqual({
      outcome: 'outcomes',
      anchor: { kind: 'source_key', value: 'suffix:anchor' },
      outcomes: [
        { outcome: 'cancelled', input: { ...A, state: 'cancelled' } },
        {
          outcome: 'already_claimed',
          input: { ...M, state: 'accepted' },
          claim: {
            state: 'accepted',
            claimId: 'tic:3:1',
            claimOwner: O('w'),
            claimSessionLeaseGeneration: 1,
            claimFencingToken: 1,
          },
        },
        { outcome: 'already_cancelled', input: { ...X, state: 'cancelled' } },
        { outcome: 'cancelled', input: { ...L, state: 'cancelled' } },
      ],
    });
    expect(ids(await store.listPendingTurnInputs('s2'))).toEqual([P.inputId]);
    const before = snapshot();
    expect(await store.cancelPendingTurnInputSuffix('s2', { kind: 'source_key', value: 'nope' })).toEqual({
      outcome: 'anchor_not_found',
      anchor: { kind: 'source_key', value: 'nope' },
    });
    expect(await store.cancelPendingTurnInputSuffix('other', { kind: 'input_id', value: P.inputId })).toMatchObject({
      outcome: 'anchor_not_found',
    });
    expect(snapshot()).toEqual(before);
  });

  test('bulk cancel applies targets in order (E1)', async () => {
    const { store, enqueue } = setup();
    const A = await enqueue('s1', nt('bulk first', { sourceKey: 'bulk:first' }));
    const B = await enqueue('s1', nt('bulk second', { sourceKey: 'bulk:second' }));
    const C = await enqueue('s1', nt('bulk third', { inputId: 'in-c' }));
    const targets = [
      { kind: 'source_key' as const, value: 'bulk:first' },
      { kind: 'input_id' as const, value: 'in-c' },
      { kind: 'source_key' as const, value: 'bulk:missing' },
      { kind: 'source_key' as const, value: 'bulk:first' },
    ];
    const out = await store.cancelPendingTurnInputs('s1', targets);
    expect(out).toEqual([
      { target: targets[0], outcome: { outcome: 'cancelled', input: { ...A, state: 'cancelled' } } },
      { target: targets[1], outcome: { outcome: 'cancelled', input: { ...C, state: 'cancelled' } } },
      { target: targets[2], outcome: { outcome: 'not_found' } },
      { target: targets[3], outcome: { outcome: 'already_cancelled', input: { ...A, state: 'cancelled' } } },
    ]);
    expect(out[0].target).not.toBe(targets[0]);
    expect(ids(await store.listPendingTurnInputs('s1'))).toEqual([B.inputId]);
    expect(await enqueue('s1', nt('bulk first', { sourceKey: 'bulk:first' }))).toEqual({ ...A, state: 'cancelled' });
    await storeError(enqueue('s1', nt('changed', { sourceKey: 'bulk:first' })), 'PendingTurnInputSourceKeyConflict', {
      sessionId: 's1',
      sourceKey: 'bulk:first',
      existingInputId: A.inputId,
    });
    await storeError(enqueue('s1', nt('dup', { inputId: 'in-c' })), 'PendingTurnInputIdConflict', {
      sessionId: 's1',
      inputId: 'in-c',
    });
    expect(await store.cancelPendingTurnInputs('s1', [])).toEqual([]);
  });

  test('source-key content match ignores key order and the draft inputId; other sessions are unrelated', async () => {
    const { store } = setup();
    const first = await store.enqueuePendingTurnInput({
      sessionId: 'a',
      sourceKey: 'k',
      ingress: { scope: 'active_turn', turnId: 't' },
      input: { x: 1, y: [1, { b: 2, a: 1 }] },
    });
    const replay = await store.enqueuePendingTurnInput({
      sessionId: 'a',
      sourceKey: 'k',
      inputId: 'ignored',
      ingress: { scope: 'active_turn', turnId: 't', minBoundary: 'after_work' },
      input: { y: [1, { a: 1, b: 2 }], x: 1 },
    });
    expect(replay).toEqual(first);
    await storeError(
      store.enqueuePendingTurnInput({
        sessionId: 'a',
        sourceKey: 'k',
        ingress: { scope: 'active_turn', turnId: 't', minBoundary: 'before_completion' },
        input: { x: 1, y: [1, { b: 2, a: 1 }] },
      }),
      'PendingTurnInputSourceKeyConflict',
    );
    const other = await store.enqueuePendingTurnInput({
      sessionId: 'b',
      sourceKey: 'k',
      ingress: { scope: 'next_turn' },
      input: 1,
    });
    expect(other.enqueueSeq).toBe(1);
    expect(other.inputId).not.toBe(first.inputId);
  });

  test('vacuum measures age from terminalAtMs with the store clock and never reuses enqueueSeq', async () => {
    const { store, clock, enqueue, state } = setup({ tombstoneRetentionMs: 1_000 });
    const a = await enqueue('s', nt('a', { sourceKey: 'ka', inputId: 'ia' }));
    const b = await enqueue('s', nt('b'));
    const c = await enqueue('s', nt('c'));
    clock.now = 500;
    await store.cancelPendingTurnInput('s', a.inputId);
    clock.now = 900;
    await store.cancelPendingTurnInput('s', b.inputId);
    clock.now = 1_499;
    expect(await store.vacuum()).toEqual({ removedPendingTurnInputTombstones: 0 });
    clock.now = 1_500; // a is exactly 1 000 old
    expect(await store.vacuum()).toEqual({ removedPendingTurnInputTombstones: 1 });
    const table = state().sessions.get('s')!.inputs;
    expect([...table.rows.keys()]).toEqual([2, 3]);
    expect(table.byId.has('ia')).toBe(false);
    expect(table.bySource.has('ka')).toBe(false);
    expect(await store.cancelPendingTurnInput('s', 'ia')).toEqual({ outcome: 'not_found' });
    expect(await store.cancelPendingTurnInputSuffix('s', { kind: 'source_key', value: 'ka' })).toMatchObject({
      outcome: 'anchor_not_found',
    });
    const again = await enqueue('s', nt('a', { sourceKey: 'ka', inputId: 'ia' }));
    expect(again.enqueueSeq).toBe(4);
    expect(await store.vacuum({ olderThanMs: 0 })).toEqual({ removedPendingTurnInputTombstones: 1 });
    expect(table.lastSeq).toBe(4);
    expect(ids(await store.listPendingTurnInputs('s'))).toEqual([c.inputId, 'ia']);
    expect((await enqueue('s', nt('d'))).enqueueSeq).toBe(5);
  });
});

// ---------------------------------------------------------------- commits

describe('commits', () => {
  test('E5: completion, interrupt deferral after completions, T3 after the stamp', async () => {
    const { store, enqueue, acquire, row } = setup();
    const x1 = await enqueue('s5', at('t1', 'after_work', 'accepted'));
    const x2 = await enqueue('s5', at('t1', 'after_work', 'x2', { sourceKey: 'k:x2' }));
    const x3 = await enqueue('s5', at('t1', 'before_completion', 'x3'));
    const y1 = await enqueue('s5', at('t2', 'after_work', 'y1'));
    const z1 = await enqueue('s5', nt('z'));
    await store.cancelPendingTurnInput('s5', z1.inputId);
    const L = await acquire('s5');
    const K = await claimActive(store, L, 't1', 'after_work', 1);
    expect(K!.claimId).toBe('tic:1:1');
    const body = commitOf('s5', L, {
      graph: { kind: 'replace_full', graph: { nodes: [node('root')], leafNodeId: 'root' } },
      completedTurnInputClaims: [claimCompletion(K!)],
      interruptedTurnInputTurnId: 't1',
    });
    const commit = { ...body, turnCommit: { sessionId: 's5', turnId: 't1', turnCommitHash: turnCommitHash(body) } };
    const result = await store.session('s5').commitRuntimeState(commit);
    expect(result.headRevision).toBe(1);
    expect(row('s5', x1.inputId).state).toBe('completed');
    for (const [x, seq] of [
      [x2, 2],
      [x3, 3],
    ] as const) {
      expect(row('s5', x.inputId)).toMatchObject({ state: 'deferred_next_turn', seq, ingress: { scope: 'next_turn' } });
    }
    expect(row('s5', y1.inputId)).toMatchObject({ state: 'pending_active', ingress: { turnId: 't2' } });
    expect(row('s5', z1.inputId).state).toBe('cancelled');
    expect(ids(await store.listPendingTurnInputs('s5'))).toEqual([x2.inputId, x3.inputId, y1.inputId]);
    expect(ids((await claimNext(store, L))!.inputs)).toEqual([x2.inputId, x3.inputId]);
    const late = await enqueue('s5', at('t1', 'after_work', 'late'));
    expect(late).toMatchObject({ state: 'deferred_next_turn', ingress: { scope: 'next_turn' }, enqueueSeq: 6 });
    expect(row('s5', late.inputId).origIngress).toEqual({
      scope: 'active_turn',
      turnId: 't1',
      minBoundary: 'after_work',
    });
    expect(await enqueue('s5', at('t1', 'after_work', 'x2', { sourceKey: 'k:x2' }))).toEqual({
      ...x2,
      state: 'deferred_next_turn',
      ingress: { scope: 'next_turn' },
    });
    // The stamp holds the exact result and the store time.
    expect(memoryStoreState(store).sessions.get('s5')!.settled.stamps.get('t1')).toEqual({
      turnCommitHash: commit.turnCommit.turnCommitHash,
      resultJson: JSON.stringify(result),
      committedAtMs: 0,
    });
  });

  test('interrupt deferral runs after completions: a completed row of the turn is not deferred', async () => {
    const { store, enqueue, acquire, row } = setup();
    const a = await enqueue('s', at('t1', 'after_work'));
    const b = await enqueue('s', at('t1', 'after_work'));
    const L = await acquire('s');
    const K = await claimActive(store, L, 't1', 'after_work', 1);
    await store.abandonTurnInputClaim(K!); // a back to pending_active
    const K2 = await claimActive(store, L, 't1', 'after_work', 1);
    await store
      .session('s')
      .commitRuntimeState(
        commitOf('s', L, { completedTurnInputClaims: [claimCompletion(K2!)], interruptedTurnInputTurnId: 't1' }),
      );
    expect(row('s', a.inputId).state).toBe('completed');
    expect(row('s', b.inputId).state).toBe('deferred_next_turn');
  });

  test('E6: a stamped replay returns the stored result verbatim, without a fence, and still applies its release', async () => {
    const { store, acquire, snapshot } = setup();
    const L1 = await acquire('s6', O('w1'));
    const c1 = commitOf('s6', L1, {
      checkpoint: { turnState: { a: [] }, toolState: { b: {} }, executionState: new Uint8Array([1, 2, 3]) },
      releaseSessionExecutionLease: leaseCompletion(L1),
    });
    const C1 = { ...c1, turnCommit: { sessionId: 's6', turnId: 'turn-1', turnCommitHash: turnCommitHash(c1) } };
    const R1 = await store.session('s6').commitRuntimeState(C1);
    expect(R1.headRevision).toBe(1);
    const { sessionExecutionLease: _f, ...noFence } = C1;
    const afterFirst = snapshot();
    expect(await store.session('s6').commitRuntimeState(noFence)).toEqual(R1);
    expect(snapshot()).toEqual(afterFirst);

    const L2 = await acquire('s6', O('w2'));
    const held = snapshot();
    // Release completion for a lease someone else now holds: no-op.
    expect(await store.session('s6').commitRuntimeState(C1)).toEqual(R1);
    expect(snapshot()).toEqual(held);
    // The replay's release applies when it matches the current holder.
    const withRelease = { ...noFence, releaseSessionExecutionLease: leaseCompletion(L2) };
    expect(await store.session('s6').commitRuntimeState(withRelease)).toEqual(R1);
    expect(memoryStoreState(store).sessions.get('s6')!.lease).toEqual({ fencingToken: 2 });

    const c2 = commitOf('s6', undefined, { config: { other: true } });
    await storeError(
      store.session('s6').commitRuntimeState({
        ...c2,
        turnCommit: { sessionId: 's6', turnId: 'turn-1', turnCommitHash: turnCommitHash(c2) },
      }),
      'RuntimeTurnCommitConflict',
      { sessionId: 's6', turnId: 'turn-1' },
    );
    expect(turnCommitHash({ ...c1, expectedHeadRevision: 7 })).toBe(turnCommitHash(c1));
  });

  test('E10: every rejection path of commitRuntimeState leaves the whole store untouched', async () => {
    const { store, enqueue, acquire, snapshot, row } = setup();
    const a = await enqueue('s10', nt('a'));
    const b = await enqueue('s10', nt('b'));
    const L = await acquire('s10');
    const K1 = await claimNext(store, L, 1);
    const K2 = await claimNext(store, L, 1);
    expect([K1!.claimId, K2!.claimId]).toEqual(['tic:1:1', 'tic:2:1']);
    await store.abandonTurnInputClaim(K2!);
    const K3 = await claimNext(store, L, 1);
    expect(K3!.claimId).toBe('tic:2:2');
    // Something in the attachment manifest and a stamped earlier commit, so every part of the
    // state is non-empty and would show any stray write.
    const facet = store.session('s10');
    await facet.recordIntent({ attachmentId: 'att', sessionId: 's10', canonicalUri: 'u', intentAtEpochMs: 1 });
    const rich: Partial<RuntimeCommit> = {
      graph: { kind: 'append', nodes: [node('n1')], leafNodeId: 'n1' },
      checkpoint: { turnState: 1, toolState: { t: 1 }, pluginSnapshot: [1], executionState: new Uint8Array([9]) },
      usageDeltas: [usage('turn', 'm', 1, 1)],
      committedAttachmentIds: ['att'],
      interruptedTurnInputTurnId: 't1',
      releaseSessionExecutionLease: leaseCompletion(L),
    };
    const stale = commitOf('s10', L, {
      ...rich,
      completedTurnInputClaims: [claimCompletion(K1!), claimCompletion(K2!)],
    });
    const stampedOk = (c: RuntimeCommit, turnId = 'turn-x') => ({
      ...c,
      turnCommit: { sessionId: c.sessionId, turnId, turnCommitHash: turnCommitHash(c) },
    });

    // A first stamped commit (without completions), so replay/conflict paths have a stamp.
    const first = commitOf('s10', L, { graph: { kind: 'append', nodes: [node('root')], leafNodeId: 'root' } });
    await facet.commitRuntimeState(stampedOk(first, 'turn-0'));

    const before = snapshot();
    const expectUntouched = async (p: Promise<unknown>, code: StoreErrorCode, details?: Record<string, unknown>) => {
      await storeError(p, code, details);
      expect(snapshot()).toEqual(before);
    };
    await expectUntouched(facet.commitRuntimeState(stale), 'TurnInputClaimSuperseded', {
      sessionId: 's10',
      claimId: 'tic:2:1',
    });
    expect(row('s10', a.inputId)).toMatchObject({ state: 'deferred_next_turn', claim: { claimId: 'tic:1:1' } });
    // 0. validation
    await expectUntouched(
      facet.commitRuntimeState({ ...stale, releaseSessionExecutionLease: { ...leaseCompletion(L), sessionId: 'x' } }),
      'InvalidInput',
    );
    await expectUntouched(
      facet.commitRuntimeState({ ...stale, graph: { kind: 'append', nodes: [node('d'), node('d')] } }),
      'InvalidInput',
    );
    // 1. binding
    await expectUntouched(store.session('zzz').commitRuntimeState(stale), 'SessionBindingMismatch', {
      boundSessionId: 'zzz',
      attemptedSessionId: 's10',
    });
    // 2. replay conflicts
    await expectUntouched(
      facet.commitRuntimeState({ ...stale, turnCommit: { sessionId: 'other', turnId: 'turn-0', turnCommitHash: 'h' } }),
      'RuntimeTurnCommitConflict',
      { sessionId: 's10', turnId: 'turn-0' },
    );
    await expectUntouched(
      facet.commitRuntimeState({ ...stale, turnCommit: { sessionId: 's10', turnId: 'turn-0', turnCommitHash: 'h' } }),
      'RuntimeTurnCommitConflict',
      { sessionId: 's10', turnId: 'turn-0' },
    );
    // 3. fence
    const { sessionExecutionLease: _fence, ...unfenced } = stale;
    await expectUntouched(facet.commitRuntimeState(unfenced), 'SessionExecutionLeaseExpired', {
      sessionId: 's10',
      reason: 'no_lease_fence',
    });
    await expectUntouched(
      facet.commitRuntimeState({ ...stale, sessionExecutionLease: { ...leaseFence(L), fencingToken: 2 } }),
      'SessionExecutionLeaseExpired',
      { sessionId: 's10' },
    );
    await expectUntouched(
      facet.commitRuntimeState({ ...stale, sessionExecutionLease: { ...leaseFence(L), sessionId: 'x' } }),
      'SessionExecutionLeaseExpired',
      { sessionId: 's10' },
    );
    // 4. head CAS
    await expectUntouched(facet.commitRuntimeState({ ...stale, expectedHeadRevision: 0 }), 'HeadRevisionConflict', {
      expected: 0,
      actual: 1,
    });
    // 5. queued work
    await expectUntouched(
      facet.commitRuntimeState({
        ...stale,
        completedQueueClaims: [
          { sessionId: 'q', claimId: 'qc1', leaseToken: 't', batchIds: [] },
          { sessionId: 'q', claimId: 'qc2', leaseToken: 't', batchIds: [] },
        ],
      }),
      'QueuedWorkClaimSuperseded',
      { sessionId: 'q', claimId: 'qc1' },
    );
    // 6. completions: another session; a listed row without the claim; an unlisted row carrying it.
    const c1 = claimCompletion(K1!);
    await expectUntouched(
      facet.commitRuntimeState({ ...stale, completedTurnInputClaims: [{ ...c1, sessionId: 'other' }] }),
      'TurnInputClaimSuperseded',
      { sessionId: 'other', claimId: 'tic:1:1' },
    );
    await expectUntouched(
      facet.commitRuntimeState({ ...stale, completedTurnInputClaims: [{ ...c1, leaseToken: 'wrong' }] }),
      'TurnInputClaimSuperseded',
      { sessionId: 's10', claimId: 'tic:1:1' },
    );
    await expectUntouched(
      facet.commitRuntimeState({ ...stale, completedTurnInputClaims: [{ ...c1, inputIds: [a.inputId, 'ghost'] }] }),
      'TurnInputClaimSuperseded',
    );
    const big = await (async () => {
      // A claim over two rows, completed with only one listed (in a second session).
      const x = await enqueue('s10b', nt('x'));
      await enqueue('s10b', nt('y'));
      const Lb = await acquire('s10b');
      const Kb = await claimNext(store, Lb);
      return { x, Lb, Kb: Kb! };
    })();
    const beforeB = snapshot();
    await storeError(
      store.session('s10b').commitRuntimeState(
        commitOf('s10b', big.Lb, {
          completedTurnInputClaims: [{ ...claimCompletion(big.Kb), inputIds: [big.x.inputId] }],
        }),
      ),
      'TurnInputClaimSuperseded',
      { sessionId: 's10b', claimId: big.Kb.claimId },
    );
    expect(snapshot()).toEqual(beforeB);
    // 7. content checks
    const good = [claimCompletion(K1!), claimCompletion(K3!)];
    const dup = await storeError(
      facet.commitRuntimeState({
        ...stale,
        completedTurnInputClaims: good,
        graph: { kind: 'append', nodes: [node('x'), node('root')] },
      }),
      'InvalidInput',
    );
    expect(dup.details.issues).toEqual(['graph.nodes.1.nodeId: already exists in the session graph']);
    expect(snapshot()).toEqual(beforeB);
    const dangling = await storeError(
      facet.commitRuntimeState({
        ...stale,
        completedTurnInputClaims: good,
        checkpoint: { turnState: 1, toolStateRef: 'bogus', executionStateRef: 'nope', pluginSnapshot: 1 },
      }),
      'InvalidInput',
    );
    expect(dangling.details.issues).toEqual([
      'checkpoint.toolStateRef: names no blob of the session (send the snapshot, or the ref of a stored one)',
      'checkpoint.executionStateRef: names no blob of the session (send the snapshot, or the ref of a stored one)',
    ]);
    expect(snapshot()).toEqual(beforeB);

    // The good commit: a and b completed, the lease free, attachment stamped.
    const ok = await facet.commitRuntimeState({ ...stale, completedTurnInputClaims: good });
    expect(ok.headRevision).toBe(2);
    expect([row('s10', a.inputId).state, row('s10', b.inputId).state]).toEqual(['completed', 'completed']);
    expect(memoryStoreState(store).sessions.get('s10')!.lease).toEqual({ fencingToken: 1 });
    expect(memoryStoreState(store).attachments.get('att')!.get('s10')).toEqual({
      canonicalUri: 'u',
      intentAtEpochMs: 1,
      committedAtEpochMs: 0,
    });
  });

  test('E11: graph reads, checkpoint refs, blob collection and the usage ledger', async () => {
    const { store, acquire, state } = setup();
    const L = await acquire('s11');
    const facet = store.session('s11');
    expect(await facet.loadSession({ kind: 'full_graph' })).toBeNull();
    await facet.saveSessionMeta({
      sessionId: 's11',
      sessionName: 'n',
      createdAt: 'c',
      model: 'm',
      relation: { kind: 'root' },
    });
    expect(await facet.loadSession({ kind: 'full_graph' })).toBeNull();

    const nodes = [node('root'), node('left', 'root'), node('leftLeaf', 'left'), node('rightLeaf', 'root')];
    const r1 = await facet.commitRuntimeState(
      commitOf('s11', L, {
        graph: { kind: 'replace_full', graph: { nodes, leafNodeId: 'leftLeaf' } },
        checkpoint: { turnState: 't', toolState: { gen: 1 } },
        usageDeltas: [usage('turn', 'm1', 11, 7, 3, 0, 5), usage('turn', 'm1', 0, 0, 0, 0, 9)],
      }),
    );
    const gen1Ref = sha256hex(canonical({ gen: 1 }));
    expect(r1.manifest).toEqual({ schemaVersion: 1, turnState: 't', toolStateRef: gen1Ref });
    expect(r1.checkpointRef).toBe(sha256hex(canonical(r1.manifest)));
    const blobs = () => [...state().sessions.get('s11')!.settled.blobs.keys()].sort();
    expect(blobs()).toEqual([r1.checkpointRef, gen1Ref].sort());

    const full = await facet.loadSession({ kind: 'full_graph' });
    expect(full).toEqual({
      sessionId: 's11',
      headRevision: 1,
      config: { model: 'm' },
      agentFrames: [{ frame: 1 }],
      currentAgentFrameId: 'f1',
      graph: { nodes, leafNodeId: 'leftLeaf' },
      checkpointRef: r1.checkpointRef,
      checkpoint: { turnState: 't', toolStateRef: gen1Ref, toolState: { gen: 1 } },
      tokenLedger: [usage('turn', 'm1', 11, 7, 3, 0, 5)],
    });
    const path = async (leafNodeId?: string) =>
      (await facet.loadSession(
        leafNodeId === undefined ? { kind: 'active_path' } : { kind: 'active_path', leafNodeId },
      ))!.graph;
    expect(await path()).toEqual({ nodes: [nodes[0], nodes[1], nodes[2]], leafNodeId: 'leftLeaf' });
    expect(await path('rightLeaf')).toEqual({ nodes: [nodes[0], nodes[3]], leafNodeId: 'rightLeaf' });
    expect(await path('ghost')).toEqual({ nodes: [], leafNodeId: 'ghost' });
    expect(await facet.loadNode('left')).toEqual(nodes[1]);
    expect(await facet.loadNode('ghost')).toBeNull();

    const r2 = await facet.commitRuntimeState(
      commitOf('s11', L, {
        graph: { kind: 'unchanged' },
        checkpoint: { turnState: 't2', toolStateRef: gen1Ref },
        usageDeltas: [usage('tool', 'm2', 2), usage('turn', 'm1', 1, 1)],
      }),
    );
    expect(blobs()).toEqual([r2.checkpointRef, gen1Ref].sort());
    const s2 = await facet.loadSession({ kind: 'active_path' });
    expect(s2!.checkpoint).toEqual({ turnState: 't2', toolStateRef: gen1Ref, toolState: { gen: 1 } });
    expect(s2!.graph).toEqual({ nodes: [] });
    expect(s2!.tokenLedger).toEqual([usage('turn', 'm1', 12, 8, 3, 0, 5), usage('tool', 'm2', 2)]);
    expect(state().sessions.get('s11')!.settled.head!.nodeCount).toBe(4);

    const r3 = await facet.commitRuntimeState(
      commitOf('s11', L, { checkpoint: { turnState: 't3', toolState: { gen: 2 } } }),
    );
    expect(blobs()).toEqual([r3.checkpointRef, sha256hex(canonical({ gen: 2 }))].sort());

    await storeError(
      facet.commitRuntimeState(commitOf('s11', L, { checkpoint: { turnState: 1, toolStateRef: 'bogus' } })),
      'InvalidInput',
    );
    await storeError(
      facet.commitRuntimeState(commitOf('s11', L, { graph: { kind: 'append', nodes: [node('left')] } })),
      'InvalidInput',
    );
    // replace_full frees ids for later appends.
    await facet.commitRuntimeState(
      commitOf('s11', L, { graph: { kind: 'replace_full', graph: { nodes: [node('a')] } } }),
    );
    await facet.commitRuntimeState(
      commitOf('s11', L, { graph: { kind: 'append', nodes: [node('left', 'a')], leafNodeId: 'left' } }),
    );
    expect((await facet.loadSession({ kind: 'full_graph' }))!.graph).toEqual({
      nodes: [node('a'), node('left', 'a')],
      leafNodeId: 'left',
    });
  });

  test('active_path stops at a missing ancestor and at a cycle', async () => {
    const { store, acquire } = setup();
    const L = await acquire('s');
    const facet = store.session('s');
    const nodes = [node('a', 'b'), node('b', 'c'), node('c', 'a'), node('x', 'missing'), node('y', 'x')];
    await facet.commitRuntimeState(
      commitOf('s', L, { graph: { kind: 'replace_full', graph: { nodes, leafNodeId: 'a' } } }),
    );
    expect((await facet.loadSession({ kind: 'active_path' }))!.graph).toEqual({
      nodes: [nodes[2], nodes[1], nodes[0]],
      leafNodeId: 'a',
    });
    expect((await facet.loadSession({ kind: 'active_path', leafNodeId: 'y' }))!.graph).toEqual({
      nodes: [nodes[3], nodes[4]],
      leafNodeId: 'y',
    });
  });

  test('executionState round-trips byte-exact as a plain Uint8Array, and the caller keeps no handle on it', async () => {
    const { store, acquire } = setup();
    const L = await acquire('s');
    const bytes = Buffer.from([0, 255, 10, 13]);
    const r = await store
      .session('s')
      .commitRuntimeState(commitOf('s', L, { checkpoint: { turnState: null, executionState: bytes } }));
    bytes[0] = 7;
    const loaded = await store.session('s').loadSession({ kind: 'full_graph' });
    const es = loaded!.checkpoint!.executionState!;
    expect(es.constructor).toBe(Uint8Array);
    expect([...es]).toEqual([0, 255, 10, 13]);
    expect(r.manifest.executionStateRef).toBe(sha256hex(new Uint8Array([0, 255, 10, 13])));
    es[1] = 1;
    expect([...(await store.session('s').loadSession({ kind: 'full_graph' }))!.checkpoint!.executionState!]).toEqual([
      0, 255, 10, 13,
    ]);
  });

  test('attachment stamps apply only to existing entries of (commit.sessionId, id) and keep earlier stamps', async () => {
    const { store, clock, acquire } = setup();
    const facet = store.session('s');
    await facet.recordIntent({ attachmentId: 'a1', sessionId: 's', canonicalUri: 'u1', intentAtEpochMs: 5 });
    await facet.recordIntent({ attachmentId: 'a2', sessionId: 'other', canonicalUri: 'u2', intentAtEpochMs: 5 });
    clock.now = 40;
    await facet.commitRefs('s', ['a1']);
    clock.now = 50;
    const L = await acquire('s');
    await facet.commitRuntimeState(commitOf('s', L, { committedAttachmentIds: ['a1', 'a2', 'a3'] }));
    const att = memoryStoreState(store).attachments;
    expect(att.get('a1')!.get('s')!.committedAtEpochMs).toBe(40);
    expect(att.get('a2')!.get('other')!.committedAtEpochMs).toBeUndefined();
    expect(att.has('a3')).toBe(false);
    // recordIntent refresh keeps the stamp.
    await facet.recordIntent({ attachmentId: 'a1', sessionId: 's', canonicalUri: 'u1b', intentAtEpochMs: 99 });
    expect(att.get('a1')!.get('s')).toEqual({ canonicalUri: 'u1b', intentAtEpochMs: 99, committedAtEpochMs: 40 });
    expect(await store.session('zzz').listUncommitted(5)).toEqual([
      { attachmentId: 'a2', sessionId: 'other', canonicalUri: 'u2', intentAtEpochMs: 5 },
    ]);
    expect(await facet.holdsRef('other', 'a2')).toBe(true);
    expect(await facet.holdsRef('s', 'a2')).toBe(false);
    expect(await facet.listAllRefs()).toEqual(['a1', 'a2']);
    expect(await facet.hasLiveRefForId('a2', 5)).toBe(false);
    expect(await facet.hasLiveRefForId('a2', 4)).toBe(true);
    expect(await facet.forgetAgedUncommittedIntents(5)).toBe(1);
    expect(await facet.listAllRefs()).toEqual(['a1']);
  });
});

// ---------------------------------------------------------------- copies, normalisation, lifecycle

describe('copies, normalisation and lifecycle', () => {
  test('stored data is a copy of the arguments and every result is a fresh copy', async () => {
    const { store, acquire, snapshot } = setup();
    const input = { deep: { list: [1, 2] } };
    const draft: PendingTurnInputDraft = { sessionId: 's', ingress: { scope: 'active_turn', turnId: 't' }, input };
    const row = await store.enqueuePendingTurnInput(draft);
    input.deep.list.push(3);
    (draft.ingress as { turnId: string }).turnId = 'changed';
    row.ingress = { scope: 'next_turn' };
    (row.input as typeof input).deep.list.length = 0;
    const [listed] = await store.listPendingTurnInputs('s');
    expect(listed).toMatchObject({ input: { deep: { list: [1, 2] } }, ingress: { scope: 'active_turn', turnId: 't' } });

    const owner: LeaseOwnerIdentity = { ownerId: 'o', incarnationId: 'i' };
    const L = await acquire('s', owner);
    owner.ownerId = 'mutated';
    L.owner.incarnationId = 'mutated';
    const K = await claimActive(store, { ...L, owner: { ownerId: 'o', incarnationId: 'i' } }, 't', 'after_work');
    expect(K!.owner).toEqual({ ownerId: 'o', incarnationId: 'i', liveness: { kind: 'opaque' } });
    K!.inputs[0].state = 'cancelled';
    const node1 = node('n');
    const config = { c: [1] };
    const commit = commitOf(
      's',
      { ...L, owner: { ownerId: 'o', incarnationId: 'i' } },
      {
        config,
        graph: { kind: 'append', nodes: [node1] },
        completedTurnInputClaims: [claimCompletion(K!)],
      },
    );
    const result = await store.session('s').commitRuntimeState(commit);
    const before = snapshot();
    config.c.push(2);
    (node1.body as { n: string }).n = 'mutated';
    result.manifest.turnState = 'mutated';
    const loaded = await store.session('s').loadSession({ kind: 'full_graph' });
    (loaded!.graph.nodes[0].body as { n: string }).n = 'mutated again';
    (loaded!.config as { c: number[] }).c.push(3);
    expect(snapshot()).toEqual(before);
    expect((await store.session('s').loadSession({ kind: 'full_graph' }))!.config).toEqual({ c: [1] });
  });

  test('returned values are normalised: owner liveness and minBoundary present, optional fields absent', async () => {
    const { store, enqueue, acquire } = setup();
    const a = await enqueue('s', at('t', undefined, 'x'));
    expect(a.ingress).toEqual({ scope: 'active_turn', turnId: 't', minBoundary: 'after_work' });
    expect('sourceKey' in a).toBe(false);
    const L = await acquire('s', { ownerId: 'o', incarnationId: 'i', liveness: undefined });
    expect(L.owner).toEqual({ ownerId: 'o', incarnationId: 'i', liveness: { kind: 'opaque' } });
    const K = await store.claimActiveTurnInputs({
      sessionId: 's',
      fence: leaseFence(L),
      owner: { ownerId: 'claimer', incarnationId: 'c' },
      turnId: 't',
      checkpoint: 'after_work',
      leaseTtlMs: 5,
      maxInputs: 5,
    });
    expect(K!.owner.liveness).toEqual({ kind: 'opaque' });
    const cancelled = await store.cancelPendingTurnInput('s', a.inputId);
    expect(cancelled).toMatchObject({ claim: { claimOwner: { ownerId: 'claimer', liveness: { kind: 'opaque' } } } });
    const stamped = await store
      .session('s')
      .commitRuntimeState(commitOf('s', L, { completedTurnInputClaims: [claimCompletion(K!)] }));
    const loaded = await store.session('s').loadSession({ kind: 'full_graph' });
    for (const v of [a, L, K, cancelled, stamped, loaded, await store.listPendingTurnInputs('s')]) assertNoUndefined(v);
    expect(loaded!.graph).toEqual({ nodes: [] });
    expect(loaded!.checkpoint).toEqual({ turnState: { step: 1 } });
    await store.session('s').saveSessionMeta({
      sessionId: 's',
      sessionName: 'n',
      createdAt: 'c',
      model: 'm',
      cwd: undefined,
      relation: { kind: 'child', parentSessionId: 'p', causedBy: { why: [] } },
    });
    const meta = await store.session('s').loadSessionMeta();
    expect(meta).toEqual({
      sessionId: 's',
      sessionName: 'n',
      createdAt: 'c',
      model: 'm',
      relation: { kind: 'child', parentSessionId: 'p', causedBy: { why: [] } },
    });
    expect('cwd' in meta!).toBe(false);
    await storeError(store.session('s').saveSessionMeta({ ...meta!, sessionId: 'other' }), 'SessionBindingMismatch', {
      boundSessionId: 's',
      attemptedSessionId: 'other',
    });
  });

  test('validation runs first and writes nothing; the factory and session() validate synchronously', async () => {
    const { store, snapshot } = setup();
    const before = snapshot();
    await storeError(store.tryClaimSessionExecutionLease('', O('a'), 1), 'InvalidInput');
    await storeError(store.tryClaimSessionExecutionLease('s', O('a'), 86_400_001), 'InvalidInput');
    await storeError(
      store.enqueuePendingTurnInput({ sessionId: 's', ingress: { scope: 'next_turn' }, input: { n: Number.NaN } }),
      'InvalidInput',
    );
    expect(snapshot()).toEqual(before);
    expect(syncError(() => store.session(''))).toBe('InvalidInput');
    expect(syncError(() => createInMemoryRuntimeStore({ tombstoneRetentionMs: -1 }))).toBe('InvalidInput');
    expect(syncError(() => createInMemoryRuntimeStore({ strandedTurnInputs: 'drop' as 'keep' }))).toBe('InvalidInput');
    expect(store.durabilityTier()).toBe('inline');
    expect(store.session('s').durabilityTier()).toBe('inline');
  });

  test('the clock is Math.floor(now())', async () => {
    const clock = { now: 1_234.9 };
    const store = createInMemoryRuntimeStore({ now: () => clock.now });
    const r = await store.tryClaimSessionExecutionLease('s', O('a'), 10);
    expect(r).toMatchObject({ lease: { claimedAtEpochMs: 1_234, expiresAtEpochMs: 1_244 } });
    const row = await store.enqueuePendingTurnInput({ sessionId: 's', ingress: { scope: 'next_turn' }, input: null });
    expect(row.enqueuedAtMs).toBe(1_234);
  });

  test('concurrent claimers and first lease claims: each row and the lease go to exactly one', async () => {
    const { store, enqueue, acquire } = setup();
    for (let i = 0; i < 5; i++) await enqueue('s', nt(`n${i}`));
    const L = await acquire('s');
    const claims = await Promise.all(Array.from({ length: 8 }, () => claimNext(store, L, 2)));
    const got = claims.flatMap((c) => (c ? ids(c.inputs) : []));
    expect(new Set(got).size).toBe(5);
    expect(got.length).toBe(5);
    const outcomes = await Promise.all(
      Array.from({ length: 5 }, (_, i) => store.tryClaimSessionExecutionLease('fresh', O(`w${i}`), 100)),
    );
    expect(outcomes.filter((o) => o.outcome === 'acquired')).toHaveLength(1);
  });

  test('after close() every call rejects with StoreClosed', async () => {
    const { store, acquire } = setup();
    const L = await acquire('s');
    const facet = store.session('s');
    await store.close();
    await store.close();
    const closed = {};
    await storeError(store.tryClaimSessionExecutionLease('s', O('a'), 1), 'StoreClosed', closed);
    await storeError(store.listPendingTurnInputs('s'), 'StoreClosed', closed);
    await storeError(
      store.enqueuePendingTurnInput({ sessionId: 's', ingress: { scope: 'next_turn' }, input: 1 }),
      'StoreClosed',
      closed,
    );
    await storeError(claimNext(store, L), 'StoreClosed', closed);
    await storeError(store.vacuum(), 'StoreClosed', closed);
    await storeError(facet.loadSession({ kind: 'full_graph' }), 'StoreClosed', closed);
    await storeError(facet.commitRuntimeState(commitOf('s', L)), 'StoreClosed', closed);
    await storeError(facet.listAllRefs(), 'StoreClosed', closed);
    await storeError(store.session('t').loadSessionMeta(), 'StoreClosed', closed);
    // Calls that make no I/O still answer, and checks that need no stored data come first (as on Redis).
    expect(await store.cancelPendingTurnInputs('s', [])).toEqual([]);
    expect(await claimNext(store, L, 0)).toBeNull();
    await store.abandonTurnInputClaims([]);
    await facet.commitRefs('s', []);
    await storeError(store.tryClaimSessionExecutionLease('s', O('a'), -1), 'InvalidInput');
    await storeError(store.session('x').commitRuntimeState(commitOf('s', L)), 'SessionBindingMismatch');
    await storeError(
      facet.commitRuntimeState({
        ...commitOf('s', L),
        turnCommit: { sessionId: 'x', turnId: 't', turnCommitHash: 'h' },
      }),
      'RuntimeTurnCommitConflict',
    );
    await storeError(
      facet.saveSessionMeta({
        sessionId: 'x',
        sessionName: 'n',
        createdAt: 'c',
        model: 'm',
        relation: { kind: 'root' },
      }),
      'SessionBindingMismatch',
    );
  });
});
