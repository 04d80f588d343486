/**
 * The store-wide attachment manifest (SPEC 7), reached through any session facet. Entries are
 * keyed by (sessionId, attachmentId) exactly as given; caller-supplied times are compared as given.
 * Held as attachmentId -> sessionId -> entry, so per-id questions never scan other ids.
 */
import { args } from '../contract/arguments.js';
import type { AttachmentIntent, AttachmentManifest, AttachmentManifestEntry } from '../contract/types.js';
import type { AttachmentEntryRecord, MemoryContext, MemoryStoreState } from './session-state.js';

function entryView(attachmentId: string, sessionId: string, e: AttachmentEntryRecord): AttachmentManifestEntry {
  const view: AttachmentManifestEntry = {
    attachmentId,
    sessionId,
    canonicalUri: e.canonicalUri,
    intentAtEpochMs: e.intentAtEpochMs,
  };
  if (e.committedAtEpochMs !== undefined) view.committedAtEpochMs = e.committedAtEpochMs;
  return view;
}

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Stamps existing entries of (sessionId, id) that have no stamp yet; missing entries are skipped. */
export function stampAttachments(
  state: MemoryStoreState,
  sessionId: string,
  attachmentIds: string[],
  now: number,
): void {
  for (const id of attachmentIds) {
    const entry = state.attachments.get(id)?.get(sessionId);
    if (entry && entry.committedAtEpochMs === undefined) entry.committedAtEpochMs = now;
  }
}

/** The manifest methods, bound to the store (not to a session: the manifest is store-wide). */
export class MemoryAttachmentManifest implements AttachmentManifest {
  constructor(protected readonly ctx: MemoryContext) {}

  private get byId(): Map<string, Map<string, AttachmentEntryRecord>> {
    return this.ctx.state.attachments;
  }

  async recordIntent(intentArg: AttachmentIntent): Promise<void> {
    const intent = args.recordIntent(intentArg);
    this.ctx.assertOpen();
    let bySession = this.byId.get(intent.attachmentId);
    if (!bySession) {
      bySession = new Map();
      this.byId.set(intent.attachmentId, bySession);
    }
    const existing = bySession.get(intent.sessionId);
    if (existing) {
      // A retried upload refreshes the intent and keeps any commit stamp.
      existing.canonicalUri = intent.canonicalUri;
      existing.intentAtEpochMs = intent.intentAtEpochMs;
    } else {
      bySession.set(intent.sessionId, { canonicalUri: intent.canonicalUri, intentAtEpochMs: intent.intentAtEpochMs });
    }
  }

  async commitRefs(sessionIdArg: string, attachmentIdsArg: string[]): Promise<void> {
    const { sessionId, attachmentIds } = args.commitRefs(sessionIdArg, attachmentIdsArg);
    if (attachmentIds.length === 0) return;
    this.ctx.assertOpen();
    stampAttachments(this.ctx.state, sessionId, attachmentIds, this.ctx.clock());
  }

  async listUncommitted(olderThanEpochMsArg: number): Promise<AttachmentManifestEntry[]> {
    const cutoff = args.cutoff('olderThanEpochMs', olderThanEpochMsArg);
    this.ctx.assertOpen();
    const out: AttachmentManifestEntry[] = [];
    for (const [attachmentId, bySession] of this.byId) {
      for (const [sessionId, e] of bySession) {
        if (e.committedAtEpochMs === undefined && e.intentAtEpochMs <= cutoff) {
          out.push(entryView(attachmentId, sessionId, e));
        }
      }
    }
    return out.sort(
      (a, b) =>
        a.intentAtEpochMs - b.intentAtEpochMs ||
        compareStrings(a.sessionId, b.sessionId) ||
        compareStrings(a.attachmentId, b.attachmentId),
    );
  }

  async forgetAgedUncommittedIntents(cutoffEpochMsArg: number): Promise<number> {
    const cutoff = args.cutoff('cutoffEpochMs', cutoffEpochMsArg);
    this.ctx.assertOpen();
    let removed = 0;
    for (const [attachmentId, bySession] of this.byId) {
      for (const [sessionId, e] of bySession) {
        if (e.committedAtEpochMs === undefined && e.intentAtEpochMs <= cutoff) {
          bySession.delete(sessionId);
          removed++;
        }
      }
      if (bySession.size === 0) this.byId.delete(attachmentId);
    }
    return removed;
  }

  async hasLiveRefForId(attachmentIdArg: string, cutoffEpochMsArg: number): Promise<boolean> {
    const { attachmentId, cutoffEpochMs } = args.hasLiveRef(attachmentIdArg, cutoffEpochMsArg);
    this.ctx.assertOpen();
    for (const e of this.byId.get(attachmentId)?.values() ?? []) {
      if (e.committedAtEpochMs !== undefined || e.intentAtEpochMs > cutoffEpochMs) return true;
    }
    return false;
  }

  async forget(sessionIdArg: string, attachmentIdArg: string): Promise<void> {
    const { sessionId, attachmentId } = args.attachmentPair(sessionIdArg, attachmentIdArg);
    this.ctx.assertOpen();
    const bySession = this.byId.get(attachmentId);
    if (!bySession) return;
    bySession.delete(sessionId);
    if (bySession.size === 0) this.byId.delete(attachmentId);
  }

  async holdsRef(sessionIdArg: string, attachmentIdArg: string): Promise<boolean> {
    const { sessionId, attachmentId } = args.attachmentPair(sessionIdArg, attachmentIdArg);
    this.ctx.assertOpen();
    return this.byId.get(attachmentId)?.has(sessionId) ?? false;
  }

  async listAllRefs(): Promise<string[]> {
    this.ctx.assertOpen();
    return [...this.byId.keys()].sort(compareStrings);
  }
}
