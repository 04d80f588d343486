/**
 * Issue 18, bursts: the worker helper's debounceMs / maxDebounceMs. A wake-up waits until the
 * session's newest next-turn input is debounceMs old (BullMQ's moveToDelayed on the wake job, so
 * later wake-ups fold into it), but no longer than maxDebounceMs after the oldest waiting input.
 */
import { describe, expect, test } from 'vitest';
import { isStoreError } from '../../src/contract/errors.js';
import { createIdleDispatchWorker } from '../../src/dispatch/index.js';
import { appendTurn, bullConnection, freshStore, owner, sleep, startWorker, waitFor } from './helpers.js';

describe('idle-dispatch worker: debounce', () => {
  test('a burst of messages becomes one turn, started only once the session has been quiet for debounceMs', async (ctx) => {
    const { store } = await freshStore(ctx);
    const turn = appendTurn(store);
    const startedAt: number[] = [];
    const w = await startWorker(
      ctx,
      store,
      'w',
      async (c) => {
        startedAt.push(Date.now());
        return turn(c);
      },
      { debounceMs: 250 },
    );
    const s = 'burst';
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) {
      ids.push(
        (await store.enqueuePendingTurnInput({ sessionId: s, ingress: { scope: 'next_turn' }, input: i })).inputId,
      );
      await sleep(40);
    }
    const lastAt = Date.now() - 40;
    await waitFor('the turn', () => w.events.some((e) => e.type === 'committed'), 5000);
    const committed = w.events.filter((e) => e.type === 'committed');
    expect(committed).toHaveLength(1);
    expect(committed[0]).toMatchObject({ inputIds: ids });
    expect(startedAt[0]! - lastAt).toBeGreaterThanOrEqual(150);
    expect(w.events.some((e) => e.type === 'debounced')).toBe(true);
    expect(w.events.some((e) => e.type === 'failed')).toBe(false);
  });

  test('maxDebounceMs: a steady stream still gets a turn within the cap', async (ctx) => {
    const { store } = await freshStore(ctx);
    const turn = appendTurn(store);
    const startedAt: number[] = [];
    const w = await startWorker(
      ctx,
      store,
      'w',
      async (c) => {
        startedAt.push(Date.now());
        return turn(c);
      },
      { debounceMs: 200, maxDebounceMs: 400 },
    );
    const s = 'stream';
    const t0 = Date.now();
    let n = 0;
    while (Date.now() - t0 < 1200) {
      await store.enqueuePendingTurnInput({ sessionId: s, ingress: { scope: 'next_turn' }, input: n++ });
      await sleep(50);
    }
    await waitFor('a turn', () => startedAt.length > 0, 5000);
    // Input every 50 ms never leaves the session quiet for 200 ms: only the cap starts the turn.
    expect(startedAt[0]! - t0).toBeLessThan(1000);
    await waitFor('every input committed', async () => (await store.listPendingTurnInputs(s)).length === 0, 10_000);
    expect(w.events.filter((e) => e.type === 'committed').length).toBeLessThan(n);
  });

  test('debounce options are validated', async (ctx) => {
    const { store } = await freshStore(ctx);
    const base = {
      store,
      connection: bullConnection(ctx),
      owner: owner('w'),
      leaseTtlMs: 1000,
      runTurn: appendTurn(store),
    };
    for (const bad of [
      { debounceMs: -1 },
      { debounceMs: 1.5 },
      { debounceMs: 600_001 },
      { debounceMs: 100, maxDebounceMs: 50 },
    ]) {
      let e: unknown;
      try {
        createIdleDispatchWorker({ ...base, ...bad });
      } catch (err) {
        e = err;
      }
      expect(isStoreError(e, 'InvalidInput'), JSON.stringify(bad)).toBe(true);
    }
  });
});
