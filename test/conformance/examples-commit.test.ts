/**
 * The worked examples of SPEC 15 that end in commits: the commit half of E3, and E5, E6, E10, E11.
 * Each runs on a fresh store per backend, so enqueueSeq starts at 1.
 */
import { expect, test } from 'vitest';
import { claimCompletion, leaseCompletion, turnCommitHash } from '../../src/index.js';
import { describeBackends } from './backends.js';
import {
  baseCommit,
  completions,
  expectInvalidNaming,
  expectLeaseFree,
  expectLeaseHeld,
  freeze,
  jsonRef,
  keysOf,
  node,
  peek,
  stamped,
  usage,
} from './commit-fixtures.js';
import { acquire, at, claimActive, claimNext, enqueue, expectStoreError, ids, nt, O } from './fixtures.js';

describeBackends('SPEC 15 worked examples (commits)', (b) => {
  test('E3 (commit half): a superseded claim cannot complete; the live one does', async (ctx) => {
    const f = await b.fresh(ctx);
    const { store } = f;
    const S = 's3';
    // Steps 1-6: F and S, lease L1, claim K, abandon K, reclaim R.
    const F = await enqueue(store, S, nt('F'));
    const Srow = await enqueue(store, S, nt('S'));
    expect([F.enqueueSeq, Srow.enqueueSeq]).toEqual([1, 2]);
    const l1 = await acquire(store, S, O('w'));
    expect(l1.fencingToken).toBe(1);
    const K = await claimNext(store, l1, { maxInputs: 10 });
    if (!K) throw new Error('no claim K');
    expect(K.claimId).toBe('tic:1:1');
    expect(K.fencingToken).toBe(1);
    expect(K.sessionLeaseGeneration).toBe(1);
    expect(ids(K.inputs)).toEqual([F.inputId, Srow.inputId]);
    expect(await claimNext(store, l1, { maxInputs: 10 })).toBeNull();
    await store.abandonTurnInputClaim(K);
    expect(ids(await store.listPendingTurnInputs(S))).toEqual([F.inputId, Srow.inputId]);
    const R = await claimNext(store, l1, { maxInputs: 10 });
    if (!R) throw new Error('no claim R');
    expect(R.claimId).toBe('tic:1:2');
    expect(R.fencingToken).toBe(2);

    // Step 7: completing K rejects; nothing is written and R is intact.
    const unchanged = await freeze(f, [S]);
    await expectStoreError(
      store.session(S).commitRuntimeState(baseCommit(S, l1, { completedTurnInputClaims: [claimCompletion(K)] })),
      'TurnInputClaimSuperseded',
      { sessionId: 's3', claimId: 'tic:1:1' },
    );
    await unchanged();
    expect(await store.session(S).loadSession({ kind: 'full_graph' })).toBeNull();
    expect(await store.listPendingTurnInputs(S)).toEqual([]);
    const held = await store.cancelPendingTurnInput(S, F.inputId);
    expect(held.outcome).toBe('already_claimed');
    if (held.outcome === 'already_claimed') {
      expect(held.claim?.claimId).toBe('tic:1:2');
      expect(held.claim?.claimFencingToken).toBe(2);
    }
    await expectLeaseHeld(store, S, l1);

    // Step 8: completing R with a release succeeds.
    const r = await store.session(S).commitRuntimeState(
      baseCommit(S, l1, {
        completedTurnInputClaims: [claimCompletion(R)],
        releaseSessionExecutionLease: leaseCompletion(l1),
      }),
    );
    expect(r.headRevision).toBe(1);
    for (const row of [F, Srow]) {
      const c = await store.cancelPendingTurnInput(S, row.inputId);
      expect(c.outcome).toBe('already_completed');
      if (c.outcome === 'already_completed') expect(c.input.state).toBe('completed');
    }
    expect(await store.listPendingTurnInputs(S)).toEqual([]);

    // Step 9: a new lease is generation 2, and there is nothing left to claim.
    const l2 = await expectLeaseFree(store, S, 2, O('w'));
    expect(await claimNext(store, l2, { maxInputs: 10 })).toBeNull();
  });

  test('E5: a commit completes a claim and defers the interrupted turn’s active input', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const S = 's5';
    const x1 = await enqueue(store, S, at('t1', 'after_work', 'accepted'));
    const x2Body = at('t1', 'after_work', 'active', { sourceKey: 'e5:x2' });
    const x2 = await enqueue(store, S, x2Body);
    const x3 = await enqueue(store, S, at('t1', 'before_completion'));
    const y1 = await enqueue(store, S, at('t2', 'after_work'));
    const z1 = await enqueue(store, S, nt('z'));
    expect([x1, x2, x3, y1, z1].map((r) => r.enqueueSeq)).toEqual([1, 2, 3, 4, 5]);
    expect((await store.cancelPendingTurnInput(S, z1.inputId)).outcome).toBe('cancelled');

    const lease = await acquire(store, S);
    expect(lease.fencingToken).toBe(1);
    const K = await claimActive(store, lease, 't1', 'after_work', { maxInputs: 1 });
    if (!K) throw new Error('no claim');
    expect(K.claimId).toBe('tic:1:1');
    expect(ids(K.inputs)).toEqual([x1.inputId]);

    const body = baseCommit(S, lease, {
      graph: { kind: 'replace_full', graph: { nodes: [node('n1'), node('n2', 'n1')], leafNodeId: 'n2' } },
      completedTurnInputClaims: [claimCompletion(K)],
      interruptedTurnInputTurnId: 't1',
    });
    const H = turnCommitHash(body);
    const commit = { ...body, turnCommit: { sessionId: S, turnId: 't1', turnCommitHash: H } };
    const r = await store.session(S).commitRuntimeState(commit);
    expect(r.headRevision).toBe(1);

    // Step 4.
    const c1 = await store.cancelPendingTurnInput(S, x1.inputId);
    expect(c1.outcome).toBe('already_completed');
    if (c1.outcome === 'already_completed') expect(c1.input.state).toBe('completed');
    const cz = await store.cancelPendingTurnInput(S, z1.inputId);
    expect(cz.outcome).toBe('already_cancelled');

    // Step 5: the list is [x2, x3, y1].
    const list = await store.listPendingTurnInputs(S);
    expect(ids(list)).toEqual([x2.inputId, x3.inputId, y1.inputId]);
    expect(list[0]).toMatchObject({ state: 'deferred_next_turn', ingress: { scope: 'next_turn' }, enqueueSeq: 2 });
    expect(list[1]).toMatchObject({ state: 'deferred_next_turn', ingress: { scope: 'next_turn' }, enqueueSeq: 3 });
    expect(list[0].ingress).toEqual({ scope: 'next_turn' });
    expect(list[1].ingress).toEqual({ scope: 'next_turn' });
    expect(list[2]).toEqual(y1);
    expect(list[2].state).toBe('pending_active');
    expect(list[2].ingress).toEqual({ scope: 'active_turn', turnId: 't2', minBoundary: 'after_work' });
    const next = await claimNext(store, lease);
    expect(ids(next?.inputs ?? [])).toEqual([x2.inputId, x3.inputId]);

    // Step 6: t1 is stamped, so late active input for it is stored as next-turn input (T3).
    const late = await enqueue(store, S, at('t1', 'after_work', 'late'));
    expect(late.state).toBe('deferred_next_turn');
    expect(late.ingress).toEqual({ scope: 'next_turn' });
    expect(late.enqueueSeq).toBe(6);

    // Step 7: x2's original draft replays to x2 as it is now, not a conflict.
    const replay = await peek(store, S, x2Body);
    expect(replay.inputId).toBe(x2.inputId);
    expect(replay.state).toBe('deferred_next_turn');
    expect(replay.ingress).toEqual({ scope: 'next_turn' });

    // The commit itself is replayable.
    expect(await store.session(S).commitRuntimeState(commit)).toEqual(r);
  });

  test('E6: replays with the same hash and conflicts with a different one', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const S = 's6';
    const l1 = await acquire(store, S, O('w'));
    const C1 = stamped(
      baseCommit(S, l1, {
        config: { model: 'm' },
        checkpoint: { turnState: { step: 1 }, toolState: { tool: 'state' } },
        graph: { kind: 'replace_full', graph: { nodes: [node('root')], leafNodeId: 'root' } },
        usageDeltas: [usage('turn', 'm', 3, 4)],
        releaseSessionExecutionLease: leaseCompletion(l1),
      }),
      'turn-1',
    );
    const H1 = C1.turnCommit?.turnCommitHash;
    const R1 = await store.session(S).commitRuntimeState(C1);
    expect(R1.headRevision).toBe(1);
    expect(R1.manifest).toEqual({ schemaVersion: 1, turnState: { step: 1 }, toolStateRef: jsonRef({ tool: 'state' }) });
    expect(R1.checkpointRef).toBe(jsonRef(R1.manifest));
    // The lease is free: someone else takes it (generation 2).
    const l2 = await expectLeaseFree(store, S, 2, O('other'));

    // Step 2: no fence at all.
    const noFence = { ...C1 };
    delete noFence.sessionExecutionLease;
    expect(await store.session(S).commitRuntimeState(noFence)).toEqual(R1);
    expect((await store.session(S).loadSession({ kind: 'full_graph' }))?.headRevision).toBe(1);

    // Step 3: the replay's release names L1, which no longer holds: L2 is untouched.
    expect(await store.session(S).commitRuntimeState(C1)).toEqual(R1);
    await expectLeaseHeld(store, S, l2);
    const loaded = await store.session(S).loadSession({ kind: 'full_graph' });
    expect(loaded?.headRevision).toBe(1);
    expect(loaded?.tokenLedger).toEqual([usage('turn', 'm', 3, 4)]);

    // Step 4: another hash for turn-1, with no fence.
    const C2 = stamped(baseCommit(S, undefined, { config: { model: 'other' } }), 'turn-1');
    expect(C2.turnCommit?.turnCommitHash).not.toBe(H1);
    await expectStoreError(store.session(S).commitRuntimeState(C2), 'RuntimeTurnCommitConflict', {
      sessionId: 's6',
      turnId: 'turn-1',
    });

    // Step 5: expectedHeadRevision is not part of the hash.
    expect(turnCommitHash({ ...C1, expectedHeadRevision: 7 })).toBe(H1);
    expect(await store.session(S).commitRuntimeState({ ...noFence, expectedHeadRevision: 7 })).toEqual(R1);
  });

  test('E6 (release on replay): a requested fenced release applies only to a matching lease', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const S = 's6r';
    const l1 = await acquire(store, S, O('w'));
    // First commit without a release: the worker keeps the lease.
    const C1 = stamped(baseCommit(S, l1, { config: 1 }), 'turn-1');
    const R1 = await store.session(S).commitRuntimeState(C1);
    await expectLeaseHeld(store, S, l1);
    // A replay with a release that does not match (other token) is silent.
    const wrong = { ...C1, releaseSessionExecutionLease: { ...leaseCompletion(l1), fencingToken: 99 } };
    expect(await store.session(S).commitRuntimeState(wrong)).toEqual(R1);
    await expectLeaseHeld(store, S, l1);
    // A replay without a fence but with the matching release releases it.
    const retry = { ...C1, releaseSessionExecutionLease: leaseCompletion(l1) };
    delete retry.sessionExecutionLease;
    expect(await store.session(S).commitRuntimeState(retry)).toEqual(R1);
    await expectLeaseFree(store, S, 2);
    expect((await store.session(S).loadSession({ kind: 'full_graph' }))?.headRevision).toBe(1);
  });

  test('E10: all or nothing with a stale second completion', async (ctx) => {
    const f = await b.fresh(ctx);
    const { store } = f;
    const S = 's10';
    const a = await enqueue(store, S, nt('a'));
    const bRow = await enqueue(store, S, nt('b'));
    const lease = await acquire(store, S);
    expect(lease.fencingToken).toBe(1);
    const K1 = await claimNext(store, lease, { maxInputs: 1 });
    const K2 = await claimNext(store, lease, { maxInputs: 1 });
    if (!K1 || !K2) throw new Error('no claim');
    expect([K1.claimId, ids(K1.inputs)]).toEqual(['tic:1:1', [a.inputId]]);
    expect([K2.claimId, ids(K2.inputs)]).toEqual(['tic:2:1', [bRow.inputId]]);
    await store.abandonTurnInputClaim(K2);
    const K3 = await claimNext(store, lease, { maxInputs: 1 });
    if (!K3) throw new Error('no claim');
    expect([K3.claimId, ids(K3.inputs)]).toEqual(['tic:2:2', [bRow.inputId]]);

    // Step 3: the whole commit is rejected, including its release, blob, usage and stamp.
    const unchanged = await freeze(f, [S]);
    const failing = stamped(
      baseCommit(S, lease, {
        completedTurnInputClaims: completions(K1, K2),
        releaseSessionExecutionLease: leaseCompletion(lease),
        checkpoint: { turnState: null, toolState: { attempt: 1 } },
        usageDeltas: [usage('turn', 'm', 10)],
        graph: { kind: 'replace_full', graph: { nodes: [node('n')], leafNodeId: 'n' } },
      }),
      'turn-x',
    );
    await expectStoreError(store.session(S).commitRuntimeState(failing), 'TurnInputClaimSuperseded', {
      sessionId: 's10',
      claimId: 'tic:2:1',
    });
    await unchanged();
    expect(await store.session(S).loadSession({ kind: 'full_graph' })).toBeNull();
    const aState = await store.cancelPendingTurnInput(S, a.inputId);
    expect(aState.outcome).toBe('already_claimed');
    if (aState.outcome === 'already_claimed') {
      expect(aState.input.state).toBe('deferred_next_turn');
      expect(aState.claim?.claimId).toBe('tic:1:1');
    }
    await expectLeaseHeld(store, S, lease);
    // No blob: the failed commit's toolState cannot be referenced.
    await expectInvalidNaming(
      store
        .session(S)
        .commitRuntimeState(
          baseCommit(S, lease, { checkpoint: { turnState: null, toolStateRef: jsonRef({ attempt: 1 }) } }),
        ),
      'checkpoint.toolStateRef',
    );

    // Step 4: [K1, K3] with a release succeeds. The same turn id is free (no stamp was written).
    const ok = stamped(
      baseCommit(S, lease, {
        completedTurnInputClaims: completions(K1, K3),
        releaseSessionExecutionLease: leaseCompletion(lease),
      }),
      'turn-x',
    );
    const r = await store.session(S).commitRuntimeState(ok);
    expect(r.headRevision).toBe(1);
    const loaded = await store.session(S).loadSession({ kind: 'full_graph' });
    expect(loaded?.tokenLedger).toEqual([]);
    expect(loaded?.graph).toEqual({ nodes: [] });
    for (const row of [a, bRow]) {
      expect((await store.cancelPendingTurnInput(S, row.inputId)).outcome).toBe('already_completed');
    }
    await expectLeaseFree(store, S, 2);
  });

  test('E11: graph reads, checkpoint refs and the usage ledger', async (ctx) => {
    const f = await b.fresh(ctx);
    const { store } = f;
    const S = 's11';
    const lease = await acquire(store, S);
    const facet = store.session(S);
    const root = node('root');
    const left = node('left', 'root');
    const leftLeaf = node('leftLeaf', 'left');
    const rightLeaf = node('rightLeaf', 'root');

    // Step 1.
    const r1 = await facet.commitRuntimeState(
      baseCommit(S, lease, {
        graph: { kind: 'replace_full', graph: { nodes: [root, left, leftLeaf, rightLeaf], leafNodeId: 'leftLeaf' } },
        checkpoint: { turnState: null, toolState: { gen: 1 } },
        usageDeltas: [usage('turn', 'm1', 11, 7, 3, 0, 5), usage('turn', 'm1', 0, 0, 0, 0, 9)],
      }),
    );
    expect(r1.manifest.toolStateRef).toBe(jsonRef({ gen: 1 }));

    // Step 2.
    const full = await facet.loadSession({ kind: 'full_graph' });
    expect(full?.graph).toEqual({ nodes: [root, left, leftLeaf, rightLeaf], leafNodeId: 'leftLeaf' });
    expect((await facet.loadSession({ kind: 'active_path' }))?.graph).toEqual({
      nodes: [root, left, leftLeaf],
      leafNodeId: 'leftLeaf',
    });
    expect((await facet.loadSession({ kind: 'active_path', leafNodeId: 'rightLeaf' }))?.graph).toEqual({
      nodes: [root, rightLeaf],
      leafNodeId: 'rightLeaf',
    });
    expect((await facet.loadSession({ kind: 'active_path', leafNodeId: 'ghost' }))?.graph).toEqual({
      nodes: [],
      leafNodeId: 'ghost',
    });
    expect(full?.tokenLedger).toEqual([usage('turn', 'm1', 11, 7, 3, 0, 5)]);

    // Step 3.
    await facet.commitRuntimeState(
      baseCommit(S, lease, {
        graph: { kind: 'unchanged' },
        checkpoint: { turnState: null, toolStateRef: r1.manifest.toolStateRef },
        usageDeltas: [usage('tool', 'm2', 2), usage('turn', 'm1', 1, 1)],
      }),
    );

    // Step 4.
    const after = await facet.loadSession({ kind: 'active_path' });
    expect(after?.checkpoint?.toolState).toEqual({ gen: 1 });
    expect(after?.checkpoint?.toolStateRef).toBe(r1.manifest.toolStateRef);
    expect(after?.graph).toEqual({ nodes: [] });
    expect(keysOf(after?.graph)).toEqual(['nodes']);
    expect(after?.tokenLedger).toEqual([usage('turn', 'm1', 12, 8, 3, 0, 5), usage('tool', 'm2', 2, 0, 0, 0, 0)]);
    expect((await facet.loadSession({ kind: 'full_graph' }))?.graph.nodes).toEqual([root, left, leftLeaf, rightLeaf]);

    // Step 5: the { gen: 2 } blob replaces the old one, which is deleted.
    const r3 = await facet.commitRuntimeState(
      baseCommit(S, lease, { checkpoint: { turnState: null, toolState: { gen: 2 } } }),
    );
    expect(r3.manifest.toolStateRef).toBe(jsonRef({ gen: 2 }));
    expect((await facet.loadSession({ kind: 'full_graph' }))?.checkpoint?.toolState).toEqual({ gen: 2 });
    await expectInvalidNaming(
      facet.commitRuntimeState(
        baseCommit(S, lease, { checkpoint: { turnState: null, toolStateRef: r1.manifest.toolStateRef } }),
      ),
      'checkpoint.toolStateRef',
    );

    // Step 6.
    const unchanged = await freeze(f, [S]);
    await expectInvalidNaming(
      facet.commitRuntimeState(baseCommit(S, lease, { checkpoint: { turnState: null, toolStateRef: 'bogus' } })),
      'checkpoint.toolStateRef',
    );
    // Step 7.
    await expectInvalidNaming(
      facet.commitRuntimeState(baseCommit(S, lease, { graph: { kind: 'append', nodes: [node('left', 'root')] } })),
      'graph.nodes',
    );
    await unchanged();
    expect((await facet.loadSession({ kind: 'full_graph' }))?.headRevision).toBe(3);
  });
});
