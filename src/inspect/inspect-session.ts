/**
 * `inspect`: reads one session with one read-only script (lua/inspect-session.lua) and returns
 * the decoded view (src/inspect/inspect-view.ts). Works on a bare ioredis client, so the operator tool
 * never creates a store (which would write the layout key).
 */

import type { Cluster, Redis } from 'ioredis';
import { idSchema, KEY_PREFIX_PATTERN, parseArg } from '../contract/schemas.js';
import { isRedisBackedStore } from '../dispatch/redis-store-access.js';
import { isClusterClient, RedisContext } from '../redis/context.js';
import { KeyLayout } from '../redis/keys.js';
import { registerScripts } from '../redis/scripts/registry.js';
import { type InspectView, parseInspectReply } from './inspect-view.js';

export const INSPECT_COMMAND = 'rts_inspect_session';

export interface InspectTarget {
  client: Redis | Cluster;
  keyPrefix: string;
}

/** Reads the view of one session, from a Redis store or from a client and key prefix. */
export async function inspectSession(
  target: InspectTarget | unknown,
  sessionId: string,
  options: { maxRows?: number; strandedTurnInputs?: 'requeue' | 'keep' } = {},
): Promise<InspectView> {
  const id = parseArg(idSchema, sessionId, 'sessionId');
  const maxRows = options.maxRows ?? 1000;
  let ctx: RedisContext;
  // Which rows nothing will move depends on the mode the stores run in: a store's own, else the
  // caller's (the CLI's --keep), else the default.
  let mode = options.strandedTurnInputs ?? 'requeue';
  if (isRedisBackedStore(target)) {
    ctx = target.ctx;
    mode = options.strandedTurnInputs ?? ctx.settings.strandedTurnInputs;
  } else {
    const { client, keyPrefix } = target as InspectTarget;
    if (!KEY_PREFIX_PATTERN.test(keyPrefix)) throw new Error(`invalid key prefix ${JSON.stringify(keyPrefix)}`);
    registerScripts(client);
    const layout = new KeyLayout(keyPrefix, isClusterClient(client) ? 'cluster' : 'standalone');
    ctx = new RedisContext(
      client,
      layout,
      { keyPrefix, strandedTurnInputs: mode, activeInputGraceMs: 0, tombstoneRetentionMs: 0, idleDispatch: false },
      () => undefined,
    );
  }
  const reply = await ctx.run(INSPECT_COMMAND, id, [String(maxRows)]);
  return parseInspectReply(reply, id, ctx.layout.prefix, mode);
}
