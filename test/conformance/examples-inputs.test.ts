/**
 * The worked examples of SPEC.md section 15 that are about turn inputs, claims and leases:
 * E1, E2, E3, E4, E7, E8, E9 and E10 (the commit side of E10 is only checked as far as claims,
 * the lease and loadSession go; commits.test.ts owns the rest).
 */
import { expect, test } from 'vitest';
import {
  claimCompletion,
  leaseCompletion,
  leaseFence,
  type PendingTurnInput,
  type PendingTurnInputCancelTarget,
} from '../../src/index.js';
import { describeBackends } from './backends.js';
import {
  acquire,
  at,
  claimActive,
  claimNext,
  enqueue,
  expectStoreError,
  ids,
  minimalCommit,
  nt,
  O,
} from './fixtures.js';

const src = (value: string): PendingTurnInputCancelTarget => ({ kind: 'source_key', value });
const idt = (value: string): PendingTurnInputCancelTarget => ({ kind: 'input_id', value });
const cancelled = (r: PendingTurnInput): PendingTurnInput => ({ ...r, state: 'cancelled' });

describeBackends('worked examples (inputs, claims, leases)', (b) => {
  test('E1: bulk cancel with a repeated target', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const A = await enqueue(store, 's1', nt('bulk first', { sourceKey: 'bulk:first' }));
    const B = await enqueue(store, 's1', nt('bulk second', { sourceKey: 'bulk:second' }));
    const C = await enqueue(store, 's1', nt('bulk third', { inputId: 'in-c' }));
    expect([A.enqueueSeq, B.enqueueSeq, C.enqueueSeq]).toEqual([1, 2, 3]);
    expect(C.inputId).toBe('in-c');

    const results = await store.cancelPendingTurnInputs('s1', [
      src('bulk:first'),
      idt('in-c'),
      src('bulk:missing'),
      src('bulk:first'),
    ]);
    expect(results).toEqual([
      { target: src('bulk:first'), outcome: { outcome: 'cancelled', input: cancelled(A) } },
      { target: idt('in-c'), outcome: { outcome: 'cancelled', input: cancelled(C) } },
      { target: src('bulk:missing'), outcome: { outcome: 'not_found' } },
      { target: src('bulk:first'), outcome: { outcome: 'already_cancelled', input: cancelled(A) } },
    ]);
    expect(await store.listPendingTurnInputs('s1')).toEqual([B]);

    const replay = await enqueue(store, 's1', nt('bulk first', { sourceKey: 'bulk:first' }));
    expect(replay).toEqual(cancelled(A));
    expect(await store.listPendingTurnInputs('s1')).toEqual([B]);

    await expectStoreError(
      enqueue(store, 's1', nt('changed', { sourceKey: 'bulk:first' })),
      'PendingTurnInputSourceKeyConflict',
      { sessionId: 's1', sourceKey: 'bulk:first', existingInputId: A.inputId },
    );
    // No new row was made by any of that: the next enqueue gets seq 4.
    expect((await enqueue(store, 's1', nt('after'))).enqueueSeq).toBe(4);
  });

  test('E2: suffix cancel over mixed states', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const P = await enqueue(store, 's2', nt('before'));
    const A = await enqueue(store, 's2', nt('anchor', { sourceKey: 'suffix:anchor' }));
    const M = await enqueue(store, 's2', at('t1', 'after_work', 'mid', { sourceKey: 'suffix:claimed' }));
    const X = await enqueue(store, 's2', nt('x'));
    const L = await enqueue(store, 's2', nt('later'));
    expect([P, A, M, X, L].map((r) => r.enqueueSeq)).toEqual([1, 2, 3, 4, 5]);

    expect(await store.cancelPendingTurnInput('s2', X.inputId)).toEqual({ outcome: 'cancelled', input: cancelled(X) });

    const lease = await acquire(store, 's2', O('w'));
    expect(lease.fencingToken).toBe(1);
    const claim = await claimActive(store, lease, 't1', 'after_work');
    expect(claim!.claimId).toBe('tic:3:1');
    expect(claim!.inputs).toEqual([{ ...M, state: 'accepted' }]);

    const r = await store.cancelPendingTurnInputSuffix('s2', src('suffix:anchor'));
    expect(r).toEqual({
      outcome: 'outcomes',
      anchor: src('suffix:anchor'),
      outcomes: [
        { outcome: 'cancelled', input: cancelled(A) },
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
        { outcome: 'already_cancelled', input: cancelled(X) },
        { outcome: 'cancelled', input: cancelled(L) },
      ],
    });
    expect(await store.listPendingTurnInputs('s2')).toEqual([P]);

    expect(await store.cancelPendingTurnInputSuffix('s2', src('nope'))).toEqual({
      outcome: 'anchor_not_found',
      anchor: src('nope'),
    });
    expect(await store.listPendingTurnInputs('s2')).toEqual([P]);
    expect(await store.cancelPendingTurnInput('s2', P.inputId)).toEqual({ outcome: 'cancelled', input: cancelled(P) });
  });

  test('E3: next-turn claim, abandon, reclaim', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const F = await enqueue(store, 's3', nt('F'));
    const S = await enqueue(store, 's3', nt('S'));
    const L1 = await acquire(store, 's3', O('w'));
    expect(L1.fencingToken).toBe(1);

    const K = await claimNext(store, L1, { maxInputs: 10 });
    expect(K).not.toBeNull();
    expect(K!.claimId).toBe('tic:1:1');
    expect(K!.fencingToken).toBe(1);
    expect(K!.sessionLeaseGeneration).toBe(1);
    expect(K!.inputs).toEqual([F, S]);
    expect(K!.inputs.map((r) => r.state)).toEqual(['deferred_next_turn', 'deferred_next_turn']);

    expect(await claimNext(store, L1, { maxInputs: 10 })).toBeNull();
    expect(await store.listPendingTurnInputs('s3')).toEqual([]);

    expect(await store.cancelPendingTurnInput('s3', F.inputId)).toEqual({
      outcome: 'already_claimed',
      input: F,
      claim: {
        state: 'deferred_next_turn',
        claimId: 'tic:1:1',
        claimOwner: O('w'),
        claimSessionLeaseGeneration: 1,
        claimFencingToken: 1,
      },
    });

    await store.abandonTurnInputClaim(K!);
    expect(await store.listPendingTurnInputs('s3')).toEqual([F, S]);

    const R = await claimNext(store, L1, { maxInputs: 10 });
    expect(R!.claimId).toBe('tic:1:2');
    expect(R!.fencingToken).toBe(2);
    expect(R!.inputs).toEqual([F, S]);

    await expectStoreError(
      store.session('s3').commitRuntimeState(minimalCommit(L1, [claimCompletion(K!)])),
      'TurnInputClaimSuperseded',
      { sessionId: 's3', claimId: 'tic:1:1' },
    );
    // Nothing written, R intact.
    expect(await store.session('s3').loadSession({ kind: 'full_graph' })).toBeNull();
    expect(await store.cancelPendingTurnInput('s3', F.inputId)).toMatchObject({
      outcome: 'already_claimed',
      claim: { claimId: 'tic:1:2', claimFencingToken: 2 },
    });

    const result = await store
      .session('s3')
      .commitRuntimeState(
        minimalCommit(L1, [claimCompletion(R!)], { releaseSessionExecutionLease: leaseCompletion(L1) }),
      );
    expect(result.headRevision).toBe(1);
    expect(await store.cancelPendingTurnInput('s3', F.inputId)).toEqual({
      outcome: 'already_completed',
      input: { ...F, state: 'completed' },
    });
    expect(await store.cancelPendingTurnInput('s3', S.inputId)).toEqual({
      outcome: 'already_completed',
      input: { ...S, state: 'completed' },
    });

    const L2 = await acquire(store, 's3', O('w'));
    expect(L2.fencingToken).toBe(2);
    expect(await claimNext(store, L2, { maxInputs: 10 })).toBeNull();
  });

  test('E4: active claim at after_work with a before_completion input present', async (ctx) => {
    const seed = async () => {
      const { store } = await b.fresh(ctx);
      const a1 = await enqueue(store, 's4', at('t1', 'after_work', 'a1'));
      const a2 = await enqueue(store, 's4', at('t1', 'before_completion', 'a2'));
      const a3 = await enqueue(store, 's4', at('t1', undefined, 'a3'));
      const o1 = await enqueue(store, 's4', at('t-other', 'after_work', 'o1'));
      expect([a1, a2, a3, o1].map((r) => r.enqueueSeq)).toEqual([1, 2, 3, 4]);
      const lease = await acquire(store, 's4');
      expect(lease.fencingToken).toBe(1);
      return { store, lease, a1, a2, a3, o1 };
    };

    const { store, lease, a1, a2, a3, o1 } = await seed();
    const k1 = await claimActive(store, lease, 't1', 'after_work', { maxInputs: 10 });
    expect(k1!.inputs).toEqual([
      { ...a1, state: 'accepted' },
      { ...a3, state: 'accepted' },
    ]);
    expect(k1!.claimId).toBe('tic:1:1');
    expect(a3.ingress).toEqual({ scope: 'active_turn', turnId: 't1', minBoundary: 'after_work' });

    const k2 = await claimActive(store, lease, 't1', 'before_completion', { maxInputs: 10 });
    expect(k2!.inputs).toEqual([{ ...a2, state: 'accepted' }]);
    expect(k2!.claimId).toBe('tic:2:1');
    expect(await store.listPendingTurnInputs('s4')).toEqual([o1]);

    const fresh = await seed();
    const k3 = await claimActive(fresh.store, fresh.lease, 't1', 'after_work', { maxInputs: 1 });
    expect(ids(k3!.inputs)).toEqual([fresh.a1.inputId]);
    expect(k3!.claimId).toBe('tic:1:1');
  });

  test('E7: lease re-entry versus another incarnation', async (ctx) => {
    const { store, advance } = await b.fresh(ctx);
    const step = (ms: number) => advance(b.name === 'memory' ? ms : 5);

    const r1 = await store.tryClaimSessionExecutionLease('s7', O('w1'), 30_000);
    expect(r1.outcome).toBe('acquired');
    if (r1.outcome !== 'acquired') return;
    const t1 = r1.lease;
    const t0 = t1.claimedAtEpochMs;
    expect(t1.fencingToken).toBe(1);
    expect(t1.expiresAtEpochMs).toBe(t0 + 30_000);

    await step(4_000); // now 5 000
    const r2 = await store.tryClaimSessionExecutionLease('s7', O('w1'), 60_000);
    expect(r2.outcome).toBe('acquired');
    if (r2.outcome !== 'acquired') return;
    expect(r2.lease.leaseToken).toBe(t1.leaseToken);
    expect(r2.lease.fencingToken).toBe(1);
    expect(r2.lease.claimedAtEpochMs).toBe(t0);
    if (b.name === 'memory') expect(r2.lease.expiresAtEpochMs).toBe(t0 + 64_000);
    else expect(r2.lease.expiresAtEpochMs).toBeGreaterThanOrEqual(t0 + 60_000);

    await step(1_000); // now 6 000
    expect(await store.tryClaimSessionExecutionLease('s7', { ownerId: 'w1', incarnationId: 'w1:2' }, 30_000)).toEqual({
      outcome: 'busy',
      holder: r2.lease,
    });
    expect(await store.tryClaimSessionExecutionLease('s7', O('w2'), 30_000)).toEqual({
      outcome: 'busy',
      holder: r2.lease,
    });

    await step(1_000); // now 7 000
    await store.releaseSessionExecutionLease(leaseCompletion(r2.lease));
    const r3 = await store.tryClaimSessionExecutionLease('s7', O('w2'), 30_000);
    expect(r3.outcome).toBe('acquired');
    if (r3.outcome !== 'acquired') return;
    expect(r3.lease.fencingToken).toBe(2);
    expect(r3.lease.leaseToken).not.toBe(t1.leaseToken);
    await store.releaseSessionExecutionLease(leaseCompletion(t1));
    expect(await store.tryClaimSessionExecutionLease('s7', O('w9'), 30_000)).toEqual({
      outcome: 'busy',
      holder: r3.lease,
    });
    await expectStoreError(store.renewSessionExecutionLease(leaseFence(t1), 30_000), 'SessionExecutionLeaseExpired', {
      sessionId: 's7',
    });

    await step(1_000); // now 8 000
    const r4 = await store.tryClaimSessionExecutionLease('s7b', O('w3'), 0);
    expect(r4.outcome).toBe('acquired');
    if (r4.outcome !== 'acquired') return;
    expect(r4.lease.fencingToken).toBe(1);
    expect(r4.lease.expiresAtEpochMs).toBe(r4.lease.claimedAtEpochMs);
    if (b.name === 'memory') expect(r4.lease.claimedAtEpochMs).toBe(t0 + 7_000);
    const r5 = await store.tryClaimSessionExecutionLease('s7b', O('w4'), 30_000);
    expect(r5.outcome).toBe('acquired');
    if (r5.outcome === 'acquired') expect(r5.lease.fencingToken).toBe(2);
  });

  test('E8: a new generation requeues orphaned accepted input', async (ctx) => {
    const { store, advance } = await b.fresh(ctx);
    const ttl = b.name === 'memory' ? 30_000 : 300;
    const q1 = await enqueue(store, 's8', at('t1', 'after_work', 'q1', { sourceKey: 'k:q1' }));
    expect(q1.enqueueSeq).toBe(1);

    const A = await acquire(store, 's8', O('A'), ttl);
    expect(A.fencingToken).toBe(1);
    const kA = await claimActive(store, A, 't1', 'after_work');
    expect(kA!.claimId).toBe('tic:1:1');
    expect(kA!.inputs).toEqual([{ ...q1, state: 'accepted' }]);

    await advance(b.name === 'memory' ? 31_000 : 350);
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

    const r = await store.tryClaimSessionExecutionLease('s8', O('B'), 60_000);
    expect(r.outcome).toBe('acquired');
    if (r.outcome !== 'acquired') return;
    const B = r.lease;
    expect(B.fencingToken).toBe(2);
    const q1Deferred: PendingTurnInput = { ...q1, state: 'deferred_next_turn', ingress: { scope: 'next_turn' } };
    expect(await store.listPendingTurnInputs('s8')).toEqual([q1Deferred]);
    // Claim cleared, counter stays 1: a cancel would now succeed, and the diagnostics before the claim show it.
    const kB = await claimNext(store, B);
    expect(kB!.claimId).toBe('tic:1:2');
    expect(kB!.inputs).toEqual([q1Deferred]);

    await expectStoreError(
      store.session('s8').commitRuntimeState(minimalCommit(A, [kA!])),
      'SessionExecutionLeaseExpired',
      { sessionId: 's8' },
    );
    await expectStoreError(
      store.session('s8').commitRuntimeState(minimalCommit(B, [kA!])),
      'TurnInputClaimSuperseded',
      { sessionId: 's8', claimId: 'tic:1:1' },
    );
    expect(await enqueue(store, 's8', at('t1', 'after_work', 'q1', { sourceKey: 'k:q1' }))).toEqual(q1Deferred);
  });

  test("E8 (keep): with strandedTurnInputs 'keep', q1 stays accepted and hidden", async (ctx) => {
    const { store, advance } = await b.fresh(ctx, { strandedTurnInputs: 'keep' });
    const q1 = await enqueue(store, 's8', at('t1', 'after_work', 'q1', { sourceKey: 'k:q1' }));
    const A = await acquire(store, 's8', O('A'), b.name === 'memory' ? 30_000 : 300);
    const kA = await claimActive(store, A, 't1', 'after_work');
    await advance(b.name === 'memory' ? 31_000 : 350);
    const B = await acquire(store, 's8', O('B'));
    expect(B.fencingToken).toBe(2);
    expect(await store.listPendingTurnInputs('s8')).toEqual([]);
    expect(await claimNext(store, B)).toBeNull();
    expect(await store.cancelPendingTurnInput('s8', q1.inputId)).toMatchObject({
      outcome: 'already_claimed',
      input: { ...q1, state: 'accepted' },
      claim: { state: 'accepted', claimId: 'tic:1:1', claimSessionLeaseGeneration: 1, claimFencingToken: 1 },
    });
    expect(await enqueue(store, 's8', at('t1', 'after_work', 'q1', { sourceKey: 'k:q1' }))).toEqual({
      ...q1,
      state: 'accepted',
    });
    // Until A's claim is completed or abandoned.
    await store.abandonTurnInputClaim(kA!);
    expect(await store.listPendingTurnInputs('s8')).toEqual([q1]);
  });

  test('E9: claim liveness follows the lease, not the stall deadline', async (ctx) => {
    const { store, advance } = await b.fresh(ctx);
    const n1 = await enqueue(store, 's9', nt('n1'));
    const L1 = await acquire(store, 's9', O('w'), 60_000);
    const K = await claimNext(store, L1, { leaseTtlMs: 1 });
    expect(K!.expiresAtEpochMs).toBe(K!.claimedAtEpochMs + 1);

    await advance(b.name === 'memory' ? 2_000 : 30);
    expect(await store.listPendingTurnInputs('s9')).toEqual([]);
    expect(await store.cancelPendingTurnInput('s9', n1.inputId)).toMatchObject({
      outcome: 'already_claimed',
      claim: { claimId: 'tic:1:1', claimFencingToken: 1, claimSessionLeaseGeneration: 1 },
    });

    await store.releaseSessionExecutionLease(leaseCompletion(L1));
    expect(await store.listPendingTurnInputs('s9')).toEqual([n1]);

    const L2 = await acquire(store, 's9', O('w'));
    expect(L2.fencingToken).toBe(2);
    const R = await claimNext(store, L2);
    expect(R!.claimId).toBe('tic:1:2');
    await expectStoreError(
      store.session('s9').commitRuntimeState(minimalCommit(L2, [claimCompletion(K!)])),
      'TurnInputClaimSuperseded',
      { sessionId: 's9', claimId: 'tic:1:1' },
    );
  });

  test('E9 (variant): after the release, a cancel succeeds', async (ctx) => {
    const { store, advance } = await b.fresh(ctx);
    const n1 = await enqueue(store, 's9', nt('n1'));
    const L1 = await acquire(store, 's9', O('w'), 60_000);
    await claimNext(store, L1, { leaseTtlMs: 1 });
    await advance(b.name === 'memory' ? 2_000 : 30);
    await store.releaseSessionExecutionLease(leaseCompletion(L1));
    expect(await store.cancelPendingTurnInput('s9', n1.inputId)).toEqual({
      outcome: 'cancelled',
      input: cancelled(n1),
    });
  });

  test('E10: all-or-nothing with a stale second completion', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const a = await enqueue(store, 's10', nt('a'));
    const bb = await enqueue(store, 's10', nt('b'));
    const lease = await acquire(store, 's10', O('w'));
    expect(lease.fencingToken).toBe(1);

    const K1 = await claimNext(store, lease, { maxInputs: 1 });
    expect(K1!.claimId).toBe('tic:1:1');
    expect(ids(K1!.inputs)).toEqual([a.inputId]);
    const K2 = await claimNext(store, lease, { maxInputs: 1 });
    expect(K2!.claimId).toBe('tic:2:1');
    expect(ids(K2!.inputs)).toEqual([bb.inputId]);
    await store.abandonTurnInputClaim(K2!);
    const K3 = await claimNext(store, lease, { maxInputs: 1 });
    expect(K3!.claimId).toBe('tic:2:2');
    expect(ids(K3!.inputs)).toEqual([bb.inputId]);

    const facet = store.session('s10');
    await expectStoreError(
      facet.commitRuntimeState(
        minimalCommit(lease, [K1!, K2!], { releaseSessionExecutionLease: leaseCompletion(lease) }),
      ),
      'TurnInputClaimSuperseded',
      { sessionId: 's10', claimId: 'tic:2:1' },
    );
    expect(await facet.loadSession({ kind: 'full_graph' })).toBeNull();
    expect(await store.cancelPendingTurnInput('s10', a.inputId)).toMatchObject({
      outcome: 'already_claimed',
      input: a,
      claim: { claimId: 'tic:1:1', claimFencingToken: 1 },
    });
    expect(await store.tryClaimSessionExecutionLease('s10', O('other'), 60_000)).toEqual({
      outcome: 'busy',
      holder: lease,
    });

    const ok = await facet.commitRuntimeState(
      minimalCommit(lease, [K1!, K3!], { releaseSessionExecutionLease: leaseCompletion(lease) }),
    );
    expect(ok.headRevision).toBe(1);
    expect(await store.cancelPendingTurnInputs('s10', [idt(a.inputId), idt(bb.inputId)])).toEqual([
      { target: idt(a.inputId), outcome: { outcome: 'already_completed', input: { ...a, state: 'completed' } } },
      { target: idt(bb.inputId), outcome: { outcome: 'already_completed', input: { ...bb, state: 'completed' } } },
    ]);
    const next = await store.tryClaimSessionExecutionLease('s10', O('other'), 60_000);
    expect(next.outcome).toBe('acquired');
    if (next.outcome === 'acquired') expect(next.lease.fencingToken).toBe(2);
  });
});
