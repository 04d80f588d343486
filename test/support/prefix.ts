/**
 * Per-test key prefixes: derived from the test's name so redis-cli shows whose keys they are,
 * unique per run, and deleted only when the test passed (a failed test's keys stay to inspect).
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { inject, onTestFinished, type TestContext } from 'vitest';

export function redisUrl(): string {
  return inject('redisUrl');
}

export function prefixFor(name: string): string {
  const slug = name
    .replace(/[^A-Za-z0-9_.-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 40);
  return `t-${slug || 'test'}-${randomBytes(3).toString('hex')}`;
}

/** Deletes every key of a prefix: the store's keys and the dispatch queue's `{prefix}` keys. */
export async function dropPrefix(client: Redis, prefix: string): Promise<void> {
  for (const pattern of [`${prefix}:*`, `{${prefix}}:*`]) {
    let cursor = '0';
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await client.unlink(...keys);
    } while (cursor !== '0');
  }
}

let admin: Redis | undefined;
export function adminClient(): Redis {
  if (!admin) {
    admin = new Redis(redisUrl(), { lazyConnect: false, maxRetriesPerRequest: 3 });
  }
  return admin;
}


/** A fresh prefix for the running test; its keys are dropped when the test passes. */
export function testPrefix(ctx: TestContext): string {
  const prefix = prefixFor(ctx.task.name);
  onTestFinished(async (c) => {
    const state = c.task.result?.state;
    if (state === 'pass') await dropPrefix(adminClient(), prefix);
  });
  return prefix;
}

/** Every key (and its dump-able value) under a prefix, for all-or-nothing assertions. */
export async function snapshotPrefix(client: Redis, prefix: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  let cursor = '0';
  const keys: string[] = [];
  do {
    const [next, batch] = await client.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    cursor = next;
    keys.push(...batch);
  } while (cursor !== '0');
  keys.sort();
  for (const k of keys) {
    const type = await client.type(k);
    let value: unknown;
    if (type === 'string') value = (await client.getBuffer(k))?.toString('hex');
    else if (type === 'hash') value = Object.entries(await client.hgetall(k)).sort();
    else if (type === 'zset') value = await client.call('ZRANGE', k, '0', '-1', 'WITHSCORES');
    else if (type === 'set') value = (await client.smembers(k)).sort();
    else if (type === 'list') value = await client.lrange(k, 0, -1);
    else value = type;
    out[k] = `${type}:${JSON.stringify(value)}`;
  }
  return out;
}
