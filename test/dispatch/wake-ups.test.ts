/**
 * Wake-ups on the dispatch queue (SPEC 11): a job `wake` with data { sessionId } only, on
 * `<prefix>-idle-dispatch` with BullMQ prefix `{<prefix>}`, deduplicated per session; and the
 * keepLastIfActive follow-up: wake-ups that arrive while the session's job is active yield exactly
 * one more run.
 */
import { describe, expect, test } from 'vitest';
import { WakeQueue } from '../../src/dispatch/index.js';
import { adminClient } from '../support/prefix.js';
import {
  appendTurn,
  bullConnection,
  dispatchQueue,
  freshStore,
  gate,
  inputsInGraph,
  sleep,
  startWorker,
  waitFor,
} from './helpers.js';

describe('wake-ups', () => {
  test('an enqueue of next-turn input sends a wake-up; a burst collapses into one waiting job per session', async (ctx) => {
    const { store, prefix } = await freshStore(ctx);
    for (let i = 0; i < 10; i++) {
      await store.enqueuePendingTurnInput({ sessionId: 'burst', ingress: { scope: 'next_turn' }, input: { i } });
    }
    await store.enqueuePendingTurnInput({ sessionId: 'other', ingress: { scope: 'next_turn' }, input: 'x' });
    // Active-turn input for an unstamped turn is not dispatchable: no wake-up.
    await store.enqueuePendingTurnInput({
      sessionId: 'active-only',
      ingress: { scope: 'active_turn', turnId: 't1' },
      input: 'y',
    });
    await store.close(); // waits for the wake-ups in flight

    const queue = dispatchQueue(ctx, prefix);
    const waiting = await queue.getJobs(['waiting', 'wait', 'prioritized'] as never);
    const bySession = waiting
      .map((j) => ({ name: j.name, data: j.data }))
      .sort((a, b) => a.data.sessionId.localeCompare(b.data.sessionId));
    expect(bySession).toEqual([
      { name: 'wake', data: { sessionId: 'burst' } },
      { name: 'wake', data: { sessionId: 'other' } },
    ]);
    expect(await queue.getWaitingCount()).toBe(2);
    // The queue's keys are hash-tagged with the prefix (one slot on Cluster).
    const keys = await adminClient().keys(`{${prefix}}:${prefix}-idle-dispatch:*`);
    expect(keys.length).toBeGreaterThan(0);
  });

  test('a next-turn enqueue sends its wake-up right behind the script call, before the reply', async (ctx) => {
    const { store, prefix } = await freshStore(ctx);
    const events: string[] = [];
    const c = store.ctx as unknown as { wake: (sessionId: string) => void };
    const send = c.wake;
    Object.defineProperty(c, 'wake', {
      value: (sessionId: string) => {
        events.push(`wake ${sessionId}`);
        send(sessionId);
      },
    });
    const enqueue = (sessionId: string, sourceKey: string, input: number) =>
      store.enqueuePendingTurnInput({ sessionId, ingress: { scope: 'next_turn' }, sourceKey, input }).then(
        () => events.push(`reply ${sessionId}`),
        (e: { code?: string }) => events.push(`${e.code} ${sessionId}`),
      );
    await enqueue('a', 'k', 1);
    // A source-key conflict fails after its wake-up went out: a spurious wake-up finds nothing new.
    await enqueue('a', 'k', 2);
    // Active-turn input still waits for the reply (only some of it is dispatchable).
    await store.enqueuePendingTurnInput({ sessionId: 'b', ingress: { scope: 'active_turn', turnId: 't' }, input: 3 });
    expect(events).toEqual(['wake a', 'reply a', 'wake a', 'PendingTurnInputSourceKeyConflict a']);
    await store.close();
    expect(await dispatchQueue(ctx, prefix).getWaitingCount()).toBe(1);
  });

  test('a store with idleDispatch false sends nothing (the dispatch index is still kept)', async (ctx) => {
    const { store, prefix } = await freshStore(ctx, { idleDispatch: false });
    await store.enqueuePendingTurnInput({ sessionId: 's', ingress: { scope: 'next_turn' }, input: 1 });
    await store.close();
    expect(await dispatchQueue(ctx, prefix).getWaitingCount()).toBe(0);
    expect(await adminClient().zscore(`${prefix}:shard:{0}:dispatch`, 's')).not.toBeNull();
  });

  test('keepLastIfActive: wake-ups while the session job is active yield exactly one follow-up run', async (ctx) => {
    // idleDispatch false: every wake-up in this test is sent by hand, so the count is exact.
    const { store, prefix } = await freshStore(ctx, { idleDispatch: false });
    const first = gate();
    const claims: string[][] = [];
    const turn = appendTurn(store);
    const { events } = await startWorker(ctx, store, 'w', async (c) => {
      claims.push(c.claim.inputs.map((i) => i.inputId));
      if (claims.length === 1) await first.promise;
      return turn(c);
    });
    const sender = new WakeQueue(`${prefix}-idle-dispatch`, `{${prefix}}`, bullConnection(ctx));
    ctx.onTestFinished(() => sender.close());
    const queue = dispatchQueue(ctx, prefix);

    const a = await store.enqueuePendingTurnInput({ sessionId: 's', ingress: { scope: 'next_turn' }, input: 'a' });
    await sender.send('s');
    await waitFor('the first run to start', () => claims.length === 1);

    const later: string[] = [];
    for (let i = 0; i < 3; i++) {
      const row = await store.enqueuePendingTurnInput({ sessionId: 's', ingress: { scope: 'next_turn' }, input: i });
      later.push(row.inputId);
      await sender.send('s');
    }
    // While the job is active, the follow-up is held by the deduplication, not queued.
    expect(await queue.getWaitingCount()).toBe(0);
    expect(await queue.getActiveCount()).toBe(1);

    first.open();
    await waitFor('the follow-up run to commit', () => events.filter((e) => e.type === 'committed').length === 2);
    await sleep(500);
    const runs = events.filter((e) => e.type === 'claimed' || e.type === 'busy' || e.type === 'idle');
    expect(runs.map((e) => e.type)).toEqual(['claimed', 'claimed']);
    expect(claims).toEqual([[a.inputId], later]);
    const counts = await inputsInGraph(store, 's');
    expect([...counts.values()]).toEqual([1, 1, 1, 1]);
    expect(await queue.getWaitingCount()).toBe(0);
  });
});
