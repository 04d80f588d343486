/**
 * Errors a new user meets first (issue 22): Redis down, a host that does not resolve, a password
 * the server wants, a /db the server lacks, a caller's client aimed at a dead server, and calls
 * after close(). Each names the server and the cause, or has its own code.
 */
import { createServer } from 'node:net';
import { Redis } from 'ioredis';
import { describe, expect, test } from 'vitest';
import { isStoreError, type StoreError } from '../../src/contract/errors.js';
import { createRedisRuntimeStore } from '../../src/redis/redis-store.js';
import { clusterNodes, redisTarget, redisUrl, testPrefix } from '../support/prefix.js';

/** A loopback port nothing listens on. */
async function deadPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function rejection(p: Promise<unknown>): Promise<StoreError> {
  try {
    await p;
  } catch (e) {
    expect(isStoreError(e), String(e)).toBe(true);
    return e as StoreError;
  }
  throw new Error('expected a rejection');
}

describe('connection errors', () => {
  test('Redis down: Backend naming host:port and ECONNREFUSED', async () => {
    const port = await deadPort();
    const e = await rejection(createRedisRuntimeStore({ redis: `redis://127.0.0.1:${port}` }));
    expect(e.code).toBe('Backend');
    expect(e.details).toMatchObject({ address: `127.0.0.1:${port}`, errorCode: 'ECONNREFUSED' });
    expect(e.message).toContain(`cannot reach Redis at 127.0.0.1:${port}`);
    expect(e.message).toContain('ECONNREFUSED');
    expect(e.message).not.toContain('Connection is closed');
  });

  test('a host that does not resolve: ENOTFOUND', async () => {
    const e = await rejection(createRedisRuntimeStore({ redis: 'redis://no-such-host.invalid:6379' }));
    expect(e.code).toBe('Backend');
    expect(e.details).toMatchObject({ address: 'no-such-host.invalid:6379' });
    expect(String(e.details.errorCode)).toMatch(/^(ENOTFOUND|EAI_AGAIN)$/);
  });

  test('a password in the URL for a server that has none set is named, and never echoed', async () => {
    const u = new URL(redisUrl());
    u.username = 'nobody';
    u.password = 'sekret-pw';
    const e = await rejection(createRedisRuntimeStore({ redis: u.toString() }));
    expect(e.code).toBe('Backend');
    expect(e.details.address).toBe(`${u.hostname}:${u.port}`);
    expect(String(e.details.errorCode)).toMatch(/^(WRONGPASS|NOAUTH|ERR)$/);
    expect(JSON.stringify(e.details)).not.toContain('sekret-pw');
  });

  test('a /db the server does not have is InvalidInput at creation (no silent db 0)', async (ctx) => {
    if (clusterNodes()) ctx.skip(); // a cluster has db 0 only, and a URL to one is refused anyway
    const u = new URL(redisUrl());
    u.pathname = '/99';
    const e = await rejection(createRedisRuntimeStore({ redis: u.toString(), idleDispatch: false }));
    expect(e.code).toBe('InvalidInput');
    expect((e.details.issues as string[])[0]).toMatch(/^options\.redis: database 99 does not exist/);
  });

  test("a caller's client aimed at a dead server fails within connectTimeoutMs", async () => {
    const port = await deadPort();
    const client = new Redis({ host: '127.0.0.1', port, lazyConnect: true });
    client.on('error', () => undefined);
    try {
      const started = Date.now();
      const e = await rejection(createRedisRuntimeStore({ redis: client, connectTimeoutMs: 500 }));
      expect(Date.now() - started).toBeLessThan(3000);
      expect(e.code).toBe('Backend');
      expect(e.details).toMatchObject({ address: `127.0.0.1:${port}`, errorCode: 'ECONNREFUSED' });
      expect(String(e.details.cause)).toContain('connectTimeoutMs=500');
    } finally {
      client.disconnect();
    }
  });

  test('calls after close() reject with StoreClosed', async (ctx) => {
    const store = await createRedisRuntimeStore({
      redis: redisTarget(),
      keyPrefix: testPrefix(ctx),
      idleDispatch: false,
    });
    await store.close();
    const e = await rejection(store.listPendingTurnInputs('s'));
    expect(e.code).toBe('StoreClosed');
    expect(e.message).toMatch(/^StoreClosed: /);
    expect((await rejection(store.session('s').loadSession({ kind: 'full_graph' }))).code).toBe('StoreClosed');
  });

  test('unknown options are InvalidInput naming them', async () => {
    const e = await rejection(createRedisRuntimeStore({ redis: redisUrl(), ...{ idleDispach: false } }));
    expect(e.code).toBe('InvalidInput');
    expect(e.details.issues).toEqual(['options: unknown key "idleDispach" (not part of this argument)']);
  });
});
