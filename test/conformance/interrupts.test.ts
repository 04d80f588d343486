/**
 * SPEC 3.9 and 5.1 (issue 18, "when the user types while the agent works"): enqueue's whenBusy
 * policies, requestTurnInterrupt, and what an interrupted generation may still do (claims,
 * renewals, commits, abandon, release), against both backends.
 */
import { expect, test } from 'vitest';
import {
  claimCompletion,
  createInMemoryRuntimeStore,
  createRedisRuntimeStore,
  leaseCompletion,
  leaseFence,
  type RuntimeStore,
} from '../../src/index.js';
import { describeBackends } from './backends.js';
import {
  acquire,
  assertInvalidInput,
  at,
  claimActive,
  claimNext,
  draft,
  enqueue,
  expectInvalidInput,
  expectStoreError,
  ids,
  LONG_TTL,
  minimalCommit,
  nt,
  O,
  sid,
} from './fixtures.js';

async function stateOf(store: RuntimeStore, sessionId: string, inputId: string): Promise<string> {
  // A cancel target by id answers with the row's state without writing, except for a free pending
  // row: use the list and a replay-free read instead.
  const listed = await store.listPendingTurnInputs(sessionId);
  const row = listed.find((r) => r.inputId === inputId);
  if (row) return row.state;
  const [res] = await store.cancelPendingTurnInputs(sessionId, [{ kind: 'input_id', value: inputId }]);
  const o = res!.outcome;
  if (o.outcome === 'not_found') return 'not_found';
  return o.input.state;
}

describeBackends('interrupts', (b) => {
  // ------------------------------------------------------------------ whenBusy on an idle session

  test("every whenBusy policy on an idle session enqueues as 'enqueue' does, marking nothing", async (ctx) => {
    const { store } = await b.fresh(ctx);
    const s = sid('idle');
    for (const whenBusy of ['enqueue', 'reject', 'interrupt', 'rollback'] as const) {
      const row = await store.enqueuePendingTurnInput({ ...draft(s, nt(whenBusy)), whenBusy });
      expect(row.state).toBe('deferred_next_turn');
    }
    expect((await store.listPendingTurnInputs(s)).map((r) => (r.input as { text: string }).text)).toEqual([
      'enqueue',
      'reject',
      'interrupt',
      'rollback',
    ]);
    const lease = await acquire(store, s);
    // Nothing was marked: the new generation claims and commits as usual.
    const claim = await claimNext(store, lease);
    expect(claim?.inputs).toHaveLength(4);
    const renewed = await store.renewSessionExecutionLease(leaseFence(lease), LONG_TTL);
    expect(renewed.interrupt).toBeUndefined();
    await store.session(s).commitRuntimeState(minimalCommit(lease, [claim!]));
  });

  // ------------------------------------------------------------------ whenBusy on a live turn

  test("'reject' on a live turn: SessionBusy { sessionId, generation }, nothing written", async (ctx) => {
    const { store } = await b.fresh(ctx);
    const s = sid('reject');
    const lease = await acquire(store, s);
    await expectStoreError(
      store.enqueuePendingTurnInput({ ...draft(s, nt('x', { sourceKey: 'k', inputId: 'i1' })), whenBusy: 'reject' }),
      'SessionBusy',
      { sessionId: s, generation: lease.fencingToken },
    );
    expect(await store.listPendingTurnInputs(s)).toEqual([]);
    // Neither the id nor the source key was taken.
    const row = await enqueue(store, s, nt('x', { sourceKey: 'k', inputId: 'i1' }));
    expect(row.enqueueSeq).toBe(1);
    // The turn was not marked.
    expect((await store.renewSessionExecutionLease(leaseFence(lease), LONG_TTL)).interrupt).toBeUndefined();
    expect(await claimNext(store, lease)).not.toBeNull();
  });

  test("'enqueue' on a live turn queues without marking it", async (ctx) => {
    const { store } = await b.fresh(ctx);
    const s = sid('enq');
    const lease = await acquire(store, s);
    await store.enqueuePendingTurnInput({ ...draft(s, nt('a')), whenBusy: 'enqueue' });
    expect((await store.renewSessionExecutionLease(leaseFence(lease), LONG_TTL)).interrupt).toBeUndefined();
  });

  test("'interrupt' on a live turn: queued, the generation marked; no more claims; the claimed input goes back in order ahead of the new one", async (ctx) => {
    const { store } = await b.fresh(ctx);
    const s = sid('int');
    const first = await enqueue(store, s, nt('first'));
    const lease = await acquire(store, s);
    const claim = await claimNext(store, lease);
    expect(ids(claim!.inputs)).toEqual([first.inputId]);
    const active = await enqueue(store, s, at('t1', undefined, 'mid-turn'));
    const activeClaim = await claimActive(store, lease, 't1', 'after_work');
    expect(ids(activeClaim!.inputs)).toEqual([active.inputId]);

    const typed = await store.enqueuePendingTurnInput({ ...draft(s, nt('typed')), whenBusy: 'interrupt' });
    expect(typed.state).toBe('deferred_next_turn');

    // The mark: renewal extends the lease and says so.
    const renewed = await store.renewSessionExecutionLease(leaseFence(lease), LONG_TTL);
    expect(renewed.fencingToken).toBe(lease.fencingToken);
    expect(renewed.interrupt).toMatchObject({
      generation: lease.fencingToken,
      policy: 'interrupt',
      inputId: typed.inputId,
    });
    expect(Number.isSafeInteger(renewed.interrupt!.atEpochMs)).toBe(true);

    // No more claims, of either kind.
    const details = { sessionId: s, generation: lease.fencingToken };
    await expectStoreError(claimNext(store, lease), 'TurnInterrupted', details);
    await expectStoreError(claimActive(store, lease, 't1', 'after_work'), 'TurnInterrupted', details);

    // Abandon puts both claims' rows back for the next turn, in enqueueSeq order, with the new input.
    await store.abandonTurnInputClaims([claim!, activeClaim!]);
    await store.releaseSessionExecutionLease(leaseCompletion(lease));
    const next = await acquire(store, s);
    const nextClaim = await claimNext(store, next);
    expect(ids(nextClaim!.inputs)).toEqual([first.inputId, active.inputId, typed.inputId]);
    // The new generation is not interrupted.
    expect((await store.renewSessionExecutionLease(leaseFence(next), LONG_TTL)).interrupt).toBeUndefined();
    await store.session(s).commitRuntimeState(minimalCommit(next, [nextClaim!]));
  });

  test("'rollback' on a live turn: the interrupted turn's claimed input is cancelled; the new input runs next", async (ctx) => {
    const { store } = await b.fresh(ctx);
    const s = sid('rb');
    const first = await enqueue(store, s, nt('first'));
    const lease = await acquire(store, s);
    const claim = await claimNext(store, lease);
    const active = await enqueue(store, s, at('t1'));
    const activeClaim = await claimActive(store, lease, 't1', 'after_work');
    const waiting = await enqueue(store, s, nt('waiting, not claimed'));

    const typed = await store.enqueuePendingTurnInput({ ...draft(s, nt('instead')), whenBusy: 'rollback' });
    const renewed = await store.renewSessionExecutionLease(leaseFence(lease), LONG_TTL);
    expect(renewed.interrupt?.policy).toBe('rollback');

    await store.abandonTurnInputClaims([claim!, activeClaim!]);
    expect(await stateOf(store, s, first.inputId)).toBe('cancelled');
    expect(await stateOf(store, s, active.inputId)).toBe('cancelled');
    await store.releaseSessionExecutionLease(leaseCompletion(lease));
    const next = await acquire(store, s);
    const nextClaim = await claimNext(store, next);
    // Input the interrupted turn never claimed is untouched.
    expect(ids(nextClaim!.inputs)).toEqual([waiting.inputId, typed.inputId]);
  });

  test('a rollback mark is never weakened by a later interrupt of the same generation', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const s = sid('upgrade');
    const lease = await acquire(store, s);
    await store.enqueuePendingTurnInput({ ...draft(s, nt('a')), whenBusy: 'interrupt' });
    await store.enqueuePendingTurnInput({ ...draft(s, nt('b')), whenBusy: 'rollback' });
    const r = await store.requestTurnInterrupt(s, { reason: 'stop' });
    expect(r).toEqual({ interrupted: true, generation: lease.fencingToken, policy: 'rollback' });
    const renewed = await store.renewSessionExecutionLease(leaseFence(lease), LONG_TTL);
    expect(renewed.interrupt).toMatchObject({ policy: 'rollback', reason: 'stop' });
  });

  test('a source-key replay answers as today, whatever whenBusy says, and marks nothing', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const s = sid('replay');
    const row = await enqueue(store, s, nt('x', { sourceKey: 'k' }));
    const lease = await acquire(store, s);
    for (const whenBusy of ['reject', 'interrupt', 'rollback'] as const) {
      const again = await store.enqueuePendingTurnInput({ ...draft(s, nt('x', { sourceKey: 'k' })), whenBusy });
      expect(again).toEqual(row);
    }
    expect((await store.renewSessionExecutionLease(leaseFence(lease), LONG_TTL)).interrupt).toBeUndefined();
    await expectStoreError(
      store.enqueuePendingTurnInput({ ...draft(s, nt('other', { sourceKey: 'k' })), whenBusy: 'reject' }),
      'PendingTurnInputSourceKeyConflict',
    );
  });

  test('whenBusy is validated: unknown values and non-next-turn drafts are InvalidInput, nothing written', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const s = sid('bad');
    await expectInvalidInput(
      store.enqueuePendingTurnInput({ ...draft(s, nt('x')), whenBusy: 'later' as never }),
      'whenBusy',
    );
    await expectInvalidInput(
      store.enqueuePendingTurnInput({ ...draft(s, at('t1')), whenBusy: 'interrupt' }),
      'whenBusy',
    );
    // 'enqueue' is allowed on active-turn drafts (it is today's behaviour).
    await store.enqueuePendingTurnInput({ ...draft(s, at('t1')), whenBusy: 'enqueue' });
    expect(await store.listPendingTurnInputs(s)).toHaveLength(1);
  });

  // ------------------------------------------------------------------ requestTurnInterrupt

  test('requestTurnInterrupt: false without a live lease (nothing written); true and marked with one', async (ctx) => {
    const { store, advance } = await b.fresh(ctx);
    const s = sid('stop');
    expect(await store.requestTurnInterrupt(s)).toEqual({ interrupted: false });
    const short = await acquire(store, s, O('w'), 30);
    await advance(60);
    expect(await store.requestTurnInterrupt(s)).toEqual({ interrupted: false });
    const lease = await acquire(store, s);
    expect(lease.fencingToken).toBe(short.fencingToken + 1);
    expect(await store.requestTurnInterrupt(s, { reason: 'user pressed stop' })).toEqual({
      interrupted: true,
      generation: lease.fencingToken,
      policy: 'interrupt',
    });
    const renewed = await store.renewSessionExecutionLease(leaseFence(lease), LONG_TTL);
    expect(renewed.interrupt).toMatchObject({
      generation: lease.fencingToken,
      policy: 'interrupt',
      reason: 'user pressed stop',
    });
    expect(renewed.interrupt?.inputId).toBeUndefined();
    await expectStoreError(claimNext(store, lease), 'TurnInterrupted');
  });

  test('requestTurnInterrupt validates its arguments', async (ctx) => {
    const { store } = await b.fresh(ctx);
    await expectInvalidInput(store.requestTurnInterrupt(''), 'sessionId');
    await expectInvalidInput(store.requestTurnInterrupt('s', { reason: 5 as never }), 'options.reason');
    await expectInvalidInput(store.requestTurnInterrupt('s', { reason: 'x'.repeat(1025) }), 'options.reason');
    await expectInvalidInput(store.requestTurnInterrupt('s', { policy: 'pause' as never }), 'options.policy');
    await expectInvalidInput(store.requestTurnInterrupt('s', { other: 1 } as never), 'options');
    await expectInvalidInput(store.requestTurnInterrupt('s', 'stop' as never), 'options');
  });

  // ------------------------------------------------------------------ the interrupted generation's commit

  test('an interrupted generation may save state and release, but completes no claim and must release', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const s = sid('commit');
    const input = await enqueue(store, s, nt('a'));
    const lease = await acquire(store, s);
    const claim = await claimNext(store, lease);
    await store.requestTurnInterrupt(s);
    const facet = store.session(s);
    const details = { sessionId: s, generation: lease.fencingToken };
    // Completing the claim: refused.
    await expectStoreError(
      facet.commitRuntimeState(
        minimalCommit(lease, [claim!], { releaseSessionExecutionLease: leaseCompletion(lease) }),
      ),
      'TurnInterrupted',
      details,
    );
    // Not releasing: refused.
    await expectStoreError(facet.commitRuntimeState(minimalCommit(lease)), 'TurnInterrupted', details);
    // Nothing of either is visible.
    expect(await facet.loadSession({ kind: 'full_graph' })).toBeNull();
    // State without completions, releasing: accepted.
    const result = await facet.commitRuntimeState(
      minimalCommit(lease, [], {
        graph: { kind: 'append', nodes: [{ nodeId: 'n1', timestamp: 't' }], leafNodeId: 'n1' },
        releaseSessionExecutionLease: leaseCompletion(lease),
      }),
    );
    expect(result.headRevision).toBe(1);
    expect((await facet.loadSession({ kind: 'full_graph' }))?.graph.nodes.map((n) => n.nodeId)).toEqual(['n1']);
    // Released: the claim died with the generation, and the next turn gets the input again.
    const next = await acquire(store, s);
    expect(ids((await claimNext(store, next))!.inputs)).toEqual([input.inputId]);
  });

  test('interrupt racing commit: the commit that wins completes; the interrupt of a released session marks nothing', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const s = sid('race-commit');
    await enqueue(store, s, nt('a'));
    const lease = await acquire(store, s);
    const claim = await claimNext(store, lease);
    const [commit, interrupt] = await Promise.allSettled([
      store
        .session(s)
        .commitRuntimeState(minimalCommit(lease, [claim!], { releaseSessionExecutionLease: leaseCompletion(lease) })),
      store.requestTurnInterrupt(s),
    ]);
    if (commit.status === 'fulfilled') {
      // Either order: the commit completed its claim (the interrupt came after the release, or
      // before it but the commit... cannot then have completed).
      expect(interrupt).toEqual({ status: 'fulfilled', value: { interrupted: false } });
    } else {
      expect((commit.reason as { code: string }).code).toBe('TurnInterrupted');
      expect(interrupt.status === 'fulfilled' && interrupt.value.interrupted).toBe(true);
    }
  });

  test('interrupt racing renewal and release: release always applies; a mark made before it is seen by the renewal', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const s = sid('race-release');
    const lease = await acquire(store, s);
    const [renewed, marked] = await Promise.all([
      store.renewSessionExecutionLease(leaseFence(lease), LONG_TTL),
      store.requestTurnInterrupt(s),
    ]);
    expect(marked.interrupted).toBe(true);
    // The renewal ran before or after the mark; a renewal now sees it.
    if (renewed.interrupt) expect(renewed.interrupt.generation).toBe(lease.fencingToken);
    expect((await store.renewSessionExecutionLease(leaseFence(lease), LONG_TTL)).interrupt?.generation).toBe(
      lease.fencingToken,
    );
    const [, after] = await Promise.all([
      store.releaseSessionExecutionLease(leaseCompletion(lease)),
      store.requestTurnInterrupt(s),
    ]);
    // Released or not yet when the second mark ran; either way the lease is free now.
    expect(typeof after.interrupted).toBe('boolean');
    const next = await acquire(store, s, O('other'));
    expect(next.fencingToken).toBe(lease.fencingToken + 1);
  });

  test('a zombie generation that was interrupted can neither claim nor complete, even after a newer turn began', async (ctx) => {
    const { store, advance } = await b.fresh(ctx);
    const s = sid('zombie');
    const a = await enqueue(store, s, nt('a'));
    const zombie = await acquire(store, s, O('z'), 40);
    const claim = await claimNext(store, zombie);
    await store.requestTurnInterrupt(s, { policy: 'rollback' });
    // While live: TurnInterrupted.
    await expectStoreError(claimNext(store, zombie), 'TurnInterrupted');
    await advance(80);
    // Expired: the usual fence failure, and a newer generation is unaffected by the old mark.
    await expectStoreError(claimNext(store, zombie), 'SessionExecutionLeaseExpired');
    const fresh = await acquire(store, s, O('n'));
    await expectStoreError(
      store.session(s).commitRuntimeState(minimalCommit(zombie, [claim!])),
      'SessionExecutionLeaseExpired',
    );
    // The new generation's own turn is free to claim and complete; the rollback abandon of the
    // zombie's claim (late) cancels only rows that still carry that claim.
    const nextClaim = await claimNext(store, fresh);
    expect(ids(nextClaim!.inputs)).toEqual([a.inputId]);
    await store.abandonTurnInputClaim(claim!);
    await store.session(s).commitRuntimeState(minimalCommit(fresh, [nextClaim!]));
    expect(await stateOf(store, s, a.inputId)).toBe('completed');
    expect(claimCompletion(claim!).inputIds).toEqual([a.inputId]);
  });

  // ------------------------------------------------------------------ queue cap

  test('maxPendingPerSession: over it PendingTurnInputQueueFull { sessionId, limit }, nothing written; room again once input settles', async (ctx) => {
    const { store } = await b.fresh(ctx, { maxPendingPerSession: 2 });
    const s = sid('cap');
    const a = await enqueue(store, s, nt('a'));
    await enqueue(store, s, at('t1', undefined, 'b'));
    for (const body of [nt('c', { inputId: 'c', sourceKey: 'kc' }), at('t1', undefined, 'd')]) {
      await expectStoreError(enqueue(store, s, body), 'PendingTurnInputQueueFull', { sessionId: s, limit: 2 });
    }
    await expectStoreError(
      store.enqueuePendingTurnInput({ ...draft(s, nt('e')), whenBusy: 'interrupt' }),
      'PendingTurnInputQueueFull',
    );
    // Claimed (accepted or next-turn) input still counts; a replay answers whatever the count.
    const lease = await acquire(store, s);
    const claim = await claimNext(store, lease);
    await expectStoreError(enqueue(store, s, nt('f')), 'PendingTurnInputQueueFull');
    expect(await store.listPendingTurnInputs(s)).toHaveLength(1);
    await store
      .session(s)
      .commitRuntimeState(minimalCommit(lease, [claim!], { releaseSessionExecutionLease: leaseCompletion(lease) }));
    expect(await stateOf(store, s, a.inputId)).toBe('completed');
    // The id and the source key of the refused draft were not taken.
    const c = await enqueue(store, s, nt('c', { inputId: 'c', sourceKey: 'kc' }));
    expect(await enqueue(store, s, nt('c', { inputId: 'c', sourceKey: 'kc' }))).toEqual(c);
    // Other sessions have their own room.
    await enqueue(store, sid('other'), nt('x'));
  });

  test('maxPendingPerSession is validated', async () => {
    for (const bad of [0, -1, 1.5, 1_000_001, '2']) {
      const e = (() => {
        try {
          if (b.name === 'memory') createInMemoryRuntimeStore({ maxPendingPerSession: bad as never });
          else return undefined;
        } catch (err) {
          return err;
        }
        return 'no error';
      })();
      if (b.name === 'memory') assertInvalidInput(e, 'maxPendingPerSession');
    }
    if (b.name === 'redis') {
      await expectInvalidInput(createRedisRuntimeStore({ maxPendingPerSession: 0 }), 'maxPendingPerSession');
    }
  });

  // ------------------------------------------------------------------ input expiry

  test('pendingTtlMs: input unclaimed past it becomes a cancelled tombstone; claimed input and newer input are kept', async (ctx) => {
    const { store, advance } = await b.fresh(ctx, { pendingTtlMs: 300 });
    const s = sid('ttl');
    const old = await enqueue(store, s, nt('old', { sourceKey: 'k-old' }));
    const oldActive = await enqueue(store, s, at('t1', undefined, 'old active'));
    const held = await enqueue(store, s, nt('held'));
    const lease = await acquire(store, s);
    const heldClaim = await store.claimNextTurnInputs({
      sessionId: s,
      fence: leaseFence(lease),
      owner: lease.owner,
      leaseTtlMs: LONG_TTL,
      maxInputs: 3,
    });
    expect(ids(heldClaim!.inputs)).toEqual([old.inputId, held.inputId]);
    // Give `old` back, keep `held` claimed.
    await store.abandonTurnInputClaim({ ...heldClaim!, inputs: heldClaim!.inputs.slice(0, 1) });
    await advance(400);
    const fresh = await enqueue(store, s, nt('fresh'));
    // The list applies expiry: old and oldActive are gone, held (live claim) is not listed anyway.
    expect(ids(await store.listPendingTurnInputs(s))).toEqual([fresh.inputId]);
    expect(await stateOf(store, s, old.inputId)).toBe('cancelled');
    expect(await stateOf(store, s, oldActive.inputId)).toBe('cancelled');
    // A replay of the expired input answers with its tombstone.
    expect((await enqueue(store, s, nt('old', { sourceKey: 'k-old' }))).state).toBe('cancelled');
    // The live claim survives its deadline and completes.
    await store
      .session(s)
      .commitRuntimeState(minimalCommit(lease, [{ ...claimCompletion(heldClaim!), inputIds: [held.inputId] }]));
    expect(await stateOf(store, s, held.inputId)).toBe('completed');
    // The next claim takes only the fresh input.
    expect(ids((await claimNext(store, lease))!.inputs)).toEqual([fresh.inputId]);
  });

  test('pendingTtlMs is validated', async () => {
    for (const bad of [0, -1, 1.5, 2_592_000_001, '2']) {
      let e: unknown;
      try {
        if (b.name === 'memory') createInMemoryRuntimeStore({ pendingTtlMs: bad as never });
        else await createRedisRuntimeStore({ pendingTtlMs: bad as never });
      } catch (err) {
        e = err;
      }
      assertInvalidInput(e, 'pendingTtlMs');
    }
  });

  // ------------------------------------------------------------------ pause / resume

  test('pauseSessionDispatch: enqueues accepted, no fresh acquisition (SessionPaused), the running turn carries on; resume lets the next turn start', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const s = sid('pause');
    // Pausing a session that has nothing yet.
    expect(await store.pauseSessionDispatch(s)).toEqual({ changed: true });
    expect(await store.pauseSessionDispatch(s)).toEqual({ changed: false });
    const row = await enqueue(store, s, nt('while paused'));
    const e = await expectStoreError(store.tryClaimSessionExecutionLease(s, O('w'), LONG_TTL), 'SessionPaused');
    expect(e.details.sessionId).toBe(s);
    expect(Number.isSafeInteger(e.details.pausedAtEpochMs)).toBe(true);
    await expectStoreError(
      store.reclaimSessionExecutionLease(
        s,
        O('w'),
        { sessionId: s, owner: O('x'), leaseToken: 't', fencingToken: 1 },
        LONG_TTL,
      ),
      'SessionPaused',
    );
    expect(ids(await store.listPendingTurnInputs(s))).toEqual([row.inputId]);
    expect(await store.resumeSessionDispatch(s)).toEqual({ changed: true });
    expect(await store.resumeSessionDispatch(s)).toEqual({ changed: false });
    const lease = await acquire(store, s);
    expect(lease.fencingToken).toBe(1);
    // Paused mid-turn: the holder re-enters, renews, claims and commits; the next turn waits.
    await store.pauseSessionDispatch(s);
    const again = await store.tryClaimSessionExecutionLease(s, lease.owner, LONG_TTL);
    expect(again.outcome).toBe('acquired');
    await store.renewSessionExecutionLease(leaseFence(lease), LONG_TTL);
    const claim = await claimNext(store, lease);
    await store
      .session(s)
      .commitRuntimeState(minimalCommit(lease, [claim!], { releaseSessionExecutionLease: leaseCompletion(lease) }));
    await expectStoreError(store.tryClaimSessionExecutionLease(s, O('w'), LONG_TTL), 'SessionPaused');
    await store.resumeSessionDispatch(s);
    expect((await acquire(store, s)).fencingToken).toBe(2);
  });

  test('pause and resume validate the session id', async (ctx) => {
    const { store } = await b.fresh(ctx);
    await expectInvalidInput(store.pauseSessionDispatch('' as never), 'sessionId');
    await expectInvalidInput(store.resumeSessionDispatch(5 as never), 'sessionId');
  });
});
