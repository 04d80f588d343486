/**
 * Issue 17, defect 3: a poison input (runTurn always throws on it) must not retry forever nor
 * block its session. The helper counts failed runs per input (SPEC 11.1), the claim isolates
 * inputs that failed before, and an input out of attempts becomes `failed` (input_failed).
 */
import { describe, expect, test } from 'vitest';
import type { IdleDispatchEvent } from '../../src/dispatch/index.js';
import { appendTurn, dispatchQueue, freshStore, inputsInGraph, sleep, startWorker, waitFor } from './helpers.js';

describe('idle-dispatch worker: failing runs', () => {
  test('a poison input fails after maxAttempts runs; the other inputs of its session commit once', async (ctx) => {
    const { store, prefix } = await freshStore(ctx);
    const turn = appendTurn(store);
    const runs: string[][] = [];
    const { events, dispatch } = await startWorker(
      ctx,
      store,
      'w',
      async (c) => {
        const ids = c.claim.inputs.map((i) => i.inputId);
        runs.push(ids);
        if (ids.includes('poison')) throw new Error(`cannot handle ${'x'.repeat(2000)}`);
        return turn(c);
      },
      { maxAttempts: 3 },
    );
    for (const id of ['a', 'poison', 'c']) {
      await store.enqueuePendingTurnInput({ sessionId: 's', inputId: id, ingress: { scope: 'next_turn' }, input: id });
    }
    await dispatch.sweep();
    const failedEvent = await waitFor(
      'input_failed',
      () => events.find((e): e is Extract<IdleDispatchEvent, { type: 'input_failed' }> => e.type === 'input_failed'),
      20_000,
    );
    await waitFor('a and c to commit', async () => (await inputsInGraph(store, 's')).size === 2, 20_000);
    expect(failedEvent).toMatchObject({ sessionId: 's', inputId: 'poison', attempts: 3 });
    expect(failedEvent.lastError.length).toBe(1000);
    expect(failedEvent.lastError.startsWith('cannot handle x')).toBe(true);
    // Give a retry storm time to show itself: there is none.
    await sleep(1500);
    expect(runs.filter((r) => r.includes('poison'))).toHaveLength(3);
    expect(runs).toEqual([['a', 'poison', 'c'], ['a'], ['poison'], ['poison'], ['c']]);
    expect(await inputsInGraph(store, 's')).toEqual(
      new Map([
        ['a', 1],
        ['c', 1],
      ]),
    );
    const [failed] = await store.listFailedTurnInputs('s');
    expect(failed).toMatchObject({ inputId: 'poison', state: 'failed', attempts: 3 });
    expect(await store.listPendingTurnInputs('s')).toEqual([]);
    // The wake-ups succeeded: nothing for BullMQ to retry.
    expect(await dispatchQueue(ctx, prefix).getFailed()).toEqual([]);
    expect(events.filter((e) => e.type === 'input_failed')).toHaveLength(1);

    // Later input of the session goes through, each input run once, the poison input never again
    // (in one batch or two: the wake-up of 'd' may start a turn before 'e' arrives).
    const before = runs.length;
    for (const id of ['d', 'e']) {
      await store.enqueuePendingTurnInput({ sessionId: 's', inputId: id, ingress: { scope: 'next_turn' }, input: id });
    }
    await waitFor('d and e to commit', async () => (await inputsInGraph(store, 's')).size === 4, 20_000);
    expect(runs.slice(before).flat().sort()).toEqual(['d', 'e']);
  });

  test('retryFailedTurnInputs wakes the session; the input is processed at its position', async (ctx) => {
    const { store } = await freshStore(ctx);
    const turn = appendTurn(store);
    let broken = true;
    const runs: string[][] = [];
    const { dispatch } = await startWorker(
      ctx,
      store,
      'w',
      async (c) => {
        runs.push(c.claim.inputs.map((i) => i.inputId));
        if (broken) throw new Error('down');
        return turn(c);
      },
      { maxAttempts: 1 },
    );
    await store.enqueuePendingTurnInput({ sessionId: 's', inputId: 'a', ingress: { scope: 'next_turn' }, input: 1 });
    await dispatch.sweep();
    await waitFor('a to fail', async () => (await store.listFailedTurnInputs('s')).length === 1, 20_000);
    broken = false;
    const [r] = await store.retryFailedTurnInputs('s', ['a']);
    expect(r.outcome.outcome).toBe('retried');
    await waitFor('a to commit', async () => (await inputsInGraph(store, 's')).get('a') === 1, 20_000);
    expect(runs).toEqual([['a'], ['a']]);
    expect(await store.listFailedTurnInputs('s')).toEqual([]);
  });

  test('maxAttempts is validated', async (ctx) => {
    const { store } = await freshStore(ctx);
    await expect(startWorker(ctx, store, 'w', appendTurn(store), { maxAttempts: 0 })).rejects.toMatchObject({
      code: 'InvalidInput',
    });
  });
});
