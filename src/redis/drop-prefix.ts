/**
 * Deletes every key of a store prefix: the store's `<prefix>:*` keys and its dispatch queue's
 * `{<prefix>}:*` keys. For operators and tools (the demo's --cleanup, the tests), never called by
 * the store itself. On Cluster it scans every master and unlinks key by key (no CROSSSLOT).
 */

import type { Cluster, Redis } from 'ioredis';
import { isClusterClient } from './context.js';

export async function dropPrefix(client: Redis | Cluster, prefix: string): Promise<void> {
  const nodes = isClusterClient(client) ? (client.nodes('master') as Redis[]) : [client as Redis];
  for (const node of nodes) {
    for (const pattern of [`${prefix}:*`, `{${prefix}}:*`]) {
      let cursor = '0';
      do {
        const [next, keys] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
        cursor = next;
        if (keys.length === 0) continue;
        if (isClusterClient(client)) {
          const p = node.pipeline();
          for (const k of keys) p.unlink(k);
          await p.exec();
        } else {
          await node.unlink(...keys);
        }
      } while (cursor !== '0');
    }
  }
}
