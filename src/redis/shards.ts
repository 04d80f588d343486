/**
 * Store-wide reads over shard keys (SPEC 10.4). Standalone: the one shard `{0}`. Cluster: the
 * shard keys that exist, found by SCAN on every primary (one shard per slot in use).
 */
import type { Cluster, Redis } from 'ioredis';
import type { RedisContext } from './context.js';
import type { ShardKeyName } from './keys.js';

export interface ShardKey {
  key: string;
  /** The shard tag (the text between the braces). */
  tag: string;
}

function isCluster(client: unknown): client is Cluster {
  return (client as { isCluster?: boolean }).isCluster === true;
}

export async function listShardKeys(ctx: RedisContext, name: ShardKeyName): Promise<ShardKey[]> {
  const { layout, client } = ctx;
  if (!isCluster(client)) return [{ key: layout.shardKey('0', name), tag: '0' }];
  const pattern = `${layout.prefix}:shard:*:${name}`;
  const found = new Map<string, ShardKey>();
  for (const node of client.nodes('master') as Redis[]) {
    let cursor = '0';
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      cursor = next;
      for (const key of keys) {
        const m = /\{([^}]+)\}/.exec(key);
        if (m && key === layout.shardKey(m[1], name)) found.set(key, { key, tag: m[1] });
      }
    } while (cursor !== '0');
  }
  return [...found.values()];
}
