/**
 * The main job (`npm start`) end to end against the test Redis: real dispatch workers, a
 * mid-turn admission, a cancellation, a crash recovered by T9, and every input exactly once in
 * the session graphs. Plus where the demo finds its Redis.
 */
import { describe, expect, test } from 'vitest';
import { findRedis, NO_REDIS_MESSAGE, pings } from '../../src/demo/redis-source.js';
import { runDemo } from '../../src/demo/run-demo.js';
import { percentile } from '../../src/demo/stats.js';
import { redisUrl, testPrefix } from '../support/prefix.js';
import { freePort, redisServerBinary } from '../support/redis-server.js';

describe('demo', () => {
  test('runs end to end: every input processed exactly once, with mid-turn input, a cancellation and a crash', async (ctx) => {
    const keyPrefix = testPrefix(ctx);
    const lines: string[] = [];
    const started = Date.now();
    const summary = await runDemo({ redisUrl: redisUrl(), keyPrefix, log: (l) => lines.push(l) });
    const output = lines.join('\n');
    expect(summary.problems, output).toEqual([]);
    expect(summary.ok).toBe(true);
    expect(summary.exactlyOnce).toBe(true);
    expect(summary.sessions).toHaveLength(6);
    // 5 sessions x 4 messages, 2 for the crashed session, 1 mid-turn active input, 1 cancelled.
    expect(summary.inputsEnqueued).toBe(24);
    expect(summary.inputsCancelled).toBe(1);
    expect(summary.inputsProcessed).toBe(23);
    expect(summary.activeAdmitted).toBe(1);
    expect(summary.crashRecovered).toBe(true);
    expect(summary.latencyMs.p50).toBeLessThanOrEqual(summary.latencyMs.p99);
    expect(Date.now() - started).toBeLessThan(30_000);

    // Progress is visible while it runs: one line per event, then the summary.
    expect(output).toContain(`npm run dashboard -- --prefix ${keyPrefix}`);
    expect(output).toMatch(/worker-x +chat-crash holds tic:1:1 \(next\) and tic:2:1 \(active, accepted\), .* CRASH/);
    expect(output).toMatch(/sweeper re-signalled .*chat-crash/);
    expect(output).toMatch(/chat-crash generation 2: claimed 2 next-turn input\(s\) tic:1:2 \(T9:/);
    expect(output).toMatch(/after_work checkpoint admitted ti_/);
    expect(output).toMatch(/then cancelled it before any turn took it: cancelled/);
    expect(output).toContain('inputs processed  23, each exactly once');
    expect(output).toMatch(/latency +enqueue -> commit p50 \d+ ms, p99/);
    expect(output).toContain('result            OK');
  });

  test('finds its Redis: REDIS_URL, else 127.0.0.1:6379, else a spawned redis-server, else says docker compose up -d', async () => {
    const url = redisUrl();
    const fromEnv = await findRedis({ REDIS_URL: url });
    expect(fromEnv).toMatchObject({ url, how: 'REDIS_URL', spawned: false });

    const nothing = `redis://127.0.0.1:${await freePort()}`;
    expect(await pings(nothing, 300)).toBe(false);
    await expect(findRedis({ REDIS_URL: nothing })).rejects.toThrow(/does not answer PING/);
    expect(await findRedis({}, { localUrl: nothing, redisServer: null })).toBeNull();
    expect(NO_REDIS_MESSAGE).toContain('docker compose up -d');

    const bin = redisServerBinary();
    if (bin) {
      const spawned = await findRedis({}, { localUrl: nothing, redisServer: bin });
      try {
        expect(spawned?.spawned).toBe(true);
        expect(await pings(spawned?.url ?? '')).toBe(true);
      } finally {
        await spawned?.stop();
      }
      expect(await pings(spawned?.url ?? '', 300)).toBe(false);
    }
  });

  test('percentile is nearest-rank', () => {
    const xs = Array.from({ length: 100 }, (_, i) => 100 - i);
    expect(percentile(xs, 50)).toBe(50);
    expect(percentile(xs, 99)).toBe(99);
    expect(percentile([7], 99)).toBe(7);
    expect(Number.isNaN(percentile([], 50))).toBe(true);
  });
});
