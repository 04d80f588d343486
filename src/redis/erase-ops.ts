/**
 * deleteSession and the idle-session expiry of vacuum on Redis (SPEC 8.4, 8.5). Each deletion is
 * one call of lua/delete-session.lua on the session's slot: every key of the session, its members
 * of the shard indexes and its attachment-manifest entries go in one atomic step. The script can
 * see only its own shard, so on Cluster the attachment ids it reports as unreferenced in that
 * shard are checked against the other shards (lua/att-any-ref.lua) before they are reported.
 */
import { args } from '../contract/arguments.js';
import { StoreError } from '../contract/errors.js';
import type { SessionDeletion } from '../contract/types.js';
import type { RedisContext } from './context.js';
import { decodeId } from './key-encoding.js';
import { listShardKeys } from './shards.js';

/** What lua/delete-session.lua answered, before the other shards are asked about attachment ids. */
interface RawDeletion {
  deletion: SessionDeletion;
  /** pct(attachmentId) of the removed entries no other session of the shard holds. */
  lastInShard: string[];
  shardTag: string;
}

function badReply(reply: unknown): StoreError {
  return new StoreError('Backend', {
    cause: `unexpected delete-session reply: ${JSON.stringify(reply)?.slice(0, 200)}`,
  });
}

function ascending(ids: Iterable<string>): string[] {
  return [...new Set(ids)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/** Runs the script; `retentionMs` set = idle mode, which answers undefined for a session kept. */
async function runDelete(
  ctx: RedisContext,
  sessionId: string,
  force: boolean,
  retentionMs: number | undefined,
): Promise<RawDeletion | undefined> {
  const argv = [
    force ? '1' : '0',
    retentionMs === undefined ? '' : String(retentionMs),
    ctx.settings.sessionRetentionMs === undefined ? '0' : '1',
  ];
  const reply = await ctx.run('rts_delete_session', sessionId, argv);
  if (reply[0] === 'kept') return undefined;
  if (reply[0] !== 'deleted' || reply.length < 5 || (reply.length - 5) % 2 !== 0) throw badReply(reply);
  const [existed, inputs, settled, fenced] = reply.slice(1, 5).map(Number);
  const n = (reply.length - 5) / 2;
  const encoded = reply.slice(5, 5 + n).map(String);
  const last = reply.slice(5 + n).map(Number);
  const deletion: SessionDeletion = {
    sessionId,
    existed: existed === 1,
    removedTurnInputs: inputs,
    removedSettledState: settled === 1,
    removedAttachmentIds: ascending(encoded.map(decodeId)),
    unreferencedAttachmentIds: [],
  };
  if (fenced > 0) deletion.fencedGeneration = fenced;
  return {
    deletion,
    lastInShard: encoded.filter((_, i) => last[i] === 1),
    shardTag: ctx.keys(sessionId).shardTag,
  };
}

/**
 * Standalone: the shard's answer is the store's. Cluster: an id is unreferenced only if no other
 * shard holds an entry for it either (a store-wide read: every master must answer).
 */
async function settleAttachments(ctx: RedisContext, raw: RawDeletion): Promise<SessionDeletion> {
  let candidates = raw.lastInShard;
  if (candidates.length > 0 && ctx.layout.mode === 'cluster') {
    const shards = (await listShardKeys(ctx, 'att-byid')).filter((s) => s.tag !== raw.shardTag);
    const held = new Set<string>();
    for (const shard of shards) {
      const flags = await ctx.runShard('rts_att_any_ref', shard.tag, candidates);
      candidates.forEach((c, i) => {
        if (Number(flags[i]) === 1) held.add(c);
      });
    }
    candidates = candidates.filter((c) => !held.has(c));
  }
  raw.deletion.unreferencedAttachmentIds = ascending(candidates.map(decodeId));
  return raw.deletion;
}

export async function deleteSession(
  ctx: RedisContext,
  sessionId: string,
  options: { force?: boolean } | undefined,
): Promise<SessionDeletion> {
  const a = args.deleteSession(sessionId, options);
  return ctx.track(async () => {
    const raw = await runDelete(ctx, a.sessionId, a.options?.force === true, undefined);
    if (!raw) throw badReply('kept');
    return settleAttachments(ctx, raw);
  });
}

/** Sessions taken from a shard's activity index per scan. */
const SCAN_BATCH = 256;

async function expireShard(
  ctx: RedisContext,
  shardTag: string,
  retentionMs: number,
): Promise<{ removed: number; unreferenced: string[] }> {
  let removed = 0;
  const unreferenced: string[] = [];
  let cutoff = '';
  const visited = new Set<string>();
  for (;;) {
    const reply = await ctx.runShard('rts_vacuum_idle_scan', shardTag, [
      String(retentionMs),
      String(SCAN_BATCH),
      cutoff,
    ]);
    if (typeof reply[0] !== 'string') throw badReply(reply);
    cutoff = reply[0];
    // A kept session is rescored past the cutoff, a deleted one leaves the index; seeing only
    // visited members again ends the pass.
    const due = reply
      .slice(1)
      .map(String)
      .filter((m) => !visited.has(m));
    if (due.length === 0) return { removed, unreferenced };
    for (const m of due) visited.add(m);
    const results = await Promise.all(
      due.map(async (member) => {
        let sessionId: string;
        try {
          sessionId = decodeId(member);
        } catch {
          return undefined;
        }
        const raw = await runDelete(ctx, sessionId, false, retentionMs);
        return raw && (await settleAttachments(ctx, raw));
      }),
    );
    for (const r of results) {
      if (!r?.existed) continue;
      removed++;
      unreferenced.push(...r.unreferencedAttachmentIds);
    }
  }
}

/** vacuum's second pass: every shard's activity index (SPEC 8.5). */
export async function expireIdleSessions(
  ctx: RedisContext,
  retentionMs: number,
): Promise<{ removedIdleSessions: number; unreferencedAttachmentIds: string[] }> {
  const shards = await listShardKeys(ctx, 'activity');
  const perShard = await Promise.all(shards.map((s) => expireShard(ctx, s.tag, retentionMs)));
  return {
    removedIdleSessions: perShard.reduce((sum, s) => sum + s.removed, 0),
    unreferencedAttachmentIds: ascending(perShard.flatMap((s) => s.unreferenced)),
  };
}
