/**
 * vacuum (SPEC 3.6, 8.3; transition T13): deletes tombstones at least `olderThanMs` old in every
 * session of the store. Not a hot path and not one round trip (SPEC 10.5): for each shard `tombs`
 * index, lua/vacuum-scan.lua lists the sessions whose oldest tombstone is due (server clock), then
 * lua/vacuum-session.lua prunes each of them atomically, the sessions of a batch concurrently
 * (ioredis pipelines them on the connection). A pruned session is rescored to its oldest remaining
 * tombstone or leaves the index, so rescanning from the start always makes progress.
 */
import { args } from '../contract/arguments.js';
import { StoreError } from '../contract/errors.js';
import type { VacuumResult } from '../contract/types.js';
import type { RedisContext } from './context.js';
import { expireIdleSessions } from './erase-ops.js';
import { decodeId } from './key-encoding.js';
import { listShardKeys } from './shards.js';

/** Sessions taken from a shard per scan. */
const SCAN_BATCH = 256;

/** One scan of a shard: the cutoff in force and up to SCAN_BATCH due sessions, oldest first. */
async function scanDue(
  ctx: RedisContext,
  shardTag: string,
  olderThanMs: number,
  cutoff: string | undefined,
): Promise<{ cutoff: string; members: string[] }> {
  const reply = await ctx.runShard('rts_vacuum_scan', shardTag, [
    String(olderThanMs),
    String(SCAN_BATCH),
    cutoff ?? '',
  ]);
  if (typeof reply[0] !== 'string') {
    throw new StoreError('Backend', { cause: `unexpected vacuum scan reply: ${JSON.stringify(reply)?.slice(0, 200)}` });
  }
  return { cutoff: reply[0], members: reply.slice(1).map(String) };
}

function decodeMember(member: string): string | undefined {
  try {
    return decodeId(member);
  } catch {
    return undefined;
  }
}

async function vacuumShard(ctx: RedisContext, shardTag: string, olderThanMs: number): Promise<number> {
  let removed = 0;
  let cutoff: string | undefined;
  const visited = new Set<string>();
  for (;;) {
    const scan = await scanDue(ctx, shardTag, olderThanMs, cutoff);
    cutoff = scan.cutoff;
    // One cutoff per pass: a pruned session scores after it or has left the index. Seeing only
    // visited members again (a clock step backwards, a hand-edited index) ends the pass.
    const due = scan.members.filter((m) => !visited.has(m));
    if (due.length === 0) return removed;
    for (const m of due) visited.add(m);
    const counts = await Promise.all(
      due.map(async (member) => {
        const sessionId = decodeMember(member);
        if (sessionId === undefined) return 0;
        const [n] = await ctx.run('rts_vacuum_session', sessionId, [String(olderThanMs)]);
        return Number(n);
      }),
    );
    for (const n of counts) removed += n;
  }
}

export async function vacuum(ctx: RedisContext, options?: { olderThanMs?: number }): Promise<VacuumResult> {
  const parsed = args.vacuum(options);
  const olderThanMs = parsed?.olderThanMs ?? ctx.settings.tombstoneRetentionMs;
  return ctx.track(async () => {
    const shards = await listShardKeys(ctx, 'tombs');
    const perShard = await Promise.all(shards.map((s) => vacuumShard(ctx, s.tag, olderThanMs)));
    const result: VacuumResult = { removedPendingTurnInputTombstones: perShard.reduce((a, b) => a + b, 0) };
    const retention = ctx.settings.sessionRetentionMs;
    if (retention !== undefined) Object.assign(result, await expireIdleSessions(ctx, retention));
    return result;
  });
}
