/**
 * SPEC 17.2, 17.3 with the idle-dispatch worker: its turn span links to the enqueue spans of the
 * inputs it consumed, the store calls of the turn are its children, and the wake-up counters.
 */
import { SpanKind } from '@opentelemetry/api';
import { expect, test } from 'vitest';
import { sweepDispatchIndex } from '../../src/dispatch/index.js';
import { testOtel } from '../support/otel.js';
import { testPrefix } from '../support/prefix.js';
import { appendTurn, openStore, startWorker, waitFor } from './helpers.js';

test('the turn span links to the enqueue spans of its inputs; wake-ups sent and swept are counted', async (ctx) => {
  const otel = testOtel();
  const store = await openStore(ctx, testPrefix(ctx), {
    telemetry: { tracerProvider: otel.tracerProvider, meterProvider: otel.meterProvider, sessionId: 'raw' },
  });
  const a = await store.enqueuePendingTurnInput({
    sessionId: 'chat',
    ingress: { scope: 'next_turn' },
    input: { t: 1 },
  });
  const b = await store.enqueuePendingTurnInput({
    sessionId: 'chat',
    ingress: { scope: 'next_turn' },
    input: { t: 2 },
  });
  // The sweeper finds the session dispatchable and wakes it (a wake function that sends nothing).
  const report = await sweepDispatchIndex(store, { wake: async () => {} });
  expect(report.woken).toEqual(['chat']);

  const worker = await startWorker(ctx, store, 'w1', appendTurn(store));
  await waitFor('the commit', async () => worker.events.some((e) => e.type === 'committed'));
  await waitFor('the turn span', async () => otel.spans('redis-turn-store.turn').length > 0);

  const enqueues = otel.spans('redis-turn-store.enqueuePendingTurnInput');
  expect(enqueues.map((s) => s.attributes['messaging.message.id'])).toEqual([a.inputId, b.inputId]);
  const [turn] = otel.spans('redis-turn-store.turn');
  expect(turn.kind).toBe(SpanKind.CONSUMER);
  expect(turn.attributes).toMatchObject({
    'messaging.operation.type': 'process',
    'redis_turn_store.session.id': 'chat',
    'redis_turn_store.outcome': 'committed',
  });
  expect(turn.links.map((l) => l.context.spanId).sort()).toEqual(enqueues.map((s) => s.spanContext().spanId).sort());
  expect(turn.links.map((l) => l.attributes?.['messaging.message.id']).sort()).toEqual([a.inputId, b.inputId].sort());
  // The store calls of the turn (lease, claim, commit) are children of the turn span.
  const turnId = turn.spanContext().spanId;
  for (const name of ['tryClaimSessionExecutionLease', 'claimNextTurnInputs', 'commitRuntimeState']) {
    const [child] = otel.spans(`redis-turn-store.${name}`);
    expect(child?.parentSpanContext?.spanId, name).toBe(turnId);
    expect(child.spanContext().traceId).toBe(turn.spanContext().traceId);
  }

  const m = await otel.metrics();
  expect(m.get('redis_turn_store.wakeups.sent')?.total).toBeGreaterThanOrEqual(2);
  // Our sweep, and the worker's first sweep at start-up if it ran before the commit.
  expect(m.get('redis_turn_store.wakeups.swept')?.total).toBeGreaterThanOrEqual(1);
  expect(m.get('redis_turn_store.inputs.claimed')?.total).toBe(2);
  expect(m.get('redis_turn_store.inputs.completed')?.total).toBe(2);
  const turnDurations = m
    .get('redis_turn_store.operation.duration')
    ?.points.filter((p) => p.attributes['redis_turn_store.operation'] === 'turn');
  expect(turnDurations?.length).toBe(1);
  await worker.dispatch.close();
  await otel.shutdown();
});

test('a failed run: the turn span reports run_failed and the inputs out of attempts count as failed', async (ctx) => {
  const otel = testOtel();
  const store = await openStore(ctx, testPrefix(ctx), {
    telemetry: { tracerProvider: otel.tracerProvider, meterProvider: otel.meterProvider },
  });
  await store.enqueuePendingTurnInput({ sessionId: 'poison', ingress: { scope: 'next_turn' }, input: 'boom' });
  const worker = await startWorker(
    ctx,
    store,
    'w1',
    async () => {
      throw new Error('model exploded');
    },
    { maxAttempts: 1, failureBackoffMs: 10 },
  );
  await waitFor('the input failed', async () => worker.events.some((e) => e.type === 'input_failed'));
  await waitFor('the turn span', async () => otel.spans('redis-turn-store.turn').length > 0);
  const [turn] = otel.spans('redis-turn-store.turn');
  expect(turn.attributes['redis_turn_store.outcome']).toBe('run_failed');
  const m = await otel.metrics();
  expect(m.get('redis_turn_store.inputs.failed')?.total).toBe(1);
  await worker.dispatch.close();
  await otel.shutdown();
});

test('an interrupted run: the turn span reports interrupted and its inputs count as interrupted', async (ctx) => {
  const otel = testOtel();
  const store = await openStore(ctx, testPrefix(ctx), {
    telemetry: { tracerProvider: otel.tracerProvider, meterProvider: otel.meterProvider },
  });
  let started: (() => void) | undefined;
  const running = new Promise<void>((r) => {
    started = r;
  });
  const worker = await startWorker(
    ctx,
    store,
    'w1',
    async (c) => {
      started?.();
      await new Promise<void>((resolve) => c.signal.addEventListener('abort', () => resolve(), { once: true }));
      throw c.signal.reason;
    },
    { leaseTtlMs: 30_000 },
  );
  await store.enqueuePendingTurnInput({ sessionId: 'chat', ingress: { scope: 'next_turn' }, input: 'first' });
  await running;
  await store.enqueuePendingTurnInput({
    sessionId: 'chat',
    ingress: { scope: 'next_turn' },
    input: 'stop',
    whenBusy: 'interrupt',
  });
  await waitFor('the interrupt', async () => worker.events.some((e) => e.type === 'interrupted'));
  await waitFor('the turn span', async () =>
    otel.spans('redis-turn-store.turn').some((s) => s.attributes['redis_turn_store.outcome'] === 'interrupted'),
  );
  const m = await otel.metrics();
  expect(m.get('redis_turn_store.inputs.interrupted')?.total).toBe(1);
  await worker.dispatch.close();
  await otel.shutdown();
});
