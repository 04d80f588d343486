/**
 * examples/otel-prometheus.ts (README "Observability") runs: the SDK registered globally, a
 * Prometheus endpoint serving the store's counters, histogram and stats() gauges.
 */
import { createServer } from 'node:net';
import { expect, test } from 'vitest';
import { startObservedStore } from '../../examples/otel-prometheus.js';
import { redisUrl, testPrefix } from '../support/prefix.js';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

test('the Prometheus example serves the store metrics', async (ctx) => {
  const observed = await startObservedStore({
    redisUrl: redisUrl(),
    keyPrefix: testPrefix(ctx),
    port: await freePort(),
  });
  ctx.onTestFinished(() => observed.shutdown());
  await observed.store.enqueuePendingTurnInput({ sessionId: 's1', ingress: { scope: 'next_turn' }, input: 'hi' });
  await observed.store.enqueuePendingTurnInput({ sessionId: 's2', ingress: { scope: 'next_turn' }, input: 'ho' });
  const text = await (await fetch(observed.metricsUrl)).text();
  expect(text).toMatch(/^redis_turn_store_inputs_enqueued(_total)?\{[^}]*\} 2$/m);
  expect(text).toMatch(
    /^redis_turn_store_operation_duration(_seconds)?_count\{[^}]*redis_turn_store_operation="enqueuePendingTurnInput"[^}]*\} 2$/m,
  );
  expect(text).toMatch(/^redis_turn_store_inputs_pending(_ratio)?\{[^}]*\} 2$/m);
  expect(text).toMatch(/^redis_turn_store_sessions_pending\{[^}]*\} 2$/m);
});
