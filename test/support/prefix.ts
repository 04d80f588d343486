/**
 * Per-test key prefixes: derived from the test's name so redis-cli shows whose keys they are,
 * unique per run, and deleted only when the test passed (a failed test's keys stay to inspect).
 */

import { randomBytes } from 'node:crypto';
import { type Cluster, Redis } from 'ioredis';
import { inject, onTestFinished, type TestContext } from 'vitest';
import { dropPrefix } from '../../src/redis/drop-prefix.js';
import { masterNodes, scanMatching } from '../../src/redis/shards.js';
import { clusterClient } from '../cluster/cluster-harness.js';

/** A plain URL. Under `npm run test:cluster` it names one cluster node only: prefer redisTarget(). */
export function redisUrl(): string {
  return inject('redisUrl');
}

/** The Redis Cluster's nodes (host:port) under `npm run test:cluster`, else undefined. */
export function clusterNodes(): string[] | undefined {
  const nodes = inject('clusterNodes');
  return Array.isArray(nodes) && nodes.length > 0 ? nodes : undefined;
}

let cluster: Cluster | undefined;
/** One Cluster client per test file (cluster mode only); closed by closeSharedCluster. */
export function sharedCluster(): Cluster {
  const nodes = clusterNodes();
  if (!nodes) throw new Error('sharedCluster(): not running under the cluster config');
  if (!cluster) cluster = clusterClient(nodes);
  return cluster;
}

export async function closeSharedCluster(): Promise<void> {
  const c = cluster;
  cluster = undefined;
  if (c) await c.quit().catch(() => c.disconnect());
}

/** What to pass as `createRedisRuntimeStore({ redis })`: the URL, or the shared Cluster client. */
export function redisTarget(): string | Cluster {
  return clusterNodes() ? sharedCluster() : redisUrl();
}

/**
 * A connection of its own for a store (tests that race separate connections): the URL (the store
 * opens and closes it), or under `npm run test:cluster` a new Cluster client, closed when the test ends.
 */
export function separateRedisTarget(): string | Cluster {
  const nodes = clusterNodes();
  if (!nodes) return redisUrl();
  const c = clusterClient(nodes);
  onTestFinished(async () => {
    await c.quit().catch(() => c.disconnect());
  });
  return c;
}

/** Every key matching `pattern`: SCAN on the server, or on every master of a Cluster. */
export async function scanKeys(client: Redis | Cluster, pattern: string): Promise<string[]> {
  const keys: string[] = [];
  for (const node of masterNodes(client)) keys.push(...(await scanMatching(node, pattern)));
  return keys;
}

export function prefixFor(name: string): string {
  const slug = name
    .replace(/[^A-Za-z0-9_.-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 40);
  return `t-${slug || 'test'}-${randomBytes(3).toString('hex')}`;
}

/** Deletes every key of a prefix (shared with the demo's --cleanup). */
export { dropPrefix };

let admin: Redis | undefined;
export function adminClient(): Redis {
  // Cluster mode: the shared Cluster client (typed as Redis for callers; SCAN-based helpers here
  // detect it and visit every master; single-key commands route by slot).
  if (clusterNodes()) return sharedCluster() as unknown as Redis;
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
export async function snapshotPrefix(client: Redis | Cluster, prefix: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const keys = await scanKeys(client, `${prefix}:*`);
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
