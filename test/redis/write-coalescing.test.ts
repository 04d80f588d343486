/**
 * src/redis/write-coalescing.ts on a real connection: the commands of one tick leave in one
 * write, in order, with their own replies, a Buffer command among them included; a tick's
 * commands larger than WRITE_CHUNK in all leave in pieces of about that size as they are made; commands of separate ticks are not held back; the
 * patch survives a reconnect (a new socket); an unpatched client writes one command per write;
 * the store option `writeBatching` turns it on (default) or off for the store's own connection only.
 * Standalone only (excluded from vitest.cluster.config.ts: Cluster clients are never coalesced).
 */
import type { Socket } from 'node:net';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, test } from 'vitest';
import { isStoreError } from '../../src/contract/errors.js';
import { createRedisRuntimeStore } from '../../src/redis/redis-store.js';
import { coalesceWrites, WRITE_CHUNK } from '../../src/redis/write-coalescing.js';
import { adminClient, redisUrl, testPrefix } from '../support/prefix.js';

type Counted = Socket & { _writev?: (chunks: unknown[], cb: (e?: Error | null) => void) => void };

/** Counts the socket-level writes (one per _write, one per _writev batch) of the current stream. */
function countWrites(client: Redis): { writes: number; chunks: number } {
  const stream = (client as unknown as { stream: Counted }).stream;
  const seen = { writes: 0, chunks: 0 };
  const write = stream._write.bind(stream);
  stream._write = (chunk, enc, cb) => {
    seen.writes++;
    seen.chunks++;
    write(chunk, enc, cb);
  };
  const writev = stream._writev?.bind(stream);
  if (writev) {
    stream._writev = (chunks, cb) => {
      seen.writes++;
      seen.chunks += chunks.length;
      writev(chunks, cb);
    };
  }
  return seen;
}

const opened: Redis[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((c) => c.quit().catch(() => c.disconnect())));
});

/** A connected client with coalescing on, and the counter of its socket writes from now on. */
async function coalescedClient(): Promise<{ client: Redis; seen: { writes: number; chunks: number } }> {
  const client = new Redis(redisUrl());
  opened.push(client);
  await client.ping();
  coalesceWrites(client);
  return { client, seen: countWrites(client) };
}

describe('write coalescing [redis]', () => {
  test('the commands of one tick leave in one write, each with its own reply', async () => {
    const { client, seen } = await coalescedClient();
    const replies = await Promise.all(Array.from({ length: 20 }, (_, i) => client.echo(`m${i}`)));
    expect(replies).toEqual(Array.from({ length: 20 }, (_, i) => `m${i}`));
    expect(seen.writes).toBe(1);
    expect(seen.chunks).toBe(1);

    // Commands of separate ticks are not held back.
    expect(await client.echo('alone')).toBe('alone');
    expect(seen.writes).toBe(2);
  });

  test('a tick of commands larger than WRITE_CHUNK leaves in pieces of about that size, in order', async () => {
    const { client, seen } = await coalescedClient();
    const text = (i: number) => `${i}:${'x'.repeat(500)}`;
    const replies = await Promise.all(Array.from({ length: 40 }, (_, i) => client.echo(text(i))));
    expect(replies).toEqual(Array.from({ length: 40 }, (_, i) => text(i)));
    // About 21 KB of commands: each write carries at least WRITE_CHUNK characters but the last,
    // and none carries more than WRITE_CHUNK plus one command.
    const total = 40 * (text(10).length + 30);
    expect(seen.writes).toBeGreaterThan(1);
    expect(seen.writes).toBeGreaterThanOrEqual(Math.floor(total / (WRITE_CHUNK + 540)));
    expect(seen.writes).toBeLessThanOrEqual(Math.ceil(total / WRITE_CHUNK) + 1);
  });

  test('a Buffer command in the same tick goes out in order after the strings before it', async () => {
    const { client, seen } = await coalescedClient();
    const key = `wc:${Date.now()}:${Math.random()}`;
    // SET with a Buffer value is written as a Buffer; the GETs around it must see before and after.
    const [before, set, after, again] = await Promise.all([
      client.get(key),
      client.set(key, Buffer.from([0xff, 0x00, 0x41])),
      client.getBuffer(key),
      client.del(key),
    ]);
    expect(before).toBeNull();
    expect(set).toBe('OK');
    expect(after).toEqual(Buffer.from([0xff, 0x00, 0x41]));
    expect(again).toBe(1);
    // The string before the Buffer, the Buffer, then the strings after it.
    expect(seen.writes).toBeLessThanOrEqual(3);
  });

  test('a plain client writes each command on its own (the baseline the patch changes)', async () => {
    const client = new Redis(redisUrl());
    opened.push(client);
    await client.ping();
    const seen = countWrites(client);
    await Promise.all(Array.from({ length: 20 }, (_, i) => client.echo(`m${i}`)));
    expect(seen.writes).toBe(20);
  });

  test('a reconnect opens a new socket, and it is coalesced too', async () => {
    const client = new Redis(redisUrl());
    opened.push(client);
    client.on('error', () => undefined);
    await client.ping();
    coalesceWrites(client);
    const id = (await client.client('ID')) as number;
    const first = (client as unknown as { stream: Socket }).stream;
    const ready = new Promise<void>((resolve) => client.once('ready', () => resolve()));
    await adminClient().client('KILL', 'ID', String(id));
    await ready;
    expect((client as unknown as { stream: Socket }).stream).not.toBe(first);
    const seen = countWrites(client);
    const replies = await Promise.all(Array.from({ length: 10 }, (_, i) => client.echo(`r${i}`)));
    expect(replies).toEqual(Array.from({ length: 10 }, (_, i) => `r${i}`));
    expect(seen.writes).toBe(1);
  });

  test("writeBatching: the store's own connection is coalesced by default, not with 'off'; refused with a caller's client", async (ctx) => {
    const keyPrefix = testPrefix(ctx);
    const patched = async (writeBatching?: 'coalesce' | 'off') => {
      const store = await createRedisRuntimeStore({ redis: redisUrl(), keyPrefix, writeBatching });
      try {
        const client = (store as unknown as { ctx: { client: Redis } }).ctx.client;
        const seen = countWrites(client);
        await Promise.all(Array.from({ length: 10 }, (_, i) => client.echo(`o${i}`)));
        return seen.writes;
      } finally {
        await store.close();
      }
    };
    expect(await patched()).toBe(1);
    expect(await patched('coalesce')).toBe(1);
    expect(await patched('off')).toBe(10);

    const own = new Redis(redisUrl());
    opened.push(own);
    const refused = await createRedisRuntimeStore({ redis: own, writeBatching: 'off' }).then(
      (s) => s.close().then(() => 'created'),
      (e: unknown) => e,
    );
    expect(isStoreError(refused, 'InvalidInput')).toBe(true);
  });
});
