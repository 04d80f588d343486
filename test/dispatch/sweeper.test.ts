/**
 * No lost wake-up (SPEC 11): the dispatch index is updated by the store's own scripts, and the
 * sweeper (lua/sweep-session.lua) re-signals dispatchable sessions, removes empty ones and leaves
 * leased ones alone.
 */
import { describe, expect, test } from 'vitest';
import { leaseFence } from '../../src/core/projections.js';
import { sweepDispatchIndex } from '../../src/dispatch/index.js';
import { adminClient } from '../support/prefix.js';
import { appendTurn, dispatchQueue, freshStore, inputsInGraph, owner, sleep, startWorker, waitFor } from './helpers.js';

function dispatchKey(prefix: string): string {
  return `${prefix}:shard:{0}:dispatch`;
}

async function indexed(prefix: string): Promise<string[]> {
  return (await adminClient().zrange(dispatchKey(prefix), '0', '-1')).sort();
}

describe('dispatch sweeper', () => {
  test('no lost wake-up: input enqueued with no wake-up sent is processed within about one sweep interval', async (ctx) => {
    // The crash between the script and the wake-up: a store that never sends (idleDispatch
    // false) still keeps the dispatch index in the enqueue script.
    const { store, prefix } = await freshStore(ctx, { idleDispatch: false });
    const sweepIntervalMs = 500;
    const wokenAt: number[] = [];
    const { events } = await startWorker(ctx, store, 'w', appendTurn(store), {
      sweepIntervalMs,
      onEvent: (e) => {
        if (e.type === 'swept' && e.report.woken.includes('lost')) wokenAt.push(Date.now());
      },
    });
    const queue = dispatchQueue(ctx, prefix);

    const started = Date.now();
    const row = await store.enqueuePendingTurnInput({ sessionId: 'lost', ingress: { scope: 'next_turn' }, input: 1 });
    expect(await queue.getWaitingCount()).toBe(0);
    expect(await indexed(prefix)).toEqual(['lost']);

    await waitFor('the input to be committed', () => events.some((e) => e.type === 'committed'), 10_000, 10);
    // The wake-up was waiting within one sweep interval (plus the sweep's own time), and the
    // worker ran the turn right after.
    expect(wokenAt.length).toBeGreaterThan(0);
    expect(wokenAt[0] - started).toBeLessThan(sweepIntervalMs + 250);
    expect(Date.now() - started).toBeLessThan(sweepIntervalMs + 2000);
    expect(await inputsInGraph(store, 'lost')).toEqual(new Map([[row.inputId, 1]]));

    // Once the session has nothing left, the next sweep removes it from the index.
    await waitFor('the index to empty', async () => (await indexed(prefix)).length === 0, 3000);
  });

  test('a crashed worker holding claims: after its lease expires the sweeper wakes the session and T9 requeues', async (ctx) => {
    const { store, prefix } = await freshStore(ctx, { idleDispatch: false });
    const w = owner('crashed');
    const acquired = await store.tryClaimSessionExecutionLease('e8', w, 300);
    if (acquired.outcome !== 'acquired') throw new Error('expected acquired');
    const fence = leaseFence(acquired.lease);
    const q1 = await store.enqueuePendingTurnInput({
      sessionId: 'e8',
      ingress: { scope: 'active_turn', turnId: 't1' },
      input: 1,
    });
    const claim = await store.claimActiveTurnInputs({
      sessionId: 'e8',
      fence,
      owner: w,
      turnId: 't1',
      checkpoint: 'after_work',
      leaseTtlMs: 300,
      maxInputs: 10,
    });
    expect(claim?.inputs.map((i) => i.state)).toEqual(['accepted']);
    expect(await indexed(prefix)).toEqual(['e8']);

    const woken: string[] = [];
    const wake = async (id: string) => {
      woken.push(id);
    };
    expect(await sweepDispatchIndex(store, { wake })).toMatchObject({ leased: 1, woken: [] });
    await sleep(350); // the crashed worker's lease expires
    expect(await sweepDispatchIndex(store, { wake })).toMatchObject({ woken: ['e8'] });

    // The row itself is untouched by sweeping: still accepted, still hidden from the list.
    expect(await store.listPendingTurnInputs('e8')).toEqual([]);

    // A worker's fresh generation requeues q1 (T9) in its acquisition and processes it.
    const { events } = await startWorker(ctx, store, 'w', appendTurn(store), { sweepIntervalMs: 200 });
    await waitFor('the requeued input to be committed', () => events.some((e) => e.type === 'committed'));
    const claimed = events.find((e) => e.type === 'claimed');
    expect(claimed).toMatchObject({ sessionId: 'e8', generation: 2, claimId: 'tic:1:2', inputIds: [q1.inputId] });
    expect(await inputsInGraph(store, 'e8')).toEqual(new Map([[q1.inputId, 1]]));
  });

  test('keep mode: an accepted row of a dead generation is not dispatchable, so the session leaves the index', async (ctx) => {
    const { store, prefix } = await freshStore(ctx, { idleDispatch: false, strandedTurnInputs: 'keep' });
    const w = owner('crashed');
    const acquired = await store.tryClaimSessionExecutionLease('k', w, 60_000);
    if (acquired.outcome !== 'acquired') throw new Error('expected acquired');
    await store.enqueuePendingTurnInput({ sessionId: 'k', ingress: { scope: 'active_turn', turnId: 't1' }, input: 1 });
    await store.claimActiveTurnInputs({
      sessionId: 'k',
      fence: leaseFence(acquired.lease),
      owner: w,
      turnId: 't1',
      checkpoint: 'after_work',
      leaseTtlMs: 60_000,
      maxInputs: 10,
    });
    await store.releaseSessionExecutionLease(acquired.lease);
    expect(await indexed(prefix)).toEqual(['k']);
    const woken: string[] = [];
    const report = await sweepDispatchIndex(store, {
      wake: async (id) => {
        woken.push(id);
      },
    });
    expect(report).toMatchObject({ removed: 1, woken: [] });
    expect(await indexed(prefix)).toEqual([]);
  });

  test('removes sessions with nothing dispatchable, keeps leased ones, wakes dispatchable ones', async (ctx) => {
    const { store, prefix } = await freshStore(ctx, { idleDispatch: false });
    const next = (sessionId: string) =>
      store.enqueuePendingTurnInput({ sessionId, ingress: { scope: 'next_turn' }, input: sessionId });

    const cancelled = await next('cancelled');
    await store.cancelPendingTurnInput('cancelled', cancelled.inputId);
    await next('leased');
    await store.tryClaimSessionExecutionLease('leased', owner('w'), 60_000);
    await next('ready');
    await next('done');
    const done = await store.tryClaimSessionExecutionLease('done', owner('w'), 60_000);
    if (done.outcome !== 'acquired') throw new Error('expected acquired');
    const fence = leaseFence(done.lease);
    const claim = await store.claimNextTurnInputs({
      sessionId: 'done',
      fence,
      owner: owner('w'),
      leaseTtlMs: 60_000,
      maxInputs: 10,
    });
    await store.session('done').commitRuntimeState({
      sessionId: 'done',
      sessionExecutionLease: fence,
      releaseSessionExecutionLease: fence,
      config: null,
      agentFrames: [],
      currentAgentFrameId: 'main',
      graph: { kind: 'unchanged' },
      checkpoint: { turnState: null },
      usageDeltas: [],
      completedTurnInputClaims: [
        {
          sessionId: 'done',
          claimId: claim!.claimId,
          leaseToken: claim!.leaseToken,
          inputIds: claim!.inputs.map((i) => i.inputId),
        },
      ],
      committedAttachmentIds: [],
    });
    expect(await indexed(prefix)).toEqual(['cancelled', 'done', 'leased', 'ready']);

    // No wake function given: the sweeper sends through a queue handle of its own (the store
    // was created with idleDispatch false).
    const report = await sweepDispatchIndex(store);
    expect(report).toMatchObject({ visited: 4, removed: 2, leased: 1, woken: ['ready'], failed: 0 });
    expect(await indexed(prefix)).toEqual(['leased', 'ready']);
    const jobs = await dispatchQueue(ctx, prefix).getJobs(['waiting'] as never);
    expect(jobs.map((j) => [j.name, j.data])).toEqual([['wake', { sessionId: 'ready' }]]);

    // A sweep is idempotent: the deduplicated wake-up stays one job.
    await sweepDispatchIndex(store);
    expect(await dispatchQueue(ctx, prefix).getWaitingCount()).toBe(1);
  });

  test('a session the sweeper removed is put back by its next next-turn enqueue (ZADD NX on each), then woken', async (ctx) => {
    const { store, prefix } = await freshStore(ctx, { idleDispatch: false });
    const admin = adminClient();
    const score = async () => admin.zscore(dispatchKey(prefix), 's');
    const serverNow = async () => {
      const [sec, us] = await admin.time();
      return Number(sec) * 1000 + Math.floor(Number(us) / 1000);
    };
    const woken: string[] = [];
    const sweep = () =>
      sweepDispatchIndex(store, {
        wake: async (id) => {
          woken.push(id);
        },
      });
    const emptyAndRemove = async () => {
      for (const row of await store.listPendingTurnInputs('s')) await store.cancelPendingTurnInput('s', row.inputId);
      expect(await sweep()).toMatchObject({ visited: 1, removed: 1, leased: 0, woken: [] });
      expect(await indexed(prefix)).toEqual([]);
    };
    // Every kind of enqueue that makes a deferred_next_turn row: plain, source-keyed, and an
    // active-turn draft for a stamped turn (T3).
    await admin.hset(
      `${prefix}:{s}:stamps`,
      'done',
      JSON.stringify({ turnCommitHash: 'h', committedAtMs: 1, result: {} }),
    );
    const drafts = [
      () => store.enqueuePendingTurnInput({ sessionId: 's', ingress: { scope: 'next_turn' }, input: 1 }),
      () =>
        store.enqueuePendingTurnInput({ sessionId: 's', ingress: { scope: 'next_turn' }, input: 2, sourceKey: 'k' }),
      () =>
        store.enqueuePendingTurnInput({ sessionId: 's', ingress: { scope: 'active_turn', turnId: 'done' }, input: 3 }),
    ];
    await drafts[0]();
    await emptyAndRemove();
    for (const draft of drafts) {
      const before = await serverNow();
      expect((await draft()).state).toBe('deferred_next_turn');
      const added = await score();
      expect(added, 'the enqueue put the session back').not.toBeNull();
      expect(Number(added)).toBeGreaterThanOrEqual(before);
      // While it is there, further next-turn enqueues leave its score alone (NX).
      while ((await serverNow()) <= Number(added)) await sleep(2);
      await store.enqueuePendingTurnInput({ sessionId: 's', ingress: { scope: 'next_turn' }, input: 'more' });
      expect(await score()).toBe(added);
      await emptyAndRemove();
    }

    // pending_active input enqueued with no lease live is not dispatchable within its grace
    // (30 s by default), but it puts the session back, so that a sweep past the grace wakes it.
    const open = await store.enqueuePendingTurnInput({
      sessionId: 's',
      ingress: { scope: 'active_turn', turnId: 'open' },
      input: 4,
    });
    expect(open.state).toBe('pending_active');
    expect(await indexed(prefix)).toEqual(['s']);
    expect(await sweep()).toMatchObject({ visited: 1, removed: 0, waiting: 1, woken: [] });

    // Back in the index, the session is found dispatchable and woken.
    await drafts[0]();
    expect(await indexed(prefix)).toEqual(['s']);
    expect(await sweep()).toMatchObject({ visited: 1, removed: 0, leased: 0, woken: ['s'], failed: 0 });
    expect(woken).toEqual(['s']);
    expect(await indexed(prefix)).toEqual(['s']);
  });

  test('session ids that need encoding survive the index round trip', async (ctx) => {
    const { store, prefix } = await freshStore(ctx, { idleDispatch: false });
    const odd = ['a}:x', '{b}', 'user:42/a b', 'ünï%41'];
    for (const s of odd)
      await store.enqueuePendingTurnInput({ sessionId: s, ingress: { scope: 'next_turn' }, input: 1 });
    const woken: string[] = [];
    const report = await sweepDispatchIndex(store, {
      wake: async (id) => {
        woken.push(id);
      },
    });
    expect(report.failed).toBe(0);
    expect(woken.sort()).toEqual([...odd].sort());
    expect((await indexed(prefix)).length).toBe(odd.length);
  });
  test('active input under a holder that dies after the sweeper removed the session still wakes it (issue 17, defect 1)', async (ctx) => {
    const { store, prefix } = await freshStore(ctx, { idleDispatch: false });
    const w = owner('dies');
    const acquired = await store.tryClaimSessionExecutionLease('orphan', w, 300);
    if (acquired.outcome !== 'acquired') throw new Error('expected acquired');
    // The session has nothing a turn would take, so a sweep removes it from the index.
    const wake = async () => undefined;
    expect(await sweepDispatchIndex(store, { wake })).toMatchObject({ visited: 0 });
    expect(await indexed(prefix)).toEqual([]);
    // Active-turn input for the holder's turn arrives: pending_active, under a live generation.
    const a = await store.enqueuePendingTurnInput({
      sessionId: 'orphan',
      ingress: { scope: 'active_turn', turnId: 't1' },
      input: 'mid-turn',
    });
    expect(a.state).toBe('pending_active');
    expect(await indexed(prefix)).toEqual(['orphan']);
    expect(await sweepDispatchIndex(store, { wake })).toMatchObject({ leased: 1, woken: [] });
    // The holder dies without releasing: once its lease expires the sweeper wakes the session...
    await waitFor(
      'the lease to expire and the sweep to wake the session',
      async () => (await sweepDispatchIndex(store, { wake })).woken.includes('orphan'),
      5000,
      50,
    );
    // ...and a worker's fresh generation requeues the input (T9) and runs it.
    const { events } = await startWorker(ctx, store, 'w', appendTurn(store), { sweepIntervalMs: 200 });
    await waitFor('the orphaned input to be committed', () => events.some((e) => e.type === 'committed'));
    expect(await inputsInGraph(store, 'orphan')).toEqual(new Map([[a.inputId, 1]]));
  });

  test('active input for a turn nobody runs (enqueued with no lease live) is swept awake past its grace and runs as next-turn input, its enqueueSeq kept (issue 17, defect 2)', async (ctx) => {
    const { store, prefix } = await freshStore(ctx, { idleDispatch: false, activeInputGraceMs: 300 });
    const wake = async () => undefined;
    // A turn that ended without a stamp: its lease was released, and its input arrives late.
    const w = owner('ended');
    const l = await store.tryClaimSessionExecutionLease('nobody', w, 30_000);
    if (l.outcome !== 'acquired') throw new Error('expected acquired');
    await store.releaseSessionExecutionLease(l.lease);
    const late = await store.enqueuePendingTurnInput({
      sessionId: 'nobody',
      ingress: { scope: 'active_turn', turnId: 't-ended' },
      input: 'late',
    });
    expect(late.state).toBe('pending_active');
    // It put the session in the index; within its grace a sweep keeps it without a wake-up.
    expect(await indexed(prefix)).toEqual(['nobody']);
    expect(await sweepDispatchIndex(store, { wake })).toMatchObject({ waiting: 1, woken: [] });
    // Past the grace the sweeper wakes the session...
    await waitFor(
      'the grace to pass and the sweep to wake the session',
      async () => (await sweepDispatchIndex(store, { wake })).woken.includes('nobody'),
      5000,
      50,
    );
    // ...and a worker's fresh generation moves it to the next turn (T9) and runs it.
    const { events } = await startWorker(ctx, store, 'w', appendTurn(store), { sweepIntervalMs: 200 });
    await waitFor('the orphaned input to be committed', () => events.some((e) => e.type === 'committed'));
    expect(await inputsInGraph(store, 'nobody')).toEqual(new Map([[late.inputId, 1]]));
    expect(await store.listPendingTurnInputs('nobody')).toEqual([]);
  });

  test('keep mode: active input enqueued with no lease live is not dispatched; the sweeper drops the session', async (ctx) => {
    const { store, prefix } = await freshStore(ctx, {
      idleDispatch: false,
      strandedTurnInputs: 'keep',
      activeInputGraceMs: 0,
    });
    const p = await store.enqueuePendingTurnInput({
      sessionId: 'replay',
      ingress: { scope: 'active_turn', turnId: 't1' },
      input: 'for a replay',
    });
    expect(p.state).toBe('pending_active');
    expect(await indexed(prefix)).toEqual([]);
    expect(await sweepDispatchIndex(store, { wake: async () => undefined })).toMatchObject({ visited: 0, woken: [] });
    expect(await store.listPendingTurnInputs('replay')).toEqual([p]);
  });
});
