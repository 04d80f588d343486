/**
 * A URL or standalone client pointed at a cluster-mode server is refused at creation with a clear
 * InvalidInput, instead of building a standalone layout whose every call would fail with MOVED.
 */
import { Redis } from 'ioredis';
import { expect, inject, test } from 'vitest';
import { createRedisRuntimeStore, isStoreError } from '../../src/index.js';

test('a plain URL to a cluster node is refused with InvalidInput naming the Cluster client', async () => {
  const [first] = inject('clusterNodes');
  const error = await createRedisRuntimeStore({ redis: `redis://${first}`, keyPrefix: 'plain-url' }).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isStoreError(error, 'InvalidInput')).toBe(true);
  expect((error as { details: { issues: string[] } }).details.issues[0]).toMatch(
    /^redis: .*cluster mode.*Cluster client/,
  );
});

test('a standalone ioredis client to a cluster node is refused too, and left open for its owner', async () => {
  const [first] = inject('clusterNodes');
  const [host, port] = first.split(':');
  const client = new Redis({ host, port: Number(port) });
  try {
    const error = await createRedisRuntimeStore({ redis: client, keyPrefix: 'plain-client' }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isStoreError(error, 'InvalidInput')).toBe(true);
    expect(await client.ping()).toBe('PONG');
  } finally {
    client.disconnect();
  }
});
