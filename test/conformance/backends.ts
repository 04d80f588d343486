/**
 * Runs one conformance suite against both backends. Each test gets a fresh store (Redis: its
 * own key prefix, dropped when the test passes; memory: a new store with a settable clock).
 *
 *   describeBackends('leases', (b) => {
 *     test('...', async (ctx) => { const { store } = await b.fresh(ctx); ... });
 *   });
 *
 * `advance(ms)` lets time pass: the memory clock moves, Redis really waits (keep it short).
 */
import { describe, type TestContext } from 'vitest';
import type { RuntimeStore, TelemetryOptions } from '../../src/contract/types.js';
import { createInMemoryRuntimeStore } from '../../src/memory/memory-store.js';
import { createRedisRuntimeStore } from '../../src/redis/redis-store.js';
import { redisTarget, testPrefix } from '../support/prefix.js';

export interface FreshStore {
  store: RuntimeStore;
  /** Lets `ms` of store time pass. */
  advance(ms: number): Promise<void>;
  /** Redis only: the key prefix of this test. */
  prefix?: string;
}

export interface StoreOptions {
  strandedTurnInputs?: 'requeue' | 'keep';
  activeInputGraceMs?: number;
  tombstoneRetentionMs?: number;
  sessionRetentionMs?: number;
  telemetry?: TelemetryOptions;
  maxPendingPerSession?: number;
  pendingTtlMs?: number;
}

export interface Backend {
  name: 'memory' | 'redis';
  fresh(ctx: TestContext, options?: StoreOptions): Promise<FreshStore>;
}

export const memoryBackend: Backend = {
  name: 'memory',
  async fresh(_ctx, options = {}) {
    let now = 1_000_000;
    const store = createInMemoryRuntimeStore({ ...options, now: () => now });
    return {
      store,
      async advance(ms) {
        now += ms;
      },
    };
  },
};

export const redisBackend: Backend = {
  name: 'redis',
  async fresh(ctx, options = {}) {
    const prefix = testPrefix(ctx);
    const store = await createRedisRuntimeStore({
      // A URL on a standalone server; under `npm run test:cluster` the test file's shared Cluster client.
      redis: redisTarget(),
      keyPrefix: prefix,
      idleDispatch: false,
      ...options,
    });
    ctx.onTestFinished(() => store.close());
    return {
      store,
      prefix,
      async advance(ms) {
        await new Promise((r) => setTimeout(r, ms));
      },
    };
  },
};

export const BACKENDS: Backend[] = [memoryBackend, redisBackend];

export function describeBackends(title: string, body: (backend: Backend) => void): void {
  for (const backend of BACKENDS) {
    describe(`${title} [${backend.name}]`, () => body(backend));
  }
}
