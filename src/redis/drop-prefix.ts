/**
 * Dropping a whole store (SPEC 8.6): every key of a key prefix, found by SCAN on the server or on
 * every master of a Cluster. Only keys of the documented layout (docs/KEYS.md) are listed or
 * deleted: `<p>:layout`, `<p>:{<S>}:<session key name>`, `<p>:shard:{<tag>}:<shard key name>`
 * and the dispatch queue's `{<p>}:<p>-idle-dispatch*` keys. Another application's `<p>:...` key
 * is left alone. Never called by the store itself; the CLI's `drop`, the demo's --cleanup and
 * the tests use it. Not atomic: run it once nothing uses the prefix any more.
 */

import type { Cluster, Redis } from 'ioredis';
import { z } from 'zod';
import { StoreError } from '../contract/errors.js';
import { KEY_PREFIX_PATTERN, parseArgs, strictObject } from '../contract/schemas.js';
import { isClusterClient } from './context.js';
import { SESSION_KEY_NAMES, SHARD_KEY_NAMES } from './keys.js';
import { masterNodes, scanMatching } from './shards.js';

export interface DropStoreOptions {
  /** true: only list the keys (default false: delete them). */
  dryRun?: boolean;
}

export interface DropStoreResult {
  /** Every key of the store found, sorted; deleted unless dryRun. */
  keys: string[];
  /** How many keys were deleted (0 with dryRun). */
  deleted: number;
}

const dropArgs = {
  prefix: z
    .string({ error: `must match ${KEY_PREFIX_PATTERN}` })
    .regex(KEY_PREFIX_PATTERN, `must match ${KEY_PREFIX_PATTERN}`),
  options: strictObject({ dryRun: z.boolean({ error: 'must be a boolean' }).optional() }).optional(),
};

function reEscape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\-]/g, '\\$&');
}

/** Whether a key belongs to the layout of `prefix` (a pure test, for the scan filter). */
export function storeKeyMatcher(prefix: string): (key: string) => boolean {
  const p = reEscape(prefix);
  const session = SESSION_KEY_NAMES.map(reEscape).join('|');
  const shard = SHARD_KEY_NAMES.map(reEscape).join('|');
  const re = new RegExp(
    `^(?:${p}:layout|${p}:\\{[A-Za-z0-9._~%-]+\\}:(?:${session})|${p}:shard:\\{[A-Za-z0-9]+\\}:(?:${shard})|\\{${p}\\}:${p}-idle-dispatch(?::.*)?)$`,
    's',
  );
  return (key) => re.test(key);
}

async function scanNode(node: Redis, patterns: string[], keep: (key: string) => boolean): Promise<string[]> {
  const found: string[] = [];
  for (const pattern of patterns) for (const k of await scanMatching(node, pattern)) if (keep(k)) found.push(k);
  return found;
}

/**
 * Lists (dryRun) or deletes every key of the store under `prefix`, the BullMQ dispatch queue
 * included. On Cluster every master is scanned and keys are unlinked one by one on their own
 * node (no CROSSSLOT).
 */
export async function dropStore(
  client: Redis | Cluster,
  prefix: string,
  options?: DropStoreOptions,
): Promise<DropStoreResult> {
  const a = parseArgs(dropArgs, { prefix, options });
  const keep = storeKeyMatcher(a.prefix);
  const patterns = [`${a.prefix}:*`, `{${a.prefix}}:${a.prefix}-idle-dispatch*`];
  const perNode = await Promise.all(
    masterNodes(client).map(async (node) => ({ node, keys: await scanNode(node, patterns, keep) })),
  ).catch((e: unknown) => {
    throw new StoreError('Backend', { cause: (e as Error)?.message ?? String(e) }, { cause: e });
  });
  const keys = [...new Set(perNode.flatMap((n) => n.keys))].sort();
  if (a.options?.dryRun === true) return { keys, deleted: 0 };
  let deleted = 0;
  for (const { node, keys: nodeKeys } of perNode) {
    for (let i = 0; i < nodeKeys.length; i += 500) {
      const batch = nodeKeys.slice(i, i + 500);
      if (isClusterClient(client)) {
        const p = node.pipeline();
        for (const k of batch) p.unlink(k);
        for (const [err, n] of (await p.exec()) ?? []) if (!err) deleted += Number(n);
      } else {
        deleted += await node.unlink(...batch);
      }
    }
  }
  return { keys, deleted };
}

/** Deletes every key of a store prefix (the demo's --cleanup and the tests). */
export async function dropPrefix(client: Redis | Cluster, prefix: string): Promise<void> {
  await dropStore(client, prefix);
}
