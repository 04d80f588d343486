/**
 * Attachment manifest entries as stored in the shard `att` hash (docs/KEYS.md): the JSON the
 * client writes, and reading it back.
 */
import type { AttachmentIntent, AttachmentManifestEntry } from '../contract/types.js';
import { encodeId } from './key-encoding.js';

/** The entry JSON stored in `att` (no commit stamp: Lua appends or keeps it as the last field). */
export function attachmentEntryJson(intent: AttachmentIntent): string {
  return JSON.stringify({
    sessionId: intent.sessionId,
    attachmentId: intent.attachmentId,
    canonicalUri: intent.canonicalUri,
    intentAtEpochMs: intent.intentAtEpochMs,
  });
}

/** `<pct(sessionId)>:<pct(attachmentId)>`, the member in `att` and `att-uncommitted`. */
export function attachmentMember(sessionId: string, attachmentId: string): string {
  return `${encodeId(sessionId)}:${encodeId(attachmentId)}`;
}

export function parseAttachmentEntry(raw: string): AttachmentManifestEntry {
  const e = JSON.parse(raw) as AttachmentManifestEntry;
  const out: AttachmentManifestEntry = {
    attachmentId: e.attachmentId,
    sessionId: e.sessionId,
    canonicalUri: e.canonicalUri,
    intentAtEpochMs: e.intentAtEpochMs,
  };
  if (e.committedAtEpochMs !== undefined) out.committedAtEpochMs = e.committedAtEpochMs;
  return out;
}

/** listUncommitted order: intentAtEpochMs, then sessionId, then attachmentId (JS string order). */
export function compareEntries(a: AttachmentManifestEntry, b: AttachmentManifestEntry): number {
  if (a.intentAtEpochMs !== b.intentAtEpochMs) return a.intentAtEpochMs - b.intentAtEpochMs;
  if (a.sessionId !== b.sessionId) return a.sessionId < b.sessionId ? -1 : 1;
  if (a.attachmentId !== b.attachmentId) return a.attachmentId < b.attachmentId ? -1 : 1;
  return 0;
}
