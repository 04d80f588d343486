/**
 * stats (SPEC 17.4): the store's gauge figures. For each shard's dispatch index,
 * lua/store-stats.lua visits its sessions a page at a time (read-only, the shard's server clock);
 * the pages' figures are summed. On Cluster every master must answer (listShardKeys), as for
 * every store-wide read.
 */

import { StoreError } from '../contract/errors.js';
import type { StoreStats } from '../contract/types.js';
import { emptyStoreStats } from '../core/projections.js';
import type { RedisContext } from './context.js';
import { decodeId } from './key-encoding.js';
import { listShardKeys } from './shards.js';

/** Sessions visited per script call. */
const PAGE = 200;

function num(value: unknown, what: string): number {
  const n = typeof value === 'number' ? value : Number(value);
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new StoreError('Backend', { cause: `unexpected store-stats reply: ${what} ${JSON.stringify(value)}` });
  }
  return n;
}

export async function storeStats(ctx: RedisContext): Promise<StoreStats> {
  return ctx.track(async () => {
    const out = emptyStoreStats(0);
    for (const shard of await listShardKeys(ctx, 'dispatch')) {
      for (let offset = 0; ; offset += PAGE) {
        const r = await ctx.runShard('rts_store_stats', shard.tag, [ctx.layout.prefix, String(offset), String(PAGE)]);
        const now = num(r[0], 'now');
        out.atEpochMs = Math.max(out.atEpochMs, now);
        out.sessionsWithPendingInput += num(r[2], 'sessions');
        out.pendingInputs += num(r[3], 'pending');
        if (r[4] !== '') out.oldestPendingInputAgeMs = Math.max(out.oldestPendingInputAgeMs, now - num(r[4], 'oldest'));
        out.liveLeases += num(r[5], 'leases');
        out.stalledClaims += num(r[6], 'stalled');
        if (num(r[1], 'visited') < PAGE) break;
      }
    }
    return out;
  });
}

/** One session of the dashboard's sessions page (SPEC 17.5). */
export interface PendingSessionSummary {
  sessionId: string;
  pendingInputs: number;
  oldestPendingAtMs: number;
  oldestPendingAgeMs: number;
  leaseLive: boolean;
  stalledClaims: number;
}

/**
 * The sessions with pending input, the oldest pending input first (lua/pending-sessions.lua, a page
 * of each shard's dispatch index per call); at most `limit`.
 */
export async function listPendingSessions(ctx: RedisContext, limit = 500): Promise<PendingSessionSummary[]> {
  const out: PendingSessionSummary[] = [];
  for (const shard of await listShardKeys(ctx, 'dispatch')) {
    for (let offset = 0; ; offset += PAGE) {
      const r = await ctx.runShard('rts_pending_sessions', shard.tag, [
        ctx.layout.prefix,
        String(offset),
        String(PAGE),
      ]);
      const now = num(r[0], 'now');
      for (let i = 2; i + 4 < r.length; i += 5) {
        let sessionId: string;
        try {
          sessionId = decodeId(String(r[i]));
        } catch {
          continue; // a member that is no encoded id: not a session of this layout
        }
        const at = num(r[i + 2], 'oldest');
        out.push({
          sessionId,
          pendingInputs: num(r[i + 1], 'pending'),
          oldestPendingAtMs: at,
          oldestPendingAgeMs: Math.max(0, now - at),
          leaseLive: r[i + 3] === '1',
          stalledClaims: num(r[i + 4], 'stalled'),
        });
      }
      if (num(r[1], 'visited') < PAGE) break;
    }
  }
  out.sort((a, b) => a.oldestPendingAtMs - b.oldestPendingAtMs || (a.sessionId < b.sessionId ? -1 : 1));
  return out.slice(0, limit);
}
