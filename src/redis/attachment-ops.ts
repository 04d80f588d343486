/**
 * The attachment manifest on Redis (SPEC 7, docs/KEYS.md shard keys `att`, `att-uncommitted`,
 * `att-byid`). Per-pair methods are one per-session script on the pair's session block (its shard
 * keys are part of it). Store-wide queries run one shard-level script per shard.
 */
import { args } from '../contract/arguments.js';
import type { AttachmentIntent, AttachmentManifestEntry } from '../contract/types.js';
import { attachmentEntryJson, compareEntries, parseAttachmentEntry } from './attachment-entry.js';
import type { RedisContext } from './context.js';
import { decodeId, encodeId } from './key-encoding.js';
import { listShardKeys } from './shards.js';

/** Runs a shard script on every shard that holds manifest entries. */
async function everyShard(ctx: RedisContext, command: string, argv: string[]): Promise<unknown[][]> {
  const shards = await listShardKeys(ctx, 'att');
  return Promise.all(shards.map((s) => ctx.runShard(command, s.tag, argv)));
}

export async function recordIntent(ctx: RedisContext, intent: AttachmentIntent): Promise<void> {
  const i = args.recordIntent(intent);
  return ctx.track(async () => {
    await ctx.run('rts_att_record_intent', i.sessionId, [
      encodeId(i.attachmentId),
      attachmentEntryJson(i),
      String(i.intentAtEpochMs),
    ]);
  });
}

export async function commitRefs(ctx: RedisContext, sessionId: string, attachmentIds: string[]): Promise<void> {
  const a = args.commitRefs(sessionId, attachmentIds);
  if (a.attachmentIds.length === 0) return;
  await ctx.track(async () => {
    await ctx.run('rts_att_commit_refs', a.sessionId, a.attachmentIds.map(encodeId));
  });
}

export async function listUncommitted(ctx: RedisContext, olderThanEpochMs: number): Promise<AttachmentManifestEntry[]> {
  const cutoff = args.cutoff('olderThanEpochMs', olderThanEpochMs);
  return ctx.track(async () => {
    const replies = await everyShard(ctx, 'rts_att_list_uncommitted', [String(cutoff)]);
    const entries = replies
      .flat()
      .map((raw) => parseAttachmentEntry(String(raw)))
      .filter((e) => e.committedAtEpochMs === undefined && e.intentAtEpochMs <= cutoff);
    return entries.sort(compareEntries);
  });
}

export async function forgetAgedUncommittedIntents(ctx: RedisContext, cutoffEpochMs: number): Promise<number> {
  const cutoff = args.cutoff('cutoffEpochMs', cutoffEpochMs);
  return ctx.track(async () => {
    const replies = await everyShard(ctx, 'rts_att_forget_aged', [String(cutoff)]);
    return replies.reduce((sum, r) => sum + Number(r[0]), 0);
  });
}

export async function hasLiveRefForId(
  ctx: RedisContext,
  attachmentId: string,
  cutoffEpochMs: number,
): Promise<boolean> {
  const a = args.hasLiveRef(attachmentId, cutoffEpochMs);
  return ctx.track(async () => {
    const argv = [encodeId(a.attachmentId), String(a.cutoffEpochMs)];
    for (const shard of await listShardKeys(ctx, 'att')) {
      const [live] = await ctx.runShard('rts_att_has_live_ref', shard.tag, argv);
      if (Number(live) === 1) return true;
    }
    return false;
  });
}

export async function forget(ctx: RedisContext, sessionId: string, attachmentId: string): Promise<void> {
  const a = args.attachmentPair(sessionId, attachmentId);
  return ctx.track(async () => {
    await ctx.run('rts_att_forget', a.sessionId, [encodeId(a.attachmentId)]);
  });
}

export async function holdsRef(ctx: RedisContext, sessionId: string, attachmentId: string): Promise<boolean> {
  const a = args.attachmentPair(sessionId, attachmentId);
  return ctx.track(async () => {
    const [held] = await ctx.run('rts_att_holds_ref', a.sessionId, [encodeId(a.attachmentId)]);
    return Number(held) === 1;
  });
}

export async function listAllRefs(ctx: RedisContext): Promise<string[]> {
  return ctx.track(async () => {
    const replies = await everyShard(ctx, 'rts_att_list_all_refs', []);
    const ids = new Set<string>();
    for (const r of replies) for (const enc of r) ids.add(decodeId(String(enc)));
    return [...ids].sort();
  });
}
