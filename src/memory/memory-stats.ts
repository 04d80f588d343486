/** stats() of the in-memory store (SPEC 17.4): the same figures as lua/store-stats.lua, over every session. */
import type { StoreStats } from '../contract/types.js';
import { emptyStoreStats } from '../core/projections.js';
import { carriesClaim, claimIsLive } from './input-rows.js';
import { liveGeneration } from './lease-record.js';
import type { MemoryContext } from './session-state.js';

export function storeStats(ctx: MemoryContext): StoreStats {
  ctx.assertOpen();
  const now = ctx.clock();
  const out = emptyStoreStats(now);
  let oldest: number | undefined;
  for (const session of ctx.state.sessions.values()) {
    const gen = liveGeneration(session.lease, now);
    if (gen !== undefined) out.liveLeases++;
    let pending = 0;
    const stalled = new Set<string>();
    for (const row of session.inputs.open.values()) {
      const live = claimIsLive(row, gen);
      if ((row.state === 'deferred_next_turn' || row.state === 'pending_active') && !live) {
        pending++;
        if (oldest === undefined || row.enqueuedAtMs < oldest) oldest = row.enqueuedAtMs;
      }
      if (carriesClaim(row) && live && row.claim.claimExpiresAtMs < now) {
        stalled.add(row.claim.claimId);
      }
    }
    if (pending > 0) out.sessionsWithPendingInput++;
    out.pendingInputs += pending;
    out.stalledClaims += stalled.size;
  }
  if (oldest !== undefined) out.oldestPendingInputAgeMs = Math.max(0, now - oldest);
  return out;
}
