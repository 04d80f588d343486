/**
 * commitRuntimeState, loadSession and loadNode (SPEC 6, 3.5 T3/T6/T8/T10, 13), against both
 * backends. Every expectation is derived from SPEC.md.
 */
import { expect, test } from 'vitest';
import {
  claimCompletion,
  type JsonValue,
  leaseCompletion,
  leaseFence,
  type RuntimeCommit,
  type SessionNodeRecord,
  turnCommitHash,
} from '../../src/index.js';
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
  sha,
  stamped,
  usage,
} from './commit-fixtures.js';
import {
  acquire,
  assertInvalidInput,
  at,
  claimActive,
  claimNext,
  enqueue,
  expectInvalidInput,
  expectStoreError,
  ids,
  nt,
  O,
  sid,
  thrown,
} from './fixtures.js';

/** A commit with no fence at all: still step 3's error, with details naming what is missing (issue 22 item 7). */
const noFence = (sessionId: string) => ({
  sessionId,
  reason: 'no_lease_fence',
});

describeBackends('commit check order (SPEC 6.2)', (b) => {
  test('validation (step 0) comes before the binding check (step 1)', async (ctx) => {
    const f = await b.fresh(ctx);
    const S = sid('order-0');
    const lease = await acquire(f.store, S);
    const facet = f.store.session(S);
    const unchanged = await freeze(f, [S, 'other']);
    // Duplicate node ids in one append, and the commit targets another session.
    await expectInvalidNaming(
      facet.commitRuntimeState(
        baseCommit('other', undefined, { graph: { kind: 'append', nodes: [node('a'), node('a')] } }),
      ),
      'graph.nodes',
    );
    // Duplicate node ids in a replace_full graph.
    await expectInvalidNaming(
      facet.commitRuntimeState(
        baseCommit('other', undefined, {
          graph: { kind: 'replace_full', graph: { nodes: [node('a'), node('b'), node('a')] } },
        }),
      ),
      'graph.graph.nodes',
    );
    // A release whose session differs from the commit's.
    await expectInvalidNaming(
      facet.commitRuntimeState(
        baseCommit(S, lease, { releaseSessionExecutionLease: { ...leaseCompletion(lease), sessionId: 'elsewhere' } }),
      ),
      'releaseSessionExecutionLease',
    );
    await unchanged();
  });

  test('binding (1) wins over a stamp of another session (2) and a missing fence (3)', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const S = sid('order-1');
    const facet = store.session(S);
    const commit = baseCommit('other', undefined, {
      turnCommit: { sessionId: 'third', turnId: 't1', turnCommitHash: 'h' },
    });
    await expectStoreError(facet.commitRuntimeState(commit), 'SessionBindingMismatch', {
      boundSessionId: S,
      attemptedSessionId: 'other',
    });
  });

  test('binding (1) wins over a replay or a conflicting stamp of the attempted session (2)', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const S = sid('order-1b');
    const T = sid('order-1b-target');
    const lease = await acquire(store, T);
    const c1 = stamped(baseCommit(T, lease, { config: { v: 1 } }), 'turn-1');
    await store.session(T).commitRuntimeState(c1);
    // The same commit sent through a facet bound to another session: not a replay.
    await expectStoreError(store.session(S).commitRuntimeState(c1), 'SessionBindingMismatch', {
      boundSessionId: S,
      attemptedSessionId: T,
    });
    const c2 = stamped(baseCommit(T, undefined, { config: { v: 2 } }), 'turn-1');
    await expectStoreError(store.session(S).commitRuntimeState(c2), 'SessionBindingMismatch', {
      boundSessionId: S,
      attemptedSessionId: T,
    });
  });

  test('a stamp naming another session (2) wins over a missing or stale fence (3) and CAS (4)', async (ctx) => {
    const f = await b.fresh(ctx);
    const S = sid('order-2');
    const lease = await acquire(f.store, S);
    await f.store.releaseSessionExecutionLease(leaseCompletion(lease));
    const facet = f.store.session(S);
    const unchanged = await freeze(f, [S]);
    const noFence = baseCommit(S, undefined, {
      turnCommit: { sessionId: 'another', turnId: 't-x', turnCommitHash: 'h' },
    });
    await expectStoreError(facet.commitRuntimeState(noFence), 'RuntimeTurnCommitConflict', {
      sessionId: S,
      turnId: 't-x',
    });
    const staleFence = baseCommit(S, lease, {
      expectedHeadRevision: 9,
      turnCommit: { sessionId: 'another', turnId: 't-y', turnCommitHash: 'h' },
    });
    await expectStoreError(facet.commitRuntimeState(staleFence), 'RuntimeTurnCommitConflict', {
      sessionId: S,
      turnId: 't-y',
    });
    await unchanged();
  });

  test('a stamp replay (2) wins over a missing or stale fence (3) and a CAS mismatch (4)', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const S = sid('order-2r');
    const lease = await acquire(store, S);
    const facet = store.session(S);
    const c1 = stamped(
      baseCommit(S, lease, { config: { v: 1 }, releaseSessionExecutionLease: leaseCompletion(lease) }),
      'turn-1',
    );
    const r1 = await facet.commitRuntimeState(c1);
    expect(r1.headRevision).toBe(1);
    // The lease is released now: c1's fence is stale.
    expect(await facet.commitRuntimeState(c1)).toEqual(r1);
    const noFence = { ...c1 };
    delete noFence.sessionExecutionLease;
    expect(await facet.commitRuntimeState(noFence)).toEqual(r1);
    // expectedHeadRevision is not part of the hash, and CAS is never reached.
    expect(await facet.commitRuntimeState({ ...noFence, expectedHeadRevision: 7 })).toEqual(r1);
    expect((await facet.loadSession({ kind: 'full_graph' }))?.headRevision).toBe(1);
  });

  test('a stamp conflict (2) wins over a missing fence (3)', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const S = sid('order-2c');
    const lease = await acquire(store, S);
    const facet = store.session(S);
    await facet.commitRuntimeState(stamped(baseCommit(S, lease, { config: { v: 1 } }), 'turn-1'));
    await store.releaseSessionExecutionLease(leaseCompletion(lease));
    const c2 = stamped(baseCommit(S, undefined, { config: { v: 2 } }), 'turn-1');
    await expectStoreError(facet.commitRuntimeState(c2), 'RuntimeTurnCommitConflict', {
      sessionId: S,
      turnId: 'turn-1',
    });
    const c3 = stamped(baseCommit(S, lease, { config: { v: 3 }, expectedHeadRevision: 0 }), 'turn-1');
    await expectStoreError(facet.commitRuntimeState(c3), 'RuntimeTurnCommitConflict', {
      sessionId: S,
      turnId: 'turn-1',
    });
  });

  test('the fence (3) wins over a CAS mismatch (4)', async (ctx) => {
    const f = await b.fresh(ctx);
    const S = sid('order-3');
    const lease = await acquire(f.store, S);
    await f.store.releaseSessionExecutionLease(leaseCompletion(lease));
    const unchanged = await freeze(f, [S]);
    const facet = f.store.session(S);
    await expectStoreError(
      facet.commitRuntimeState(baseCommit(S, lease, { expectedHeadRevision: 5 })),
      'SessionExecutionLeaseExpired',
      { sessionId: S },
    );
    await expectStoreError(
      facet.commitRuntimeState(baseCommit(S, undefined, { expectedHeadRevision: 5 })),
      'SessionExecutionLeaseExpired',
      noFence(S),
    );
    await unchanged();
  });

  test('CAS (4) wins over non-empty completedQueueClaims (5)', async (ctx) => {
    const f = await b.fresh(ctx);
    const S = sid('order-4');
    const lease = await acquire(f.store, S);
    const unchanged = await freeze(f, [S]);
    const commit = baseCommit(S, lease, {
      expectedHeadRevision: 3,
      completedQueueClaims: [{ sessionId: S, claimId: 'q1', leaseToken: 'qt', batchIds: ['b1'] }],
    });
    await expectStoreError(f.store.session(S).commitRuntimeState(commit), 'HeadRevisionConflict', {
      expected: 3,
      actual: 0,
    });
    await unchanged();
  });

  test('completedQueueClaims (5) win over a superseded turn-input completion (6)', async (ctx) => {
    const f = await b.fresh(ctx);
    const S = sid('order-5');
    const lease = await acquire(f.store, S);
    const unchanged = await freeze(f, [S]);
    const commit = baseCommit(S, lease, {
      completedQueueClaims: [
        { sessionId: S, claimId: 'q-first', leaseToken: 'qt1', batchIds: ['b1'] },
        { sessionId: S, claimId: 'q-second', leaseToken: 'qt2', batchIds: ['b2'] },
      ],
      completedTurnInputClaims: [{ sessionId: S, claimId: 'tic:9:9', leaseToken: 'nope', inputIds: ['ghost'] }],
    });
    await expectStoreError(f.store.session(S).commitRuntimeState(commit), 'QueuedWorkClaimSuperseded', {
      sessionId: S,
      claimId: 'q-first',
    });
    await unchanged();
  });

  test('turn-input completions (6) win over content checks (7)', async (ctx) => {
    const f = await b.fresh(ctx);
    const S = sid('order-6');
    const lease = await acquire(f.store, S);
    const facet = f.store.session(S);
    await facet.commitRuntimeState(
      baseCommit(S, lease, { graph: { kind: 'replace_full', graph: { nodes: [node('root')] } } }),
    );
    const unchanged = await freeze(f, [S]);
    const commit = baseCommit(S, lease, {
      graph: { kind: 'append', nodes: [node('root')] },
      checkpoint: { turnState: null, toolStateRef: 'bogus-ref' },
      completedTurnInputClaims: [{ sessionId: S, claimId: 'tic:1:1', leaseToken: 'nope', inputIds: ['ghost'] }],
    });
    await expectStoreError(facet.commitRuntimeState(commit), 'TurnInputClaimSuperseded', {
      sessionId: S,
      claimId: 'tic:1:1',
    });
    await unchanged();
  });
});

describeBackends('commit issue paths (SPEC 2.4, 6.2 step 7)', (b) => {
  // SPEC 2.4: "Each issue begins with the dotted path of the offending field, for example
  // "maxInputs: must be an integer in 0..1000"" -- the path of the field inside the argument.
  test('content-check issues begin with the dotted path of the field', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const S = sid('issue-paths');
    const lease = await acquire(store, S);
    const facet = store.session(S);
    await facet.commitRuntimeState(
      baseCommit(S, lease, { graph: { kind: 'replace_full', graph: { nodes: [node('root')] } } }),
    );
    await expectInvalidInput(
      facet.commitRuntimeState(baseCommit(S, lease, { graph: { kind: 'append', nodes: [node('root')] } })),
      'graph.nodes',
    );
    await expectInvalidInput(
      facet.commitRuntimeState(baseCommit(S, lease, { checkpoint: { turnState: null, toolStateRef: 'bogus' } })),
      'checkpoint.toolStateRef',
    );
  });

  test('validation issues begin with the dotted path of the field', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const S = sid('issue-paths-validation');
    const lease = await acquire(store, S);
    await expectInvalidInput(
      store
        .session(S)
        .commitRuntimeState(baseCommit(S, lease, { graph: { kind: 'append', nodes: [node('a'), node('a')] } })),
      'graph.nodes',
    );
    await expectInvalidInput(
      store.session(S).commitRuntimeState(baseCommit(S, lease, { expectedHeadRevision: -1 })),
      'expectedHeadRevision',
    );
  });
});

describeBackends('commit fence (SPEC 3.3, 6.2 step 3)', (b) => {
  test('a commit without a fence is SessionExecutionLeaseExpired, with or without a lease, saying what is missing', async (ctx) => {
    const f = await b.fresh(ctx);
    const S = sid('nofence');
    const facet = f.store.session(S);
    // A session never leased: the details name the missing fence (issue 22 item 7).
    await expectStoreError(facet.commitRuntimeState(baseCommit(S)), 'SessionExecutionLeaseExpired', noFence(S));
    const lease = await acquire(f.store, S);
    await expectStoreError(facet.commitRuntimeState(baseCommit(S)), 'SessionExecutionLeaseExpired', noFence(S));
    expect(await facet.loadSession({ kind: 'full_graph' })).toBeNull();
    await expectLeaseHeld(f.store, S, lease);
  });

  test('every kind of stale fence is SessionExecutionLeaseExpired and writes nothing', async (ctx) => {
    const f = await b.fresh(ctx);
    const S = sid('stale');
    const other = sid('stale-other');
    const facet = f.store.session(S);
    const lease = await acquire(f.store, S);
    const otherLease = await acquire(f.store, other);
    const fence = leaseFence(lease);
    const unchanged = await freeze(f, [S, other]);
    const bad = [
      { ...fence, leaseToken: `${fence.leaseToken}x` },
      { ...fence, fencingToken: fence.fencingToken + 1 },
      { ...fence, owner: { ...fence.owner, incarnationId: 'w:2' } },
      { ...fence, owner: { ...fence.owner, ownerId: 'someone-else' } },
      // A live fence of another session.
      leaseFence(otherLease),
    ];
    for (const stale of bad) {
      await expectStoreError(
        facet.commitRuntimeState(baseCommit(S, undefined, { sessionExecutionLease: stale })),
        'SessionExecutionLeaseExpired',
        { sessionId: S },
      );
    }
    await unchanged();
    // The genuine fence still works, and a full lease object is accepted as a fence (SPEC 2.4).
    const r = await facet.commitRuntimeState(baseCommit(S, undefined, { sessionExecutionLease: lease }));
    expect(r.headRevision).toBe(1);
  });

  test('a released lease and a superseded generation cannot commit', async (ctx) => {
    const f = await b.fresh(ctx);
    const S = sid('released');
    const facet = f.store.session(S);
    const l1 = await acquire(f.store, S, O('w1'));
    await f.store.releaseSessionExecutionLease(leaseCompletion(l1));
    await expectStoreError(facet.commitRuntimeState(baseCommit(S, l1)), 'SessionExecutionLeaseExpired', {
      sessionId: S,
    });
    const l2 = await acquire(f.store, S, O('w2'));
    expect(l2.fencingToken).toBe(2);
    await expectStoreError(facet.commitRuntimeState(baseCommit(S, l1)), 'SessionExecutionLeaseExpired', {
      sessionId: S,
    });
    // The same owner re-acquiring opens a new generation too: the old fence stays stale.
    await f.store.releaseSessionExecutionLease(leaseCompletion(l2));
    const l3 = await acquire(f.store, S, O('w1'));
    expect(l3.fencingToken).toBe(3);
    await expectStoreError(facet.commitRuntimeState(baseCommit(S, l1)), 'SessionExecutionLeaseExpired', {
      sessionId: S,
    });
    expect(await facet.loadSession({ kind: 'full_graph' })).toBeNull();
    expect((await facet.commitRuntimeState(baseCommit(S, l3))).headRevision).toBe(1);
  });

  test('an expired lease cannot commit (ttl 0, and a lapsed ttl)', async (ctx) => {
    const f = await b.fresh(ctx);
    const S = sid('expired');
    const facet = f.store.session(S);
    const l0 = await acquire(f.store, S, O('w'), 0);
    await expectStoreError(facet.commitRuntimeState(baseCommit(S, l0)), 'SessionExecutionLeaseExpired', {
      sessionId: S,
    });
    const l1 = await acquire(f.store, S, O('w'), 100);
    expect(l1.fencingToken).toBe(2);
    await f.advance(150);
    await expectStoreError(facet.commitRuntimeState(baseCommit(S, l1)), 'SessionExecutionLeaseExpired', {
      sessionId: S,
    });
    expect(await facet.loadSession({ kind: 'full_graph' })).toBeNull();
  });

  if (b.name === 'memory') {
    test('expiry is exact: live at expiresAt - 1, expired at expiresAt (memory clock)', async (ctx) => {
      const f = await b.fresh(ctx);
      const S = sid('expiry-edge');
      const facet = f.store.session(S);
      const lease = await acquire(f.store, S, O('w'), 1000);
      await f.advance(999);
      expect((await facet.commitRuntimeState(baseCommit(S, lease))).headRevision).toBe(1);
      await f.advance(1);
      await expectStoreError(facet.commitRuntimeState(baseCommit(S, lease)), 'SessionExecutionLeaseExpired', {
        sessionId: S,
      });
    });
  }
});

describeBackends('commit binding (SPEC 3.1, 6.2 step 1)', (b) => {
  test('a commit for another session is SessionBindingMismatch and writes nothing anywhere', async (ctx) => {
    const f = await b.fresh(ctx);
    const S = sid('bound');
    const T = sid('attempted');
    const leaseT = await acquire(f.store, T);
    const unchanged = await freeze(f, [S, T]);
    // Even with a valid fence for the attempted session.
    await expectStoreError(f.store.session(S).commitRuntimeState(baseCommit(T, leaseT)), 'SessionBindingMismatch', {
      boundSessionId: S,
      attemptedSessionId: T,
    });
    await unchanged();
  });

  test('session() validates its id synchronously and binds the facet', async (ctx) => {
    const { store } = await b.fresh(ctx);
    assertInvalidInput(thrown(() => store.session('')));
    const facet = store.session('a:{b}');
    expect(facet.sessionId).toBe('a:{b}');
    expect(facet.durabilityTier()).toBe(store.durabilityTier());
  });
});

describeBackends('turn-commit stamps (SPEC 6.2 step 2, 6.3 step 8)', (b) => {
  test('a replay returns the first result deep-equal, even after later commits, and writes nothing', async (ctx) => {
    const f = await b.fresh(ctx);
    const S = sid('replay');
    const lease = await acquire(f.store, S);
    const facet = f.store.session(S);
    const c1 = stamped(
      baseCommit(S, lease, {
        config: { v: 1 },
        checkpoint: { turnState: { step: 1 }, toolState: { tool: 1 } },
        graph: { kind: 'replace_full', graph: { nodes: [node('n1')], leafNodeId: 'n1' } },
        usageDeltas: [usage('turn', 'm', 5)],
      }),
      'turn-1',
    );
    const r1 = await facet.commitRuntimeState(c1);
    expect(r1.headRevision).toBe(1);
    const r2 = await facet.commitRuntimeState(baseCommit(S, lease, { config: { v: 2 } }));
    expect(r2.headRevision).toBe(2);
    const unchanged = await freeze(f, [S]);
    const replay = await facet.commitRuntimeState(c1);
    expect(replay).toEqual(r1);
    // A fresh copy: mutating it does not change what a later replay returns.
    replay.manifest.turnState = 'mutated';
    replay.headRevision = 42;
    expect(await facet.commitRuntimeState(c1)).toEqual(r1);
    await unchanged();
    const loaded = await facet.loadSession({ kind: 'full_graph' });
    expect(loaded?.headRevision).toBe(2);
    expect(loaded?.config).toEqual({ v: 2 });
    expect(loaded?.tokenLedger).toEqual([usage('turn', 'm', 5)]);
  });

  test('a different hash for a stamped turn is RuntimeTurnCommitConflict and writes nothing', async (ctx) => {
    const f = await b.fresh(ctx);
    const S = sid('conflict');
    const lease = await acquire(f.store, S);
    const facet = f.store.session(S);
    await facet.commitRuntimeState(stamped(baseCommit(S, lease, { config: { v: 1 } }), 'turn-1'));
    const unchanged = await freeze(f, [S]);
    const c2 = stamped(baseCommit(S, lease, { config: { v: 2 }, usageDeltas: [usage('turn', 'm', 1)] }), 'turn-1');
    await expectStoreError(facet.commitRuntimeState(c2), 'RuntimeTurnCommitConflict', {
      sessionId: S,
      turnId: 'turn-1',
    });
    // A stamp whose hash string is simply wrong for the commit is still just compared.
    const c3 = {
      ...baseCommit(S, lease, { config: { v: 1 } }),
      turnCommit: { sessionId: S, turnId: 'turn-1', turnCommitHash: 'not-the-hash' },
    };
    await expectStoreError(facet.commitRuntimeState(c3), 'RuntimeTurnCommitConflict', {
      sessionId: S,
      turnId: 'turn-1',
    });
    await unchanged();
  });

  test('a stamp whose sessionId differs from the commit is RuntimeTurnCommitConflict, even with a valid fence', async (ctx) => {
    const f = await b.fresh(ctx);
    const S = sid('stamp-session');
    const lease = await acquire(f.store, S);
    const unchanged = await freeze(f, [S]);
    const c = baseCommit(S, lease);
    const commit = { ...c, turnCommit: { sessionId: 'not-s', turnId: 'turn-9', turnCommitHash: turnCommitHash(c) } };
    await expectStoreError(f.store.session(S).commitRuntimeState(commit), 'RuntimeTurnCommitConflict', {
      sessionId: S,
      turnId: 'turn-9',
    });
    await unchanged();
  });

  test('stamps are per session: the same turn id in another session is independent', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const S1 = sid('stamp-a');
    const S2 = sid('stamp-b');
    const l1 = await acquire(store, S1);
    const l2 = await acquire(store, S2);
    await store.session(S1).commitRuntimeState(stamped(baseCommit(S1, l1, { config: 'one' }), 'turn-1'));
    const r2 = await store.session(S2).commitRuntimeState(stamped(baseCommit(S2, l2, { config: 'two' }), 'turn-1'));
    expect(r2.headRevision).toBe(1);
    expect((await store.session(S2).loadSession({ kind: 'full_graph' }))?.config).toBe('two');
  });

  test('different turn ids in one session each get their own stamp', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const S = sid('stamp-turns');
    const lease = await acquire(store, S);
    const facet = store.session(S);
    const c1 = stamped(baseCommit(S, lease, { config: 1 }), 't1');
    const c2 = stamped(baseCommit(S, lease, { config: 2 }), 't2');
    const r1 = await facet.commitRuntimeState(c1);
    const r2 = await facet.commitRuntimeState(c2);
    expect([r1.headRevision, r2.headRevision]).toEqual([1, 2]);
    expect(await facet.commitRuntimeState(c1)).toEqual(r1);
    expect(await facet.commitRuntimeState(c2)).toEqual(r2);
  });
});

describeBackends('head revision and CAS (SPEC 6.1, 6.2 step 4)', (b) => {
  test('headRevision starts at 1 and increments; CAS conflicts report expected and actual', async (ctx) => {
    const f = await b.fresh(ctx);
    const S = sid('cas');
    const lease = await acquire(f.store, S);
    const facet = f.store.session(S);
    await expectStoreError(
      facet.commitRuntimeState(baseCommit(S, lease, { expectedHeadRevision: 1 })),
      'HeadRevisionConflict',
      { expected: 1, actual: 0 },
    );
    expect(await facet.loadSession({ kind: 'full_graph' })).toBeNull();
    expect((await facet.commitRuntimeState(baseCommit(S, lease, { expectedHeadRevision: 0 }))).headRevision).toBe(1);
    const unchanged = await freeze(f, [S]);
    await expectStoreError(
      facet.commitRuntimeState(baseCommit(S, lease, { expectedHeadRevision: 0, config: 'x' })),
      'HeadRevisionConflict',
      { expected: 0, actual: 1 },
    );
    await expectStoreError(
      facet.commitRuntimeState(baseCommit(S, lease, { expectedHeadRevision: 2, config: 'x' })),
      'HeadRevisionConflict',
      { expected: 2, actual: 1 },
    );
    await unchanged();
    expect((await facet.commitRuntimeState(baseCommit(S, lease, { expectedHeadRevision: 1 }))).headRevision).toBe(2);
    // Without expectedHeadRevision there is no compare-and-set.
    expect((await facet.commitRuntimeState(baseCommit(S, lease))).headRevision).toBe(3);
    const loaded = await facet.loadSession({ kind: 'full_graph' });
    expect(loaded?.headRevision).toBe(3);
    expect(loaded?.sessionId).toBe(S);
  });

  test('the head fields are the last commit’s', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const S = sid('head-fields');
    const lease = await acquire(store, S);
    const facet = store.session(S);
    await facet.commitRuntimeState(
      baseCommit(S, lease, { config: { a: 1 }, agentFrames: [{ f: 1 }], currentAgentFrameId: 'fa' }),
    );
    await facet.commitRuntimeState(
      baseCommit(S, lease, { config: { b: 2 }, agentFrames: [{ f: 2 }, { f: 3 }], currentAgentFrameId: 'fb' }),
    );
    const loaded = await facet.loadSession({ kind: 'full_graph' });
    expect(loaded).not.toBeNull();
    expect(loaded?.sessionId).toBe(S);
    expect(loaded?.headRevision).toBe(2);
    expect(loaded?.config).toEqual({ b: 2 });
    expect(loaded?.agentFrames).toEqual([{ f: 2 }, { f: 3 }]);
    expect(loaded?.currentAgentFrameId).toBe('fb');
  });
});

describeBackends('queued-work completions (SPEC 6.2 step 5)', (b) => {
  test('a non-empty completedQueueClaims is QueuedWorkClaimSuperseded with the first claim', async (ctx) => {
    const f = await b.fresh(ctx);
    const S = sid('queue');
    const lease = await acquire(f.store, S);
    const facet = f.store.session(S);
    const unchanged = await freeze(f, [S]);
    await expectStoreError(
      facet.commitRuntimeState(
        baseCommit(S, lease, {
          completedQueueClaims: [
            { sessionId: S, claimId: 'qc-1', leaseToken: 't1', batchIds: ['b'] },
            { sessionId: S, claimId: 'qc-2', leaseToken: 't2', batchIds: ['c'] },
          ],
        }),
      ),
      'QueuedWorkClaimSuperseded',
      { sessionId: S, claimId: 'qc-1' },
    );
    await unchanged();
    expect((await facet.commitRuntimeState(baseCommit(S, lease, { completedQueueClaims: [] }))).headRevision).toBe(1);
  });
});

describeBackends('turn-input completions (SPEC 3.4, 6.2 step 6, T8)', (b) => {
  test('completing a claim settles its rows as completed', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const S = sid('complete');
    const a = await enqueue(store, S, nt('a', { sourceKey: 'k:a' }));
    const c = await enqueue(store, S, nt('c', { sourceKey: 'k:c' }));
    const lease = await acquire(store, S);
    const k = await claimNext(store, lease, { maxInputs: 1 });
    expect(ids(k?.inputs ?? [])).toEqual([a.inputId]);
    if (!k) throw new Error('no claim');
    const r = await store
      .session(S)
      .commitRuntimeState(baseCommit(S, lease, { completedTurnInputClaims: completions(k) }));
    expect(r.headRevision).toBe(1);
    const row = await peek(store, S, nt('a', { sourceKey: 'k:a' }));
    expect(row.state).toBe('completed');
    expect(row.enqueueSeq).toBe(a.enqueueSeq);
    expect(ids(await store.listPendingTurnInputs(S))).toEqual([c.inputId]);
    const cancel = await store.cancelPendingTurnInput(S, a.inputId);
    expect(cancel.outcome).toBe('already_completed');
    // A completed claim cannot be completed again: its rows no longer carry it.
    await expectStoreError(
      store.session(S).commitRuntimeState(baseCommit(S, lease, { completedTurnInputClaims: completions(k) })),
      'TurnInputClaimSuperseded',
      { sessionId: S, claimId: k.claimId },
    );
  });

  test('superseded completions: wrong session, unknown input, wrong token, partial list, abandoned', async (ctx) => {
    const f = await b.fresh(ctx);
    const { store } = f;
    const S = sid('superseded');
    await enqueue(store, S, nt('a'));
    await enqueue(store, S, nt('b'));
    await enqueue(store, S, nt('c'));
    const lease = await acquire(store, S);
    const k = await claimNext(store, lease, { maxInputs: 2 });
    if (!k) throw new Error('no claim');
    const good = claimCompletion(k);
    const facet = store.session(S);
    const unchanged = await freeze(f, [S, 'other-session']);
    const cases = [
      { completion: { ...good, sessionId: 'other-session' }, sessionId: 'other-session' },
      { completion: { ...good, inputIds: [...good.inputIds, 'ghost-input'] }, sessionId: S },
      { completion: { ...good, leaseToken: `${good.leaseToken}-wrong` }, sessionId: S },
      { completion: { ...good, claimId: 'tic:1:9' }, sessionId: S },
      // An unlisted row carries the claim.
      { completion: { ...good, inputIds: [good.inputIds[0]] }, sessionId: S },
    ];
    for (const { completion, sessionId } of cases) {
      await expectStoreError(
        facet.commitRuntimeState(baseCommit(S, lease, { completedTurnInputClaims: [completion] })),
        'TurnInputClaimSuperseded',
        { sessionId, claimId: completion.claimId },
      );
    }
    await unchanged();
    await store.abandonTurnInputClaim(k);
    await expectStoreError(
      facet.commitRuntimeState(baseCommit(S, lease, { completedTurnInputClaims: [good] })),
      'TurnInputClaimSuperseded',
      { sessionId: S, claimId: k.claimId },
    );
    expect(await facet.loadSession({ kind: 'full_graph' })).toBeNull();
    expect((await store.listPendingTurnInputs(S)).map((r) => r.input)).toEqual([
      { text: 'a' },
      { text: 'b' },
      { text: 'c' },
    ]);
  });

  test('completions are checked in array order: the first failing one is reported', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const S = sid('completion-order');
    await enqueue(store, S, nt('a'));
    await enqueue(store, S, nt('b'));
    const lease = await acquire(store, S);
    const k1 = await claimNext(store, lease, { maxInputs: 1 });
    const k2 = await claimNext(store, lease, { maxInputs: 1 });
    if (!k1 || !k2) throw new Error('no claim');
    const bad1 = { ...claimCompletion(k2), leaseToken: 'wrong-1' };
    const bad2 = { ...claimCompletion(k1), claimId: 'tic:7:7' };
    await expectStoreError(
      store
        .session(S)
        .commitRuntimeState(baseCommit(S, lease, { completedTurnInputClaims: [claimCompletion(k1), bad1, bad2] })),
      'TurnInputClaimSuperseded',
      { sessionId: S, claimId: k2.claimId },
    );
    // Both valid together succeed.
    const r = await store
      .session(S)
      .commitRuntimeState(baseCommit(S, lease, { completedTurnInputClaims: completions(k1, k2) }));
    expect(r.headRevision).toBe(1);
    expect(await store.listPendingTurnInputs(S)).toEqual([]);
  });

  test('completion checks ownership, not liveness: an expired stall deadline and a dead generation still complete', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const S = sid('ownership');
    const n1 = await enqueue(store, S, nt('n1', { sourceKey: 'k:n1' }));
    const l1 = await acquire(store, S, O('w1'));
    // Stall deadline already over (leaseTtlMs 0).
    const k = await claimNext(store, l1, { leaseTtlMs: 0 });
    if (!k) throw new Error('no claim');
    expect(k.expiresAtEpochMs).toBe(k.claimedAtEpochMs);
    // The generation ends; a next-turn row is not requeued by T9 and still carries the claim.
    await store.releaseSessionExecutionLease(leaseCompletion(l1));
    const l2 = await acquire(store, S, O('w2'));
    expect(l2.fencingToken).toBe(2);
    const r = await store
      .session(S)
      .commitRuntimeState(baseCommit(S, l2, { completedTurnInputClaims: completions(k) }));
    expect(r.headRevision).toBe(1);
    expect((await peek(store, S, nt('n1', { sourceKey: 'k:n1' }))).state).toBe('completed');
    expect(n1.state).toBe('deferred_next_turn');
  });

  test("with 'keep', a dead generation's accepted active claim is completed by the next generation", async (ctx) => {
    const { store } = await b.fresh(ctx, { strandedTurnInputs: 'keep' });
    const S = sid('keep-complete');
    await enqueue(store, S, at('t1', 'after_work', 'x', { sourceKey: 'k:x' }));
    const l1 = await acquire(store, S, O('w1'));
    const k = await claimActive(store, l1, 't1', 'after_work');
    if (!k) throw new Error('no claim');
    expect(k.inputs[0].state).toBe('accepted');
    await store.releaseSessionExecutionLease(leaseCompletion(l1));
    const l2 = await acquire(store, S, O('w2'));
    const r = await store
      .session(S)
      .commitRuntimeState(baseCommit(S, l2, { completedTurnInputClaims: completions(k) }));
    expect(r.headRevision).toBe(1);
    expect((await peek(store, S, at('t1', 'after_work', 'x', { sourceKey: 'k:x' }))).state).toBe('completed');
  });
});

describeBackends('interrupt deferral (SPEC 6.3 step 6, T10)', (b) => {
  test('only pending_active rows of the turn in this session are deferred, in place', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const S = sid('interrupt');
    const S2 = sid('interrupt-other');
    const n0 = await enqueue(store, S, nt('n0', { sourceKey: 'k:n0' }));
    const acc = await enqueue(store, S, at('t1', 'after_work', 'acc', { sourceKey: 'k:acc' }));
    const a1 = await enqueue(store, S, at('t1', 'after_work', 'a1', { sourceKey: 'k:a1' }));
    const n2 = await enqueue(store, S, nt('n2', { sourceKey: 'k:n2' }));
    const a2 = await enqueue(store, S, at('t1', 'before_completion', 'a2', { sourceKey: 'k:a2' }));
    const o1 = await enqueue(store, S, at('t2', undefined, 'o1', { sourceKey: 'k:o1' }));
    const dead = await enqueue(store, S, at('t1', 'after_work', 'dead', { sourceKey: 'k:dead' }));
    await store.cancelPendingTurnInput(S, dead.inputId);
    const elsewhere = await enqueue(store, S2, at('t1', 'after_work', 'elsewhere', { sourceKey: 'k:e' }));
    const lease = await acquire(store, S);
    const k = await claimActive(store, lease, 't1', 'after_work', { maxInputs: 1 });
    expect(ids(k?.inputs ?? [])).toEqual([acc.inputId]);
    await store.session(S).commitRuntimeState(baseCommit(S, lease, { interruptedTurnInputTurnId: 't1' }));
    const list = await store.listPendingTurnInputs(S);
    expect(ids(list)).toEqual([n0.inputId, a1.inputId, n2.inputId, a2.inputId, o1.inputId]);
    const byId = new Map(list.map((r) => [r.inputId, r]));
    for (const r of [a1, a2]) {
      const row = byId.get(r.inputId);
      expect(row?.state).toBe('deferred_next_turn');
      expect(row?.ingress).toEqual({ scope: 'next_turn' });
      expect(row?.enqueueSeq).toBe(r.enqueueSeq);
      expect(row?.input).toEqual(r.input);
    }
    expect(byId.get(o1.inputId)?.state).toBe('pending_active');
    expect(byId.get(o1.inputId)?.ingress).toEqual({ scope: 'active_turn', turnId: 't2', minBoundary: 'after_work' });
    // The accepted row keeps its claim.
    const accCancel = await store.cancelPendingTurnInput(S, acc.inputId);
    expect(accCancel.outcome).toBe('already_claimed');
    if (accCancel.outcome === 'already_claimed') {
      expect(accCancel.input.state).toBe('accepted');
      expect(accCancel.claim?.claimId).toBe(k?.claimId);
    }
    // The tombstone stays cancelled; the other session's row of 't1' is untouched.
    expect((await peek(store, S, at('t1', 'after_work', 'dead', { sourceKey: 'k:dead' }))).state).toBe('cancelled');
    const other = await peek(store, S2, at('t1', 'after_work', 'elsewhere', { sourceKey: 'k:e' }));
    expect(other.state).toBe('pending_active');
    expect(other.ingress).toEqual(elsewhere.ingress);
    // A next-turn claim returns the deferred rows with the other next-turn rows, in seq order.
    const next = await claimNext(store, lease);
    expect(ids(next?.inputs ?? [])).toEqual([n0.inputId, a1.inputId, n2.inputId, a2.inputId]);
    // The original ingress is kept for source-key replays (SPEC 3.5 notes).
    const replay = await peek(store, S, at('t1', 'after_work', 'a1', { sourceKey: 'k:a1' }));
    expect(replay.inputId).toBe(a1.inputId);
    expect(replay.ingress).toEqual({ scope: 'next_turn' });
  });

  test('an interrupt for a turn without pending input is a no-op on inputs', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const S = sid('interrupt-empty');
    const p = await enqueue(store, S, at('t1', 'after_work', 'p'));
    const lease = await acquire(store, S);
    const r = await store.session(S).commitRuntimeState(baseCommit(S, lease, { interruptedTurnInputTurnId: 'nope' }));
    expect(r.headRevision).toBe(1);
    expect(await store.listPendingTurnInputs(S)).toEqual([p]);
  });
});

describeBackends('turn stamps and active input (SPEC 3.5 T3, T6)', (b) => {
  test('T3: active input for an already stamped turn is stored as deferred next_turn', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const S = sid('t3');
    const S2 = sid('t3-other');
    const before = await enqueue(store, S, at('t1', 'before_completion', 'before'));
    expect(before.state).toBe('pending_active');
    const lease = await acquire(store, S);
    await store.session(S).commitRuntimeState(stamped(baseCommit(S, lease), 't1'));
    const late = await enqueue(store, S, at('t1', 'after_work', 'late', { sourceKey: 'k:late' }));
    expect(late.state).toBe('deferred_next_turn');
    expect(late.ingress).toEqual({ scope: 'next_turn' });
    expect(late.enqueueSeq).toBe(before.enqueueSeq + 1);
    // A replay of the original draft matches the original ingress.
    const replay = await enqueue(store, S, at('t1', 'after_work', 'late', { sourceKey: 'k:late' }));
    expect(replay).toEqual(late);
    // Another turn, and the same turn in another session, are not stamped.
    expect((await enqueue(store, S, at('t2', 'after_work', 'x'))).state).toBe('pending_active');
    expect((await enqueue(store, S2, at('t1', 'after_work', 'y'))).state).toBe('pending_active');
    // The earlier row is untouched by the stamp itself.
    expect((await store.listPendingTurnInputs(S)).find((r) => r.inputId === before.inputId)?.state).toBe(
      'pending_active',
    );
  });

  test('T6: abandoning an accepted active claim returns it to pending_active before the stamp', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const S = sid('t6-before');
    const x = await enqueue(store, S, at('t1', 'after_work', 'x'));
    const lease = await acquire(store, S);
    const k = await claimActive(store, lease, 't1', 'after_work');
    if (!k) throw new Error('no claim');
    await store.abandonTurnInputClaim(k);
    const list = await store.listPendingTurnInputs(S);
    expect(list).toHaveLength(1);
    expect(list[0].state).toBe('pending_active');
    expect(list[0].ingress).toEqual({ scope: 'active_turn', turnId: 't1', minBoundary: 'after_work' });
    expect(list[0].enqueueSeq).toBe(x.enqueueSeq);
  });

  test('T6: abandoning an accepted active claim after its turn was stamped defers it to the next turn', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const S = sid('t6-after');
    const first = await enqueue(store, S, nt('first'));
    const x = await enqueue(store, S, at('t1', 'after_work', 'x'));
    const lease = await acquire(store, S);
    const k = await claimActive(store, lease, 't1', 'after_work');
    if (!k) throw new Error('no claim');
    // The turn's final commit stamps t1 without completing the claim.
    await store.session(S).commitRuntimeState(stamped(baseCommit(S, lease), 't1'));
    await store.abandonTurnInputClaim(k);
    const list = await store.listPendingTurnInputs(S);
    expect(ids(list)).toEqual([first.inputId, x.inputId]);
    expect(list[1].state).toBe('deferred_next_turn');
    expect(list[1].ingress).toEqual({ scope: 'next_turn' });
    expect(list[1].enqueueSeq).toBe(x.enqueueSeq);
    const next = await claimNext(store, lease);
    expect(ids(next?.inputs ?? [])).toEqual([first.inputId, x.inputId]);
  });
});

describeBackends('graph writes and reads (SPEC 6.3 step 3, 6.5, 6.6)', (b) => {
  test('loadSession is null before the first commit (meta, inputs, leases and rejected commits do not count)', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const S = sid('null-head');
    const facet = store.session(S);
    expect(await facet.loadSession({ kind: 'full_graph' })).toBeNull();
    expect(await facet.loadSession({ kind: 'active_path' })).toBeNull();
    await facet.saveSessionMeta({
      sessionId: S,
      sessionName: 'n',
      createdAt: '2024-01-01',
      model: 'm',
      relation: { kind: 'root' },
    });
    await enqueue(store, S, nt('x'));
    const lease = await acquire(store, S);
    await expectStoreError(
      facet.commitRuntimeState(baseCommit(S, lease, { expectedHeadRevision: 3 })),
      'HeadRevisionConflict',
      { expected: 3, actual: 0 },
    );
    expect(await facet.loadSession({ kind: 'full_graph' })).toBeNull();
    expect(await facet.loadSession({ kind: 'active_path', leafNodeId: 'x' })).toBeNull();
    expect(await facet.loadNode('x')).toBeNull();
  });

  test('full_graph returns nodes in insertion order; append adds after; the leaf follows the delta', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const S = sid('full');
    const lease = await acquire(store, S);
    const facet = store.session(S);
    await facet.commitRuntimeState(
      baseCommit(S, lease, {
        graph: { kind: 'replace_full', graph: { nodes: [node('z'), node('a', 'z'), node('m', 'a')], leafNodeId: 'm' } },
      }),
    );
    let g = (await facet.loadSession({ kind: 'full_graph' }))?.graph;
    expect(g?.nodes).toEqual([node('z'), node('a', 'z'), node('m', 'a')]);
    expect(g?.leafNodeId).toBe('m');
    await facet.commitRuntimeState(
      baseCommit(S, lease, { graph: { kind: 'append', nodes: [node('c', 'm'), node('b', 'c')], leafNodeId: 'b' } }),
    );
    g = (await facet.loadSession({ kind: 'full_graph' }))?.graph;
    expect(g?.nodes.map((n) => n.nodeId)).toEqual(['z', 'a', 'm', 'c', 'b']);
    expect(g?.leafNodeId).toBe('b');
    // unchanged with a leaf sets it; no node writes.
    await facet.commitRuntimeState(baseCommit(S, lease, { graph: { kind: 'unchanged', leafNodeId: 'a' } }));
    g = (await facet.loadSession({ kind: 'full_graph' }))?.graph;
    expect(g?.nodes.map((n) => n.nodeId)).toEqual(['z', 'a', 'm', 'c', 'b']);
    expect(g?.leafNodeId).toBe('a');
    // unchanged without a leaf clears it.
    await facet.commitRuntimeState(baseCommit(S, lease, { graph: { kind: 'unchanged' } }));
    g = (await facet.loadSession({ kind: 'full_graph' }))?.graph;
    expect(g?.nodes).toHaveLength(5);
    expect(keysOf(g)).toEqual(['nodes']);
    // append without a leaf also clears it.
    await facet.commitRuntimeState(baseCommit(S, lease, { graph: { kind: 'unchanged', leafNodeId: 'z' } }));
    await facet.commitRuntimeState(baseCommit(S, lease, { graph: { kind: 'append', nodes: [node('d', 'b')] } }));
    g = (await facet.loadSession({ kind: 'full_graph' }))?.graph;
    expect(g?.nodes.map((n) => n.nodeId)).toEqual(['z', 'a', 'm', 'c', 'b', 'd']);
    expect(g?.leafNodeId).toBeUndefined();
    expect(keysOf(g)).toEqual(['nodes']);
    // A leaf naming no node is stored as given (the store never checks).
    await facet.commitRuntimeState(baseCommit(S, lease, { graph: { kind: 'unchanged', leafNodeId: 'nowhere' } }));
    expect((await facet.loadSession({ kind: 'full_graph' }))?.graph.leafNodeId).toBe('nowhere');
    const path = (await facet.loadSession({ kind: 'active_path' }))?.graph;
    expect(path).toEqual({ nodes: [], leafNodeId: 'nowhere' });
  });

  test('appending an existing node id is InvalidInput and writes nothing', async (ctx) => {
    const f = await b.fresh(ctx);
    const S = sid('append-dup');
    const lease = await acquire(f.store, S);
    const facet = f.store.session(S);
    await facet.commitRuntimeState(
      baseCommit(S, lease, { graph: { kind: 'replace_full', graph: { nodes: [node('root'), node('left', 'root')] } } }),
    );
    const unchanged = await freeze(f, [S]);
    await expectInvalidNaming(
      facet.commitRuntimeState(
        baseCommit(S, lease, {
          config: 'changed',
          usageDeltas: [usage('turn', 'm', 1)],
          checkpoint: { turnState: 'changed', toolState: { x: 1 } },
          graph: { kind: 'append', nodes: [node('fresh', 'left'), node('left', 'root')], leafNodeId: 'fresh' },
        }),
      ),
      'graph.nodes',
    );
    await unchanged();
    expect(await facet.loadNode('fresh')).toBeNull();
    expect((await facet.loadSession({ kind: 'full_graph' }))?.headRevision).toBe(1);
  });

  test('replace_full deletes every old node and frees their ids', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const S = sid('replace');
    const lease = await acquire(store, S);
    const facet = store.session(S);
    await facet.commitRuntimeState(
      baseCommit(S, lease, {
        graph: { kind: 'replace_full', graph: { nodes: [node('a'), node('b', 'a', { x: 1 })], leafNodeId: 'b' } },
      }),
    );
    await facet.commitRuntimeState(
      baseCommit(S, lease, { graph: { kind: 'replace_full', graph: { nodes: [node('c')], leafNodeId: 'c' } } }),
    );
    expect(await facet.loadNode('a')).toBeNull();
    expect(await facet.loadNode('b')).toBeNull();
    expect((await facet.loadSession({ kind: 'full_graph' }))?.graph).toEqual({ nodes: [node('c')], leafNodeId: 'c' });
    // The freed ids can be appended again, with new content.
    await facet.commitRuntimeState(
      baseCommit(S, lease, { graph: { kind: 'append', nodes: [node('a', 'c', { again: true })], leafNodeId: 'a' } }),
    );
    expect((await facet.loadSession({ kind: 'full_graph' }))?.graph.nodes).toEqual([
      node('c'),
      node('a', 'c', { again: true }),
    ]);
    expect(await facet.loadNode('a')).toEqual(node('a', 'c', { again: true }));
    // replace_full with no nodes and no leaf empties the graph.
    await facet.commitRuntimeState(baseCommit(S, lease, { graph: { kind: 'replace_full', graph: { nodes: [] } } }));
    expect((await facet.loadSession({ kind: 'full_graph' }))?.graph).toEqual({ nodes: [] });
    expect(await facet.loadNode('c')).toBeNull();
  });

  test('active_path follows parents root first; scope leaf overrides the head leaf', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const S = sid('path');
    const lease = await acquire(store, S);
    const facet = store.session(S);
    const root = node('root');
    const left = node('left', 'root');
    const leftLeaf = node('leftLeaf', 'left');
    const rightLeaf = node('rightLeaf', 'root');
    await facet.commitRuntimeState(
      baseCommit(S, lease, {
        graph: { kind: 'replace_full', graph: { nodes: [root, left, leftLeaf, rightLeaf], leafNodeId: 'leftLeaf' } },
      }),
    );
    expect((await facet.loadSession({ kind: 'active_path' }))?.graph).toEqual({
      nodes: [root, left, leftLeaf],
      leafNodeId: 'leftLeaf',
    });
    expect((await facet.loadSession({ kind: 'active_path', leafNodeId: 'rightLeaf' }))?.graph).toEqual({
      nodes: [root, rightLeaf],
      leafNodeId: 'rightLeaf',
    });
    expect((await facet.loadSession({ kind: 'active_path', leafNodeId: 'left' }))?.graph).toEqual({
      nodes: [root, left],
      leafNodeId: 'left',
    });
    expect((await facet.loadSession({ kind: 'active_path', leafNodeId: 'ghost' }))?.graph).toEqual({
      nodes: [],
      leafNodeId: 'ghost',
    });
    // With no leaf at all: nodes [] and no leafNodeId.
    await facet.commitRuntimeState(baseCommit(S, lease, { graph: { kind: 'unchanged' } }));
    const none = (await facet.loadSession({ kind: 'active_path' }))?.graph;
    expect(none).toEqual({ nodes: [] });
    expect(keysOf(none)).toEqual(['nodes']);
  });

  test('active_path stops at a missing ancestor and at a cycle', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const S = sid('path-edges');
    const lease = await acquire(store, S);
    const facet = store.session(S);
    const orphan = node('orphan', 'missing-parent');
    const child = node('child', 'orphan');
    const x = node('x', 'y');
    const y = node('y', 'x');
    const self = node('self', 'self');
    await facet.commitRuntimeState(
      baseCommit(S, lease, {
        graph: { kind: 'replace_full', graph: { nodes: [orphan, child, x, y, self], leafNodeId: 'child' } },
      }),
    );
    expect((await facet.loadSession({ kind: 'active_path' }))?.graph).toEqual({
      nodes: [orphan, child],
      leafNodeId: 'child',
    });
    // Walk x -> y -> x (visited): stop. Root first means the reverse of the walk.
    expect((await facet.loadSession({ kind: 'active_path', leafNodeId: 'x' }))?.graph).toEqual({
      nodes: [y, x],
      leafNodeId: 'x',
    });
    expect((await facet.loadSession({ kind: 'active_path', leafNodeId: 'self' }))?.graph).toEqual({
      nodes: [self],
      leafNodeId: 'self',
    });
  });

  test('loadNode returns the node verbatim (extra fields included), or null', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const S = sid('load-node');
    const S2 = sid('load-node-other');
    const lease = await acquire(store, S);
    const rich: SessionNodeRecord = {
      nodeId: 'rich',
      timestamp: '2024-05-06T07:08:09.123Z',
      role: 'assistant',
      parts: [{ kind: 'text', content: 'hé 😀', pruneState: 'live', id: 'p1' }],
      emptyArr: [],
      emptyObj: {},
      nested: { deep: [[], {}, null, 0.1, 1e21, -7] },
      flag: false,
    };
    const plain = node('plain');
    await store
      .session(S)
      .commitRuntimeState(baseCommit(S, lease, { graph: { kind: 'replace_full', graph: { nodes: [plain, rich] } } }));
    const loaded = await store.session(S).loadNode('rich');
    expect(loaded).toEqual(JSON.parse(JSON.stringify(rich)));
    expect(keysOf(loaded)).toEqual(keysOf(rich));
    expect(Array.isArray((loaded as Record<string, unknown>).emptyArr)).toBe(true);
    const p = await store.session(S).loadNode('plain');
    expect(p).toEqual(plain);
    expect(keysOf(p)).toEqual(['nodeId', 'timestamp']);
    expect(await store.session(S).loadNode('nope')).toBeNull();
    expect(await store.session(S2).loadNode('rich')).toBeNull();
    // A fresh copy each time.
    (loaded as Record<string, unknown>).flag = true;
    expect((await store.session(S).loadNode('rich'))?.flag).toBe(false);
  });
});

describeBackends('checkpoint blobs and manifest (SPEC 6.3 steps 1, 10)', (b) => {
  test('snapshots are stored content-addressed; the manifest and checkpointRef follow SPEC', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const S = sid('cp');
    const lease = await acquire(store, S);
    const facet = store.session(S);
    const toolState = { b: 1, a: [1, { d: null, c: 'x' }] };
    const pluginSnapshot = { plugins: ['p'], empty: {} };
    const bytes = new Uint8Array([0, 1, 2, 254, 255, 0, 128]);
    const r = await facet.commitRuntimeState(
      baseCommit(S, lease, {
        checkpoint: {
          turnState: { step: 3, list: [] },
          toolState,
          toolStateRef: 'ignored-because-snapshot-present',
          pluginSnapshot,
          pluginSnapshotRevision: 4,
          executionState: bytes,
          executionStateRef: 'also-ignored',
        },
      }),
    );
    const toolRef = sha('{"a":[1,{"c":"x","d":null}],"b":1}');
    expect(jsonRef(toolState)).toBe(toolRef);
    const expectedManifest = {
      schemaVersion: 1,
      turnState: { step: 3, list: [] },
      toolStateRef: toolRef,
      pluginSnapshotRef: jsonRef(pluginSnapshot),
      pluginSnapshotRevision: 4,
      executionStateRef: sha(bytes),
    };
    expect(r.headRevision).toBe(1);
    expect(r.manifest).toEqual(expectedManifest);
    expect(keysOf(r.manifest)).toEqual(keysOf(expectedManifest));
    expect(r.checkpointRef).toBe(jsonRef(expectedManifest));
    expect(r.checkpointRef).toMatch(/^[0-9a-f]{64}$/);
    const loaded = await facet.loadSession({ kind: 'full_graph' });
    expect(loaded?.checkpointRef).toBe(r.checkpointRef);
    expect(loaded?.checkpoint).toEqual({
      turnState: { step: 3, list: [] },
      toolStateRef: toolRef,
      toolState,
      pluginSnapshotRef: jsonRef(pluginSnapshot),
      pluginSnapshot,
      pluginSnapshotRevision: 4,
      executionStateRef: sha(bytes),
      executionState: bytes,
    });
  });

  test('the manifest omits absent fields and keeps pluginSnapshotRevision (including 0)', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const S = sid('cp-omit');
    const lease = await acquire(store, S);
    const facet = store.session(S);
    const r1 = await facet.commitRuntimeState(baseCommit(S, lease, { checkpoint: { turnState: null } }));
    expect(r1.manifest).toEqual({ schemaVersion: 1, turnState: null });
    expect(keysOf(r1.manifest)).toEqual(['schemaVersion', 'turnState']);
    expect(r1.checkpointRef).toBe(sha('{"schemaVersion":1,"turnState":null}'));
    const l1 = await facet.loadSession({ kind: 'full_graph' });
    expect(l1?.checkpointRef).toBe(r1.checkpointRef);
    expect(keysOf(l1?.checkpoint)).toEqual(['turnState']);
    const r2 = await facet.commitRuntimeState(
      baseCommit(S, lease, { checkpoint: { turnState: [], pluginSnapshotRevision: 0 } }),
    );
    expect(r2.manifest).toEqual({ schemaVersion: 1, turnState: [], pluginSnapshotRevision: 0 });
    expect(keysOf(r2.manifest)).toEqual(['pluginSnapshotRevision', 'schemaVersion', 'turnState']);
    expect(r2.checkpointRef).toBe(sha('{"pluginSnapshotRevision":0,"schemaVersion":1,"turnState":[]}'));
    const l2 = await facet.loadSession({ kind: 'full_graph' });
    expect(l2?.checkpoint).toEqual({ turnState: [], pluginSnapshotRevision: 0 });
    expect(keysOf(l2?.checkpoint)).toEqual(['pluginSnapshotRevision', 'turnState']);
    expect(Array.isArray(l2?.checkpoint?.turnState)).toBe(true);
  });

  test('a refs-only commit still loads full snapshots; executionState round-trips byte-exact', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const S = sid('cp-refs');
    const lease = await acquire(store, S);
    const facet = store.session(S);
    const all = new Uint8Array(256);
    for (let i = 0; i < 256; i++) all[i] = 255 - i;
    const r1 = await facet.commitRuntimeState(
      baseCommit(S, lease, {
        checkpoint: {
          turnState: 1,
          toolState: { t: [] },
          pluginSnapshot: { p: {} },
          executionState: Buffer.from(all),
        },
      }),
    );
    expect(r1.manifest.executionStateRef).toBe(sha(all));
    const r2 = await facet.commitRuntimeState(
      baseCommit(S, lease, {
        checkpoint: {
          turnState: 2,
          toolStateRef: r1.manifest.toolStateRef,
          pluginSnapshotRef: r1.manifest.pluginSnapshotRef,
          executionStateRef: r1.manifest.executionStateRef,
        },
      }),
    );
    expect(r2.manifest).toEqual({
      schemaVersion: 1,
      turnState: 2,
      toolStateRef: r1.manifest.toolStateRef,
      pluginSnapshotRef: r1.manifest.pluginSnapshotRef,
      executionStateRef: r1.manifest.executionStateRef,
    });
    const loaded = await facet.loadSession({ kind: 'active_path' });
    expect(loaded?.checkpointRef).toBe(r2.checkpointRef);
    expect(loaded?.checkpoint?.toolState).toEqual({ t: [] });
    expect(loaded?.checkpoint?.pluginSnapshot).toEqual({ p: {} });
    const es = loaded?.checkpoint?.executionState;
    expect(es).toBeInstanceOf(Uint8Array);
    expect(Object.getPrototypeOf(es)).toBe(Uint8Array.prototype);
    expect(Array.from(es ?? [])).toEqual(Array.from(all));
    // Still valid a commit later: the head keeps referencing the blobs.
    const r3 = await facet.commitRuntimeState(
      baseCommit(S, lease, { checkpoint: { turnState: 3, executionStateRef: r1.manifest.executionStateRef } }),
    );
    expect(r3.headRevision).toBe(3);
    const es3 = (await facet.loadSession({ kind: 'full_graph' }))?.checkpoint?.executionState;
    expect(Array.from(es3 ?? [])).toEqual(Array.from(all));
  });

  test('an empty executionState is stored and returned as zero bytes', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const S = sid('cp-empty-bytes');
    const lease = await acquire(store, S);
    const facet = store.session(S);
    const r = await facet.commitRuntimeState(
      baseCommit(S, lease, { checkpoint: { turnState: null, executionState: new Uint8Array(0) } }),
    );
    expect(r.manifest.executionStateRef).toBe(sha(new Uint8Array(0)));
    const es = (await facet.loadSession({ kind: 'full_graph' }))?.checkpoint?.executionState;
    expect(es).toBeInstanceOf(Uint8Array);
    expect(es?.length).toBe(0);
  });

  test('a ref without its snapshot that names no blob is InvalidInput and writes nothing', async (ctx) => {
    const f = await b.fresh(ctx);
    const S = sid('cp-dangling');
    const lease = await acquire(f.store, S);
    const facet = f.store.session(S);
    const unchangedEmpty = await freeze(f, [S]);
    await expectInvalidNaming(
      facet.commitRuntimeState(baseCommit(S, lease, { checkpoint: { turnState: null, toolStateRef: 'bogus' } })),
      'checkpoint.toolStateRef',
    );
    await unchangedEmpty();
    await facet.commitRuntimeState(baseCommit(S, lease, { checkpoint: { turnState: null, toolState: { a: 1 } } }));
    const unchanged = await freeze(f, [S]);
    const dangling = sha('nothing stored under this');
    await expectInvalidNaming(
      facet.commitRuntimeState(baseCommit(S, lease, { checkpoint: { turnState: null, toolStateRef: dangling } })),
      'checkpoint.toolStateRef',
    );
    await expectInvalidNaming(
      facet.commitRuntimeState(
        baseCommit(S, lease, { checkpoint: { turnState: null, pluginSnapshotRef: sha('another missing blob') } }),
      ),
      'checkpoint.pluginSnapshotRef',
    );
    await expectInvalidNaming(
      facet.commitRuntimeState(baseCommit(S, lease, { checkpoint: { turnState: null, executionStateRef: dangling } })),
      'checkpoint.executionStateRef',
    );
    await unchanged();
  });

  test('blobs the head no longer references are collected (their refs become dangling)', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const S = sid('cp-gc');
    const lease = await acquire(store, S);
    const facet = store.session(S);
    const r1 = await facet.commitRuntimeState(
      baseCommit(S, lease, {
        checkpoint: { turnState: null, toolState: { gen: 1 }, executionState: new Uint8Array([1, 2, 3]) },
      }),
    );
    const r2 = await facet.commitRuntimeState(
      baseCommit(S, lease, { checkpoint: { turnState: null, toolState: { gen: 2 } } }),
    );
    expect(r2.manifest.toolStateRef).toBe(jsonRef({ gen: 2 }));
    expect(keysOf(r2.manifest)).toEqual(['schemaVersion', 'toolStateRef', 'turnState']);
    await expectInvalidNaming(
      facet.commitRuntimeState(
        baseCommit(S, lease, { checkpoint: { turnState: null, toolStateRef: r1.manifest.toolStateRef } }),
      ),
      'checkpoint.toolStateRef',
    );
    await expectInvalidNaming(
      facet.commitRuntimeState(
        baseCommit(S, lease, { checkpoint: { turnState: null, executionStateRef: r1.manifest.executionStateRef } }),
      ),
      'checkpoint.executionStateRef',
    );
    // The current one is still there.
    const r3 = await facet.commitRuntimeState(
      baseCommit(S, lease, { checkpoint: { turnState: null, toolStateRef: r2.manifest.toolStateRef } }),
    );
    expect(r3.headRevision).toBe(3);
    expect((await facet.loadSession({ kind: 'full_graph' }))?.checkpoint?.toolState).toEqual({ gen: 2 });
  });

  test('snapshot refs are per session', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const S1 = sid('cp-s1');
    const S2 = sid('cp-s2');
    const l1 = await acquire(store, S1);
    const l2 = await acquire(store, S2);
    const r1 = await store
      .session(S1)
      .commitRuntimeState(baseCommit(S1, l1, { checkpoint: { turnState: null, toolState: { only: 'in s1' } } }));
    await expectInvalidNaming(
      store
        .session(S2)
        .commitRuntimeState(
          baseCommit(S2, l2, { checkpoint: { turnState: null, toolStateRef: r1.manifest.toolStateRef } }),
        ),
      'checkpoint.toolStateRef',
    );
  });

  test('key order of a snapshot does not change its ref', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const S = sid('cp-order');
    const lease = await acquire(store, S);
    const facet = store.session(S);
    const r1 = await facet.commitRuntimeState(
      baseCommit(S, lease, { checkpoint: { turnState: null, toolState: { b: { y: 1, x: 2 }, a: 0 } } }),
    );
    const r2 = await facet.commitRuntimeState(
      baseCommit(S, lease, { checkpoint: { turnState: null, toolState: { a: 0, b: { x: 2, y: 1 } } } }),
    );
    expect(r2.manifest.toolStateRef).toBe(r1.manifest.toolStateRef);
    expect(r2.checkpointRef).toBe(r1.checkpointRef);
    expect(r1.manifest.toolStateRef).toBe(sha('{"a":0,"b":{"x":2,"y":1}}'));
  });
});

describeBackends('usage ledger (SPEC 6.3 step 2)', (b) => {
  test('groups by (source, model) in first-seen order; zero-total entries are dropped with their reasoning', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const S = sid('usage');
    const lease = await acquire(store, S);
    const facet = store.session(S);
    await facet.commitRuntimeState(baseCommit(S, lease));
    expect((await facet.loadSession({ kind: 'full_graph' }))?.tokenLedger).toEqual([]);
    await facet.commitRuntimeState(
      baseCommit(S, lease, {
        usageDeltas: [
          usage('ghost', 'm0', 0, 0, 0, 0, 50),
          usage('turn', 'm1', 1, 2, 3, 4, 5),
          usage('tool', 'm1', 0, 0, 0, 1, 0),
          usage('turn', 'm1', 10, 0, 0, 0, 1),
          usage('turn', 'm2', 0, 1),
        ],
      }),
    );
    expect((await facet.loadSession({ kind: 'full_graph' }))?.tokenLedger).toEqual([
      usage('turn', 'm1', 11, 2, 3, 4, 6),
      usage('tool', 'm1', 0, 0, 0, 1, 0),
      usage('turn', 'm2', 0, 1, 0, 0, 0),
    ]);
    await facet.commitRuntimeState(
      baseCommit(S, lease, {
        usageDeltas: [
          usage('turn', 'm2', 0, 0, 0, 0, 99),
          usage('new', 'm9', 0, 0, 1),
          usage('tool', 'm1', 1),
          usage('ghost', 'm0', 0, 0, 0, 0, 7),
        ],
      }),
    );
    expect((await facet.loadSession({ kind: 'active_path' }))?.tokenLedger).toEqual([
      usage('turn', 'm1', 11, 2, 3, 4, 6),
      usage('tool', 'm1', 1, 0, 0, 1, 0),
      usage('turn', 'm2', 0, 1, 0, 0, 0),
      usage('new', 'm9', 0, 0, 1, 0, 0),
    ]);
  });

  test('sums stay exact for large safe integers', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const S = sid('usage-big');
    const lease = await acquire(store, S);
    const facet = store.session(S);
    const big = 2 ** 50 + 3;
    await facet.commitRuntimeState(baseCommit(S, lease, { usageDeltas: [usage('s', 'm', big, 1_700_000_000_123)] }));
    await facet.commitRuntimeState(baseCommit(S, lease, { usageDeltas: [usage('s', 'm', big, 1)] }));
    expect((await facet.loadSession({ kind: 'full_graph' }))?.tokenLedger).toEqual([
      usage('s', 'm', 2 * big, 1_700_000_000_124),
    ]);
  });
});

describeBackends('payload round-trip (SPEC 2.2)', (b) => {
  const payload: JsonValue = {
    emptyArr: [],
    emptyObj: {},
    nested: [[], {}, [[]], { a: {} }],
    doubles: [0.1 + 0.2, 1 / 3, 5e-324, 1.7976931348623157e308, -2.5e-7, 123456789.12345679, 1e21],
    ints: [0, -1, 2 ** 53 - 1, -(2 ** 53 - 1), 1_700_000_000_123],
    unicode: 'héllo 漢字 😀 \u0000 \u001f \u2028 "q" \\ /',
    'key with spaces & ü': { '': 'empty key' },
    bools: [true, false, null],
  };
  const expected = JSON.parse(JSON.stringify(payload));

  test('config, agentFrames, turnState, snapshots and node extra fields round-trip exactly', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const S = sid('roundtrip');
    const lease = await acquire(store, S);
    const facet = store.session(S);
    const n: SessionNodeRecord = { nodeId: 'n', timestamp: 't', payload, list: [] };
    await facet.commitRuntimeState(
      baseCommit(S, lease, {
        config: payload,
        agentFrames: [payload, [], {}, 1.5, 'frame'],
        checkpoint: { turnState: payload, toolState: payload, pluginSnapshot: [payload] },
        graph: { kind: 'replace_full', graph: { nodes: [n], leafNodeId: 'n' } },
      }),
    );
    for (const scope of [{ kind: 'full_graph' as const }, { kind: 'active_path' as const }]) {
      const loaded = await facet.loadSession(scope);
      expect(loaded?.config).toEqual(expected);
      expect(loaded?.agentFrames).toEqual([expected, [], {}, 1.5, 'frame']);
      expect(Array.isArray(loaded?.agentFrames[1])).toBe(true);
      expect(loaded?.checkpoint?.turnState).toEqual(expected);
      expect(loaded?.checkpoint?.toolState).toEqual(expected);
      expect(loaded?.checkpoint?.pluginSnapshot).toEqual([expected]);
      expect(loaded?.graph.nodes).toEqual([{ nodeId: 'n', timestamp: 't', payload: expected, list: [] }]);
      const cfg = loaded?.config as Record<string, unknown>;
      expect(Array.isArray(cfg.emptyArr)).toBe(true);
      expect(Array.isArray(cfg.emptyObj)).toBe(false);
      expect((cfg.doubles as number[])[0]).toBe(0.30000000000000004);
      expect((cfg.doubles as number[])[2]).toBe(5e-324);
      expect((cfg.ints as number[])[2]).toBe(9007199254740991);
    }
    const stored = await facet.loadNode('n');
    expect(stored?.payload).toEqual(expected);
    expect(Array.isArray(stored?.list)).toBe(true);
  });

  test('undefined properties count as absent; arguments mutated later do not change stored state', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const S = sid('roundtrip-undefined');
    const lease = await acquire(store, S);
    const facet = store.session(S);
    const config = { keep: 1, gone: undefined } as unknown as JsonValue;
    const frames: JsonValue[] = [{ a: [1] }];
    const commit: RuntimeCommit = baseCommit(S, lease, { config, agentFrames: frames });
    await facet.commitRuntimeState(commit);
    (config as Record<string, unknown>).keep = 2;
    ((frames[0] as Record<string, JsonValue[]>).a as number[]).push(2);
    const loaded = await facet.loadSession({ kind: 'full_graph' });
    expect(loaded?.config).toEqual({ keep: 1 });
    expect(keysOf(loaded?.config as object)).toEqual(['keep']);
    expect(loaded?.agentFrames).toEqual([{ a: [1] }]);
    // And the returned object is a copy too.
    loaded?.agentFrames.push('x');
    expect((await facet.loadSession({ kind: 'full_graph' }))?.agentFrames).toEqual([{ a: [1] }]);
  });

  test('nodes and executionState bytes mutated after the commit do not change stored state', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const S = sid('roundtrip-mutate');
    const lease = await acquire(store, S);
    const facet = store.session(S);
    const n: SessionNodeRecord = { nodeId: 'n', timestamp: 't', body: { list: [1] } };
    const bytes = new Uint8Array([1, 2, 3]);
    const toolState = { v: [1] };
    await facet.commitRuntimeState(
      baseCommit(S, lease, {
        graph: { kind: 'replace_full', graph: { nodes: [n], leafNodeId: 'n' } },
        checkpoint: { turnState: null, toolState, executionState: bytes },
      }),
    );
    (n.body as { list: number[] }).list.push(2);
    n.timestamp = 'changed';
    bytes[0] = 99;
    toolState.v.push(2);
    expect(await facet.loadNode('n')).toEqual({ nodeId: 'n', timestamp: 't', body: { list: [1] } });
    const loaded = await facet.loadSession({ kind: 'full_graph' });
    expect(loaded?.graph.nodes).toEqual([{ nodeId: 'n', timestamp: 't', body: { list: [1] } }]);
    expect(Array.from(loaded?.checkpoint?.executionState ?? [])).toEqual([1, 2, 3]);
    expect(loaded?.checkpoint?.toolState).toEqual({ v: [1] });
    // Mutating the returned bytes does not change the stored ones either.
    const es = loaded?.checkpoint?.executionState;
    if (es) es[1] = 77;
    const again = await facet.loadSession({ kind: 'full_graph' });
    expect(Array.from(again?.checkpoint?.executionState ?? [])).toEqual([1, 2, 3]);
  });
});

describeBackends('release inside a commit (SPEC 6.3 step 9)', (b) => {
  test('a matching release frees the lease; the generation is kept for the next acquirer', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const S = sid('commit-release');
    const lease = await acquire(store, S);
    await store
      .session(S)
      .commitRuntimeState(baseCommit(S, lease, { releaseSessionExecutionLease: leaseCompletion(lease) }));
    await expectLeaseFree(store, S, 2);
  });

  test('a release in the commit ends the liveness of claims it did not complete', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const S = sid('commit-release-claims');
    const done = await enqueue(store, S, nt('done'));
    const left = await enqueue(store, S, nt('left'));
    const lease = await acquire(store, S);
    const k1 = await claimNext(store, lease, { maxInputs: 1 });
    const k2 = await claimNext(store, lease, { maxInputs: 1 });
    if (!k1 || !k2) throw new Error('no claim');
    expect(await store.listPendingTurnInputs(S)).toEqual([]);
    await store.session(S).commitRuntimeState(
      baseCommit(S, lease, {
        completedTurnInputClaims: completions(k1),
        releaseSessionExecutionLease: leaseCompletion(lease),
      }),
    );
    expect(ids(await store.listPendingTurnInputs(S))).toEqual([left.inputId]);
    expect((await store.cancelPendingTurnInput(S, done.inputId)).outcome).toBe('already_completed');
  });

  test('a non-matching release is silent: the commit succeeds and the lease stays', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const S = sid('commit-release-miss');
    const lease = await acquire(store, S);
    const r = await store
      .session(S)
      .commitRuntimeState(
        baseCommit(S, lease, { releaseSessionExecutionLease: { ...leaseCompletion(lease), leaseToken: 'not-it' } }),
      );
    expect(r.headRevision).toBe(1);
    await expectLeaseHeld(store, S, lease);
    // Without any release the lease also stays.
    await store.session(S).commitRuntimeState(baseCommit(S, lease));
    await expectLeaseHeld(store, S, lease);
  });
});

describeBackends('error details name the caller’s session exactly (SPEC 2.6)', (b) => {
  // The Redis scripts are sent the session id only in its key encoding (docs/KEYS.md) and decode
  // it for error details: ids that encode to something else must come back as given.
  const odd = ['user:42/a b', 'ünï 💬', '100%', 'a%3Ab', '{tag}:x', 'plain-id_1.2~3'];

  test('enqueue conflicts, claim and commit fences, stamp conflicts and superseded claims', async (ctx) => {
    const { store } = await b.fresh(ctx);
    for (const S of odd) {
      const first = await enqueue(store, S, nt('one', { inputId: 'in:1', sourceKey: 'k/1' }));
      await expectStoreError(enqueue(store, S, nt('two', { inputId: 'in:1' })), 'PendingTurnInputIdConflict', {
        sessionId: S,
        inputId: 'in:1',
      });
      await expectStoreError(
        enqueue(store, S, nt('three', { sourceKey: 'k/1' })),
        'PendingTurnInputSourceKeyConflict',
        {
          sessionId: S,
          sourceKey: 'k/1',
          existingInputId: first.inputId,
        },
      );

      const lease = await acquire(store, S);
      const stale = { ...leaseFence(lease), leaseToken: 'not-the-token' };
      await expectStoreError(claimNext(store, stale), 'SessionExecutionLeaseExpired', { sessionId: S });
      // A fence of another session, sent with this session's request.
      await expectStoreError(
        claimNext(store, { ...leaseFence(lease), sessionId: `${S}-other` }, { sessionId: S }),
        'SessionExecutionLeaseExpired',
        { sessionId: S },
      );
      await expectStoreError(
        store.session(S).commitRuntimeState(baseCommit(S, stale)),
        'SessionExecutionLeaseExpired',
        {
          sessionId: S,
        },
      );

      const claim = await claimNext(store, lease);
      expect(ids(claim!.inputs)).toEqual([first.inputId]);
      const wrongToken = { ...claimCompletion(claim!), leaseToken: 'not-the-claim-token' };
      await expectStoreError(
        store.session(S).commitRuntimeState(baseCommit(S, lease, { completedTurnInputClaims: [wrongToken] })),
        'TurnInputClaimSuperseded',
        { sessionId: S, claimId: claim!.claimId },
      );
      await store
        .session(S)
        .commitRuntimeState(stamped(baseCommit(S, lease, { completedTurnInputClaims: completions(claim!) }), 'turn:1'));
      await expectStoreError(
        store.session(S).commitRuntimeState(stamped(baseCommit(S, lease, { config: { other: true } }), 'turn:1')),
        'RuntimeTurnCommitConflict',
        { sessionId: S, turnId: 'turn:1' },
      );
    }
  });
});
