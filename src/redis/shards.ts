/**
 * Store-wide reads over shard keys (SPEC 10.4). Standalone: the one shard `{0}`. Cluster: the
 * shard keys that exist, found by SCAN on every primary (one shard per slot in use).
 *
 * On Cluster the answer must cover every master that serves slots: the client's node list can
 * lag behind the cluster (ioredis drops a node whose connection ended and re-adds it on the next
 * slot refresh), and a store-wide read that silently skipped a master would be wrong, not just
 * incomplete (hasLiveRefForId answering `false` for a committed attachment lets GC delete it). So
 * the masters scanned are checked against CLUSTER SLOTS by node id, and a master that is missing
 * or fails its SCAN makes the read fail with Backend, unless the caller asks for a partial answer.
 */

import type { Cluster, Redis } from 'ioredis';
import { StoreError } from '../contract/errors.js';
import type { RedisContext } from './context.js';
import { isClusterClient } from './context.js';
import type { ShardKeyName } from './keys.js';

export interface ShardKey {
  key: string;
  /** The shard tag (the text between the braces). */
  tag: string;
}

export interface ListShardKeysOptions {
  /**
   * Cluster only. false (the default): every master serving slots must be scanned, else Backend.
   * true: masters that cannot be reached are skipped (for repair work such as the dispatch sweep,
   * which should keep serving the reachable masters during an outage).
   */
  partial?: boolean;
}

/** Node ids of the masters that serve at least one slot, by CLUSTER SLOTS. */
async function servingMasterIds(client: Cluster): Promise<Set<string>> {
  const ranges = (await client.cluster('SLOTS')) as unknown as [
    number,
    number,
    [string, number, string?],
    ...unknown[],
  ][];
  const ids = new Set<string>();
  for (const range of ranges) {
    const id = range[2]?.[2];
    if (typeof id === 'string' && id !== '') ids.add(id);
  }
  return ids;
}

/** The nodes that hold keys: the one server, or every master the Cluster client knows. */
export function masterNodes(client: Redis | Cluster): Redis[] {
  return isClusterClient(client) ? (client.nodes('master') as Redis[]) : [client as Redis];
}

/** Every key of one node matching `pattern` (SCAN; keys may repeat while the node rehashes). */
export async function scanMatching(node: Redis, pattern: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    keys.push(...batch);
  } while (cursor !== '0');
  return keys;
}

async function scanNode(node: Redis, pattern: string): Promise<{ id: string; keys: string[] }> {
  const id = String(await node.cluster('MYID'));
  return { id, keys: await scanMatching(node, pattern) };
}

export async function listShardKeys(
  ctx: RedisContext,
  name: ShardKeyName,
  options: ListShardKeysOptions = {},
): Promise<ShardKey[]> {
  const { layout, client } = ctx;
  if (!isClusterClient(client)) return [{ key: layout.shardKey('0', name), tag: '0' }];
  const pattern = `${layout.prefix}:shard:*:${name}`;
  const found = new Map<string, ShardKey>();
  const [serving, scans] = await Promise.all([
    servingMasterIds(client),
    Promise.allSettled(masterNodes(client).map((node) => scanNode(node, pattern))),
  ]);
  const scanned = new Set<string>();
  for (const scan of scans) {
    if (scan.status === 'rejected') {
      if (options.partial) continue;
      throw scan.reason;
    }
    scanned.add(scan.value.id);
    for (const key of scan.value.keys) {
      const m = /\{([^}]+)\}/.exec(key);
      if (m && key === layout.shardKey(m[1], name)) found.set(key, { key, tag: m[1] });
    }
  }
  const missing = [...serving].filter((id) => !scanned.has(id));
  if (missing.length > 0 && !options.partial) {
    throw new StoreError('Backend', {
      cause: `store-wide read needs every master; no answer from the master(s) serving slots of node ${missing.join(', ')}`,
    });
  }
  return [...found.values()];
}
