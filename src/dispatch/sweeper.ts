/**
 * The dispatch sweeper (SPEC 11, "No lost wake-ups"). Store scripts add a session to its shard's
 * `dispatch` zset whenever a row becomes deferred_next_turn or accepted, in the same atomic step
 * as the write. The sweeper visits every indexed session with one script (lua/sweep-session.lua),
 * which removes sessions with nothing left, keeps leased ones (and, in requeue mode, ones whose
 * no-lease active input is still within its grace), and reports dispatchable ones; for
 * those the sweeper sends a wake-up. So input that is dispatchable at time t has a wake-up waiting
 * or active by about t + sweepIntervalMs, whichever process crashed between a script and its
 * wake-up.
 *
 * Wake-ups from the sweeper go through a queue handle of its own, whatever the store's
 * `idleDispatch` option says: that option governs only the direct wake-ups the store methods
 * send. Running a sweeper (or the worker helper, which runs one) is itself the decision to
 * dispatch, and it is what repairs a store that sent nothing.
 */
import type { Cluster, Redis } from 'ioredis';
import { invalidInput } from '../contract/errors.js';
import { unknownKeyIssues } from '../contract/schemas.js';
import { decodeId } from '../redis/key-encoding.js';
import { listShardKeys } from '../redis/shards.js';
import { WakeQueue } from '../redis/wake-queue.js';
import { telemetryOf } from '../telemetry/instrument-store.js';
import { dispatchQueueOf, type RedisBackedStore, requireRedisStore } from './redis-store-access.js';

export type SweepVerdict = 'removed' | 'leased' | 'waiting' | 'wake';

export interface SweepReport {
  /** Index members visited (a member may be visited twice when the index changes under ZSCAN). */
  visited: number;
  removed: number;
  leased: number;
  /**
   * Sessions kept with only active input enqueued while no lease was live, none past its grace
   * deadline yet (requeue mode; SPEC 3.5, T9): a later sweep wakes them once one is.
   */
  waiting: number;
  /** Session ids a wake-up was sent for. */
  woken: string[];
  /** Visits or sends that failed (reported through process.emitWarning; the next sweep retries). */
  failed: number;
}

export interface SweepOptions {
  /**
   * Sends one wake-up. Default: a temporary queue handle on a duplicate of the store's client,
   * closed when the sweep ends.
   */
  wake?: (sessionId: string) => Promise<void>;
  /** Index members per ZSCAN page, visited concurrently. Default 200. */
  pageSize?: number;
}

export const SWEEP_COMMAND = 'rts_sweep_session';

/** One sweep over every shard dispatch index of a Redis store. */
export async function sweepDispatchIndex(storeArg: unknown, options: SweepOptions = {}): Promise<SweepReport> {
  const store: RedisBackedStore = requireRedisStore(storeArg);
  const unknownKeys = unknownKeyIssues(options, ['wake', 'pageSize'], 'options');
  if (unknownKeys.length > 0) throw invalidInput(unknownKeys);
  const { ctx } = store;
  let wake = options.wake;
  let temporary: WakeQueue | undefined;
  if (!wake) {
    const { name, prefix } = dispatchQueueOf(store);
    const connection = (ctx.client as { duplicate(): Redis | Cluster }).duplicate();
    temporary = new WakeQueue(name, prefix, connection, async () => {
      await connection.quit().catch(() => connection.disconnect());
    });
    const q = temporary;
    wake = (sessionId) => q.send(sessionId);
  }
  const pageSize = options.pageSize ?? 200;
  const report: SweepReport = { visited: 0, removed: 0, leased: 0, waiting: 0, woken: [], failed: 0 };
  const requeueFlag = ctx.requeue ? '1' : '0';
  try {
    // Partial: a sweep is repair work, so during an outage it keeps serving the reachable masters
    // (the unreachable ones are swept once they are back).
    for (const shard of await ctx.track(() => listShardKeys(ctx, 'dispatch', { partial: true }))) {
      // ioredis Cluster routes ZSCAN by its key, so the store's client serves every shard.
      const node = ctx.client as Redis | Cluster;
      let cursor = '0';
      do {
        const [next, flat] = await ctx.track(() => node.zscan(shard.key, cursor, 'COUNT', pageSize));
        cursor = next;
        const members: string[] = [];
        for (let i = 0; i < flat.length; i += 2) members.push(flat[i]);
        await Promise.all(
          members.map(async (member) => {
            report.visited += 1;
            let sessionId: string;
            try {
              sessionId = decodeId(member);
            } catch {
              report.failed += 1;
              warn(`dispatch index ${shard.key} holds a member that is not an encoded session id: ${member}`);
              return;
            }
            try {
              const [verdict] = await ctx.track(() => ctx.run(SWEEP_COMMAND, sessionId, [requeueFlag]));
              if (verdict === 'removed') report.removed += 1;
              else if (verdict === 'leased') report.leased += 1;
              else if (verdict === 'waiting') report.waiting += 1;
              else if (verdict === 'wake') {
                await wake(sessionId);
                report.woken.push(sessionId);
              }
            } catch (e) {
              report.failed += 1;
              warn(`sweeping a session failed: ${(e as Error)?.message ?? e}`);
            }
          }),
        );
      } while (cursor !== '0');
    }
  } finally {
    await temporary?.close();
  }
  telemetryOf(storeArg)?.count('wakeupsSwept', report.woken.length);
  return report;
}

function warn(message: string): void {
  process.emitWarning(`redis-turn-store: ${message}`, { code: 'RTS_SWEEP_FAILED' });
}
