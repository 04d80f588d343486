/**
 * createIdleDispatchWorker (SPEC 11): acquire, claim next, runTurn with renewals, fenced commit
 * with completion and release; on error abandon, release and let BullMQ retry; graceful close.
 */
import { Redis } from 'ioredis';
import { describe, expect, test } from 'vitest';
import { isStoreError } from '../../src/contract/errors.js';
import {
  createIdleDispatchWorker,
  NOT_A_REDIS_STORE_ISSUE,
  sweepDispatchIndex,
  WakeQueue,
} from '../../src/dispatch/index.js';
import { inspectSession } from '../../src/inspect/inspect-session.js';
import type { InspectView } from '../../src/inspect/inspect-view.js';
import { createInMemoryRuntimeStore } from '../../src/memory/memory-store.js';
import { redisUrl } from '../support/prefix.js';
import {
  appendTurn,
  bullConnection,
  dispatchQueue,
  freshStore,
  gate,
  inputsInGraph,
  owner,
  sleep,
  startWorker,
  turnCommit,
  waitFor,
} from './helpers.js';

describe('idle-dispatch worker', () => {
  test('processes inputs end to end: every input completed exactly once, read back from the graphs', async (ctx) => {
    const { store } = await freshStore(ctx);
    const turn = appendTurn(store);
    const slowTurn = async (c: Parameters<typeof turn>[0]) => {
      await sleep(10 + Math.floor(Math.random() * 30));
      return turn(c);
    };
    const w1 = await startWorker(ctx, store, 'w1', slowTurn, { concurrency: 2 });
    const w2 = await startWorker(ctx, store, 'w2', slowTurn, { concurrency: 2 });

    const sessions = ['s-1', 's-2', 's-3', 's-4'];
    const expected = new Map<string, string>();
    await Promise.all(
      sessions.map(async (sessionId) => {
        for (let i = 0; i < 6; i++) {
          await sleep(Math.floor(Math.random() * 40));
          const row = await store.enqueuePendingTurnInput({ sessionId, ingress: { scope: 'next_turn' }, input: { i } });
          expected.set(row.inputId, sessionId);
        }
      }),
    );
    await waitFor('every input in its graph', async () => {
      for (const sessionId of sessions) {
        const counts = await inputsInGraph(store, sessionId);
        const want = [...expected].filter(([, s]) => s === sessionId).length;
        if (counts.size !== want) return false;
      }
      return true;
    });
    for (const sessionId of sessions) {
      const counts = await inputsInGraph(store, sessionId);
      for (const [id, n] of counts) {
        expect(expected.get(id)).toBe(sessionId);
        expect(n).toBe(1);
      }
      expect(await store.listPendingTurnInputs(sessionId)).toEqual([]);
      const view = await inspectSession(store, sessionId);
      expect(view.lease.status).toBe('released');
      expect(view.counts.nonTerminal).toBe(0);
    }
    const committed = [...w1.events, ...w2.events].flatMap((e) => (e.type === 'committed' ? e.inputIds : []));
    expect(committed.sort()).toEqual([...expected.keys()].sort());
  });

  test('a failed renewal aborts the signal and the run does not commit; the retry does', async (ctx) => {
    const { store } = await freshStore(ctx, { idleDispatch: false });
    const seenAbort: boolean[] = [];
    let attempt = 0;
    const { events, dispatch } = await startWorker(
      ctx,
      store,
      'w',
      async ({ sessionId, fence, claim, signal }) => {
        attempt += 1;
        const nodes = claim.inputs.map((i) => ({
          nodeId: `n${attempt}-${i.inputId}`,
          timestamp: 't',
          inputId: i.inputId,
        }));
        if (attempt === 1) {
          // The lease is lost under the running turn (here: released behind its back).
          await store.releaseSessionExecutionLease(fence);
          await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
          seenAbort.push(signal.aborted);
          // A misbehaving turn returns a commit anyway: the worker must not commit it.
        }
        return turnCommit(sessionId, nodes, undefined, 0, { attempt });
      },
      { leaseTtlMs: 600 },
    );
    const row = await store.enqueuePendingTurnInput({ sessionId: 's', ingress: { scope: 'next_turn' }, input: 'x' });
    await dispatch.sweep();
    await waitFor('the retry to commit', () => events.some((e) => e.type === 'committed'), 15_000);
    expect(seenAbort).toEqual([true]);
    const kinds = events.map((e) => e.type).filter((t) => t !== 'swept');
    expect(kinds.slice(0, 3)).toEqual(['claimed', 'renewal_failed', 'failed']);
    const failed = events.find((e) => e.type === 'failed');
    expect(isStoreError(failed && 'error' in failed ? failed.error : undefined, 'SessionExecutionLeaseExpired')).toBe(
      true,
    );
    const read = await store.session('s').loadSession({ kind: 'full_graph' });
    expect(read?.headRevision).toBe(1);
    expect(read?.config).toEqual({ attempt: 2 });
    expect(read?.graph.nodes.map((n) => n.nodeId)).toEqual([`n2-${row.inputId}`]);
  });

  test('runTurn throwing: the claim is abandoned, the lease released, and the input processed on retry', async (ctx) => {
    const { store } = await freshStore(ctx, { idleDispatch: false });
    const turn = appendTurn(store);
    let attempt = 0;
    let afterFailure: Promise<InspectView> | undefined;
    const { events, dispatch } = await startWorker(
      ctx,
      store,
      'w',
      async (c) => {
        attempt += 1;
        if (attempt === 1) throw new Error('model provider timed out');
        return turn(c);
      },
      {
        onEvent: (e) => {
          if (e.type === 'failed') afterFailure = inspectSession(store, 's');
        },
      },
    );
    const row = await store.enqueuePendingTurnInput({ sessionId: 's', ingress: { scope: 'next_turn' }, input: 'x' });
    await dispatch.sweep();
    await waitFor('the retry to commit', () => events.some((e) => e.type === 'committed'), 15_000);

    const failed = events.find((e) => e.type === 'failed');
    expect(failed && 'error' in failed ? (failed.error as Error).message : '').toBe('model provider timed out');
    const view = await afterFailure;
    expect(view?.lease.status).toBe('released');
    expect(view?.rows.map((r) => [r.inputId, r.state, r.claim])).toEqual([
      [row.inputId, 'deferred_next_turn', undefined],
    ]);
    expect(attempt).toBe(2);
    expect(await inputsInGraph(store, 's')).toEqual(new Map([[row.inputId, 1]]));
  });

  test('a busy session is left to its holder; a wake-up with nothing to claim releases', async (ctx) => {
    const { store } = await freshStore(ctx, { idleDispatch: false });
    const { events, dispatch } = await startWorker(ctx, store, 'w', appendTurn(store));
    const held = await store.tryClaimSessionExecutionLease('s', owner('other'), 60_000);
    await store.enqueuePendingTurnInput({ sessionId: 's', ingress: { scope: 'next_turn' }, input: 1 });
    // The sweeper keeps the session (a live lease) and sends nothing.
    const report = await dispatch.sweep();
    expect(report).toMatchObject({ leased: 1, woken: [] });
    const q = new WakeQueue(dispatch.queueName, dispatch.queuePrefix, bullConnection(ctx));
    ctx.onTestFinished(() => q.close());
    await q.send('s');
    await waitFor('busy', () => events.some((e) => e.type === 'busy'));
    if (held.outcome !== 'acquired') throw new Error('expected acquired');
    await store.releaseSessionExecutionLease(held.lease);
    await q.send('empty');
    await waitFor('idle', () => events.some((e) => e.type === 'idle'));
    expect(events.find((e) => e.type === 'idle')).toMatchObject({ sessionId: 'empty', generation: 1 });
    expect((await inspectSession(store, 'empty')).lease.status).toBe('released');
  });

  test('close() aborts a run in flight, abandons its claim and releases its lease; another worker takes over', async (ctx) => {
    const { store } = await freshStore(ctx, { idleDispatch: false });
    const started = gate();
    let signalSeen: AbortSignal | undefined;
    const first = await startWorker(ctx, store, 'w1', async ({ signal }) => {
      signalSeen = signal;
      started.open();
      await new Promise(() => undefined); // never finishes on its own
      throw new Error('unreachable');
    });
    const row = await store.enqueuePendingTurnInput({ sessionId: 's', ingress: { scope: 'next_turn' }, input: 1 });
    await first.dispatch.sweep();
    await started.promise;
    expect((await inspectSession(store, 's')).lease.status).toBe('live');

    await first.dispatch.close();
    expect(signalSeen?.aborted).toBe(true);
    const view = await inspectSession(store, 's');
    expect(view.lease.status).toBe('released');
    expect(view.rows.map((r) => r.claim)).toEqual([undefined]);
    expect((await store.listPendingTurnInputs('s')).map((r) => r.inputId)).toEqual([row.inputId]);

    const second = await startWorker(ctx, store, 'w2', appendTurn(store), { sweepIntervalMs: 200 });
    await waitFor('the second worker to commit', () => second.events.some((e) => e.type === 'committed'));
    expect(await inputsInGraph(store, 's')).toEqual(new Map([[row.inputId, 1]]));
  });

  test('mid-turn active input claimed through the run context is completed by the commit', async (ctx) => {
    const { store } = await freshStore(ctx, { idleDispatch: false });
    const turn = appendTurn(store);
    let activeIds: string[] = [];
    const { events, dispatch } = await startWorker(ctx, store, 'w', async (c) => {
      const turnId = `turn-${c.claim.claimId}`;
      const a = await store.enqueuePendingTurnInput({
        sessionId: c.sessionId,
        ingress: { scope: 'active_turn', turnId },
        input: 'mid-turn',
      });
      const active = await c.claimActiveTurnInputs(turnId, 'after_work');
      activeIds = active?.inputs.map((i) => i.inputId) ?? [];
      expect(activeIds).toEqual([a.inputId]);
      return turn(c); // lists no completions: the worker adds both claims
    });
    await store.enqueuePendingTurnInput({ sessionId: 's', ingress: { scope: 'next_turn' }, input: 1 });
    await dispatch.sweep();
    await waitFor('commit', () => events.some((e) => e.type === 'committed'));
    const committed = events.find((e) => e.type === 'committed');
    expect(committed && 'inputIds' in committed ? committed.inputIds.length : 0).toBe(2);
    const view = await inspectSession(store, 's');
    expect(view.counts).toMatchObject({ nonTerminal: 0, tombstones: 2 });
  });

  test('a malformed job fails once, without retries', async (ctx) => {
    const { store, prefix } = await freshStore(ctx, { idleDispatch: false });
    const { dispatch } = await startWorker(ctx, store, 'w', appendTurn(store));
    const queue = dispatchQueue(ctx, prefix);
    const job = await queue.add('wake', { nope: 1 }, { attempts: 5, backoff: { type: 'fixed', delay: 10 } });
    await waitFor('the job to fail', async () => (await queue.getJobState(job.id ?? '')) === 'failed');
    const failed = await queue.getJob(job.id ?? '');
    expect(failed?.attemptsMade).toBe(1);
    expect(failed?.failedReason).toContain('expected a `wake` job');
    expect(dispatch.queueName).toBe(`${prefix}-idle-dispatch`);
  });

  test('needs a Redis store and a BullMQ-ready connection', async (ctx) => {
    const memory = createInMemoryRuntimeStore();
    const base = {
      connection: bullConnection(ctx),
      owner: owner('w'),
      leaseTtlMs: 1000,
      runTurn: async () => ({}) as never,
    };
    let error: unknown;
    try {
      createIdleDispatchWorker({ ...base, store: memory });
    } catch (e) {
      error = e;
    }
    expect(isStoreError(error, 'InvalidInput')).toBe(true);
    expect((error as { details: { issues: string[] } }).details.issues).toEqual([NOT_A_REDIS_STORE_ISSUE]);
    await expect(sweepDispatchIndex(memory)).rejects.toMatchObject({ code: 'InvalidInput' });

    const { store } = await freshStore(ctx);
    const retrying = new Redis(redisUrl(), { lazyConnect: true });
    ctx.onTestFinished(() => retrying.disconnect());
    expect(() => createIdleDispatchWorker({ ...base, store, connection: retrying })).toThrow(
      /maxRetriesPerRequest: null/,
    );
    expect(() => createIdleDispatchWorker({ ...base, store, connection: { keyPrefix: 'x:' } })).toThrow(/keyPrefix/);
    expect(() => createIdleDispatchWorker({ ...base, store, leaseTtlMs: 0 })).toThrow(/leaseTtlMs/);
  });
});
