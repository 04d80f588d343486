/**
 * deleteSession and vacuum's idle-session expiry on the in-memory store (SPEC 8.4, 8.5), the
 * reference for lua/delete-session.lua: the same checks, the same fence, the same report.
 */
import { args } from '../contract/arguments.js';
import { StoreError } from '../contract/errors.js';
import type { SessionDeletion } from '../contract/types.js';
import { isLive } from './lease-record.js';
import { type MemoryContext, newSessionState, type SessionState } from './session-state.js';

function ascending(ids: Iterable<string>): string[] {
  return [...new Set(ids)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/** Whether anything of the session is stored, a fence left by an earlier delete aside. */
function hasStoredState(session: SessionState): boolean {
  const t = session.inputs;
  const s = session.settled;
  const fenceOnly = session.lease?.fenceOnly === true;
  return (
    t.rows.size > 0 ||
    s.head !== undefined ||
    s.nodes.size > 0 ||
    s.blobs.size > 0 ||
    s.usage.length > 0 ||
    s.stamps.size > 0 ||
    session.metaJson !== undefined ||
    (session.lease !== undefined && !fenceOnly) ||
    (t.lastSeq > 0 && !fenceOnly)
  );
}

/**
 * One deletion, synchronous. `retentionMs` set = idle mode: returns undefined, changing nothing,
 * when the session is not idle that long.
 */
function deleteOne(
  ctx: MemoryContext,
  sessionId: string,
  force: boolean,
  retentionMs: number | undefined,
  now: number,
): SessionDeletion | undefined {
  const session = ctx.state.sessions.get(sessionId);
  const lease = session?.lease;
  const live = isLive(lease, now);
  const expires = lease?.holder?.expiresAtEpochMs ?? 0;
  const fencedUntil = lease?.fencedUntilEpochMs ?? 0;
  if (retentionMs !== undefined) {
    if (session?.lastActivityAtMs === undefined) return undefined;
    const last = Math.max(session.lastActivityAtMs, expires, fencedUntil);
    if (live || last > now - retentionMs) return undefined;
  } else if (live && !force) {
    throw new StoreError('SessionBusy', { sessionId, generation: lease.fencingToken });
  }
  const keepFence = live || fencedUntil > now;
  const entries: string[] = [];
  for (const [attachmentId, bySession] of ctx.state.attachments) {
    if (bySession.has(sessionId)) entries.push(attachmentId);
  }
  const existed = (session !== undefined && hasStoredState(session)) || entries.length > 0;
  const result: SessionDeletion = {
    sessionId,
    existed,
    removedTurnInputs: session?.inputs.rows.size ?? 0,
    removedSettledState: session?.settled.head !== undefined,
    removedAttachmentIds: ascending(entries),
    unreferencedAttachmentIds: [],
  };
  if (keepFence && lease) result.fencedGeneration = lease.fencingToken;
  // Already deleted: nothing stored, at most a fence still in force. Change nothing.
  if (!existed && (lease === undefined || keepFence)) return result;

  const unreferenced: string[] = [];
  for (const attachmentId of entries) {
    const bySession = ctx.state.attachments.get(attachmentId);
    bySession?.delete(sessionId);
    if (bySession?.size === 0) {
      ctx.state.attachments.delete(attachmentId);
      unreferenced.push(attachmentId);
    }
  }
  result.unreferencedAttachmentIds = ascending(unreferenced);
  if (keepFence && lease && session) {
    const fenced = newSessionState();
    const until = Math.max(live ? expires : 0, fencedUntil);
    fenced.lease = { fencingToken: lease.fencingToken, fencedUntilEpochMs: until, fenceOnly: true };
    fenced.inputs.lastSeq = session.inputs.lastSeq;
    fenced.lastActivityAtMs = until;
    ctx.state.sessions.set(sessionId, fenced);
  } else {
    ctx.state.sessions.delete(sessionId);
  }
  return result;
}

export function deleteSession(
  ctx: MemoryContext,
  sessionIdArg: string,
  optionsArg: { force?: boolean } | undefined,
): SessionDeletion {
  const { sessionId, options } = args.deleteSession(sessionIdArg, optionsArg);
  ctx.assertOpen();
  return deleteOne(ctx, sessionId, options?.force === true, undefined, ctx.clock()) as SessionDeletion;
}

/** vacuum's second pass (only with sessionRetentionMs), at the clock the vacuum read. */
export function expireIdleSessions(
  ctx: MemoryContext,
  retentionMs: number,
  now: number,
): { removedIdleSessions: number; unreferencedAttachmentIds: string[] } {
  let removed = 0;
  const unreferenced: string[] = [];
  for (const sessionId of [...ctx.state.sessions.keys()]) {
    const r = deleteOne(ctx, sessionId, false, retentionMs, now);
    if (!r?.existed) continue;
    removed++;
    unreferenced.push(...r.unreferencedAttachmentIds);
  }
  return { removedIdleSessions: removed, unreferencedAttachmentIds: ascending(unreferenced) };
}
