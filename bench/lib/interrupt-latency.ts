/**
 * interruptLatencyUs (issue 18): from an enqueue with whenBusy 'interrupt' resolving to the
 * running turn's signal aborting, through the idle-dispatch worker helper (pub/sub delivery).
 * One turn at a time, each on its own session: the first input starts a turn that waits for its
 * signal; the interrupting enqueue is timed; the follow-up turn commits before the next round.
 * An abort that lands before the enqueue's reply (the notice can overtake it) counts as 0.
 */
import { Redis } from 'ioredis';
import type { RuntimeCommit } from '../../src/index.js';
import { createIdleDispatchWorker } from '../../src/index.js';
import { baseCommit, INPUT_150, OWNER } from './fixtures.js';
import { progress } from './progress.js';
import { openStore } from './throughput.js';

export async function interruptLatency(
  url: string,
  prefix: string,
  rounds: number,
): Promise<{ p50: number; p99: number }> {
  const store = await openStore(url, prefix, true);
  const conn = new Redis(url, { maxRetriesPerRequest: null });
  let onStarted: (() => void) | undefined;
  let abortedAt = 0;
  let onCommitted: (() => void) | undefined;
  const worker = createIdleDispatchWorker({
    store,
    connection: conn,
    owner: OWNER,
    // Renewals every 20 s: only pub/sub delivers within a round.
    leaseTtlMs: 60_000,
    sweepIntervalMs: 86_400_000,
    vacuumIntervalMs: 2_000_000_000,
    runTurn: async ({ sessionId, claim, signal }): Promise<RuntimeCommit> => {
      if (claim.inputs.length === 1 && (claim.inputs[0]!.input as { first?: boolean }).first === true) {
        await new Promise<void>((resolve) => {
          signal.addEventListener(
            'abort',
            () => {
              abortedAt = performance.now();
              resolve();
            },
            { once: true },
          );
          onStarted?.();
        });
        throw signal.reason;
      }
      return baseCommit(sessionId);
    },
    onEvent: (e) => {
      if (e.type === 'committed') onCommitted?.();
    },
  });
  await worker.waitUntilReady();
  const samples: number[] = [];
  try {
    for (let i = 0; i < rounds; i++) {
      const sessionId = `${prefix}-s${i}`;
      const started = new Promise<void>((r) => {
        onStarted = r;
      });
      const committed = new Promise<void>((r) => {
        onCommitted = r;
      });
      abortedAt = 0;
      await store.enqueuePendingTurnInput({ sessionId, ingress: { scope: 'next_turn' }, input: { first: true } });
      await started;
      await store.enqueuePendingTurnInput({
        sessionId,
        ingress: { scope: 'next_turn' },
        input: INPUT_150,
        whenBusy: 'interrupt',
      });
      const resolvedAt = performance.now();
      while (abortedAt === 0) await new Promise((r) => setImmediate(r));
      samples.push(Math.max(0, abortedAt - resolvedAt) * 1000);
      await committed;
      if (i % 20 === 0) progress(`interrupt latency: ${i}/${rounds}`);
    }
  } finally {
    await worker.close();
    await store.close();
    await conn.quit().catch(() => conn.disconnect());
  }
  samples.sort((a, b) => a - b);
  const at = (q: number) => Math.round(samples[Math.min(samples.length - 1, Math.floor(q * samples.length))]!);
  return { p50: at(0.5), p99: at(0.99) };
}
