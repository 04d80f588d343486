/**
 * Issue 17 item 4: close() is bounded (closeTimeoutMs) whatever the connection does, and
 * waitUntilReady() rejects (readyTimeoutMs) instead of hanging. BullMQ 6.7's graceful close waits
 * for an `end` event a reconnecting ioredis client never emits (taskforcesh/bullmq#4656), so each
 * outage here runs on a redis-server of the test's own: stopped (SIGSTOP), gone (SIGTERM), or with
 * every connection killed (CLIENT KILL) 20 ms before close().
 */
import { Redis } from 'ioredis';
import { describe, expect, test } from 'vitest';
import { isStoreError } from '../../src/contract/errors.js';
import { createIdleDispatchWorker, type IdleDispatchEvent, type RunTurn } from '../../src/dispatch/index.js';
import { inspectSession } from '../../src/inspect/inspect-session.js';
import { createRedisRuntimeStore } from '../../src/redis/redis-store.js';
import { freePort, spawnRedis } from '../support/redis-server.js';
import { bullConnection, freshStore, gate, owner, sleep } from './helpers.js';

const CLOSE_TIMEOUT_MS = 1000;
/** How long a test lets close() or waitUntilReady() run before calling it hung. */
const HUNG_AFTER_MS = 6000;

/** Settles with the promise's outcome, or 'hung' if it has not settled within `ms`. */
async function within<T>(work: Promise<T>, ms: number): Promise<{ value?: T; error?: unknown; hung?: true }> {
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<{ hung: true }>((r) => {
    timer = setTimeout(() => r({ hung: true }), ms);
  });
  try {
    return await Promise.race([
      work.then(
        (value) => ({ value }),
        (error: unknown) => ({ error }),
      ),
      hung,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** A turn that never finishes on its own: it holds the lease and the claim until aborted. */
function stuckTurn(started: { open(): void }): RunTurn {
  return async () => {
    started.open();
    await new Promise(() => undefined);
    throw new Error('unreachable');
  };
}

type Outage = 'SIGSTOP' | 'SIGTERM' | 'CLIENT KILL';

describe('idle-dispatch worker: bounded close and ready', () => {
  for (const outage of ['SIGSTOP', 'SIGTERM', 'CLIENT KILL'] as Outage[]) {
    test(`close() with a run in flight resolves within closeTimeoutMs after ${outage}`, async (ctx) => {
      const server = await spawnRedis();
      ctx.onTestFinished(async () => {
        server.process.kill('SIGCONT');
        await server.stop();
      });
      const store = await createRedisRuntimeStore({ redis: server.url, keyPrefix: 'close', durability: 'inline' });
      ctx.onTestFinished(async () => {
        await within(store.close(), 2000);
      });
      const connection = new Redis(server.url, { maxRetriesPerRequest: null });
      ctx.onTestFinished(() => connection.disconnect());
      const events: IdleDispatchEvent[] = [];
      const started = gate();
      const dispatch = createIdleDispatchWorker({
        store,
        connection,
        owner: owner('w'),
        leaseTtlMs: 5000,
        sweepIntervalMs: 60_000,
        closeTimeoutMs: CLOSE_TIMEOUT_MS,
        runTurn: stuckTurn(started),
        onEvent: (e) => events.push(e),
      });
      await dispatch.waitUntilReady();
      const row = await store.enqueuePendingTurnInput({ sessionId: 's', ingress: { scope: 'next_turn' }, input: 1 });
      await started.promise; // the store's own wake-up reached the worker: the run holds lease and claim

      if (outage === 'SIGSTOP') {
        server.process.kill('SIGSTOP');
      } else if (outage === 'SIGTERM') {
        await server.stop({ keepDir: true });
      } else {
        const admin = new Redis(server.url);
        await admin.call('CLIENT', 'KILL', 'TYPE', 'normal', 'SKIPME', 'yes');
        admin.disconnect();
        await sleep(20);
      }
      const t0 = Date.now();
      const closed = await within(dispatch.close(), HUNG_AFTER_MS);
      const tookMs = Date.now() - t0;

      expect(closed.hung, `close() did not resolve within ${HUNG_AFTER_MS} ms`).toBeUndefined();
      expect(closed.error).toBeUndefined();
      expect(tookMs).toBeLessThan(CLOSE_TIMEOUT_MS + 1500);
      const timeout = events.find((e) => e.type === 'close_timeout');
      if (outage === 'CLIENT KILL') {
        // Redis is up again: the store reconnects, so the run's claim is abandoned and its lease
        // released; only BullMQ's graceful close was left behind.
        expect(timeout).toMatchObject({ timeoutMs: CLOSE_TIMEOUT_MS, leasesLeftToExpire: [], claimsLeftToExpire: [] });
        expect(timeout && 'unfinished' in timeout ? timeout.unfinished : []).toContain('bullmq_worker');
        const view = await inspectSession(store, 's');
        expect(view.lease.status).toBe('released');
        expect(view.rows.map((r) => [r.inputId, r.claim])).toEqual([[row.inputId, undefined]]);
      } else {
        // Redis answers nothing: the lease and the claim are left to expire, and the event says so.
        expect(timeout).toMatchObject({
          type: 'close_timeout',
          timeoutMs: CLOSE_TIMEOUT_MS,
          leasesLeftToExpire: ['s'],
          claimsLeftToExpire: [{ sessionId: 's', inputIds: [row.inputId] }],
        });
        expect(timeout && 'unfinished' in timeout ? timeout.unfinished : []).toEqual(
          expect.arrayContaining(['runs', 'bullmq_worker']),
        );
      }
      // Idempotent: a second call is the same settled promise.
      expect((await within(dispatch.close(), 100)).hung).toBeUndefined();
    });
  }

  test('close() resolves at once, without close_timeout, when nothing is stuck', async (ctx) => {
    const { store } = await freshStore(ctx, { idleDispatch: false });
    const events: IdleDispatchEvent[] = [];
    const dispatch = createIdleDispatchWorker({
      store,
      connection: bullConnection(ctx),
      owner: owner('w'),
      leaseTtlMs: 5000,
      sweepIntervalMs: 60_000,
      closeTimeoutMs: 5000,
      runTurn: stuckTurn(gate()),
      onEvent: (e) => events.push(e),
    });
    await dispatch.waitUntilReady();
    const closed = await within(dispatch.close(), HUNG_AFTER_MS);
    expect(closed.hung).toBeUndefined();
    expect(events.filter((e) => e.type === 'close_timeout')).toEqual([]);
  });

  for (const form of ['ioredis options', 'an ioredis instance'] as const) {
    test(`waitUntilReady() rejects when BullMQ cannot connect (${form}), and close() still resolves`, async (ctx) => {
      const { store } = await freshStore(ctx, { idleDispatch: false });
      const port = await freePort(); // nothing listens there
      const instance = form === 'an ioredis instance';
      const connection = instance
        ? new Redis({ host: '127.0.0.1', port, maxRetriesPerRequest: null })
        : { host: '127.0.0.1', port };
      if (connection instanceof Redis) ctx.onTestFinished(() => connection.disconnect());
      const events: IdleDispatchEvent[] = [];
      const dispatch = createIdleDispatchWorker({
        store,
        connection,
        owner: owner('w'),
        leaseTtlMs: 5000,
        sweepIntervalMs: 60_000,
        readyTimeoutMs: 500,
        closeTimeoutMs: CLOSE_TIMEOUT_MS,
        runTurn: stuckTurn(gate()),
        onEvent: (e) => events.push(e),
      });
      const ready = await within(dispatch.waitUntilReady(), HUNG_AFTER_MS);
      expect(ready.hung, 'waitUntilReady() hung').toBeUndefined();
      expect(isStoreError(ready.error, 'Backend')).toBe(true);
      expect((ready.error as Error).message).toMatch(/readyTimeoutMs=500/);
      expect((ready.error as Error).message).toMatch(/ECONNREFUSED/);

      const t0 = Date.now();
      const closed = await within(dispatch.close(), HUNG_AFTER_MS);
      expect(closed.hung, 'close() hung').toBeUndefined();
      expect(Date.now() - t0).toBeLessThan(CLOSE_TIMEOUT_MS + 1500);
    });
  }

  test('closeTimeoutMs and readyTimeoutMs are validated', async (ctx) => {
    const { store } = await freshStore(ctx, { idleDispatch: false });
    const base = {
      store,
      connection: { host: '127.0.0.1', port: 1, lazyConnect: true },
      owner: owner('w'),
      leaseTtlMs: 1000,
      runTurn: stuckTurn(gate()),
    };
    for (const field of ['closeTimeoutMs', 'readyTimeoutMs'] as const) {
      for (const bad of [0, -1, 1.5, '1000', Number.NaN]) {
        let error: unknown;
        try {
          createIdleDispatchWorker({ ...base, [field]: bad as never });
        } catch (e) {
          error = e;
        }
        expect(isStoreError(error, 'InvalidInput'), `${field}: ${String(bad)}`).toBe(true);
        expect((error as { details: { issues: string[] } }).details.issues.join('; ')).toMatch(
          new RegExp(`^${field}: `),
        );
      }
    }
  });
});
