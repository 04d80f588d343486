/**
 * The pure part of commitRuntimeState (SPEC 6.3 steps 1-2), shared by both backends: which blobs
 * a commit writes, its manifest and checkpointRef, which refs must already exist, and how usage
 * deltas fold into the ledger.
 */
import type { HydratedSessionCheckpoint, SessionCheckpoint, TokenLedgerEntry, TokenUsage } from '../contract/types.js';
import { canonical, sha256hex } from './canonical.js';

export interface PlannedBlob {
  ref: string;
  /** Canonical JSON text, or the raw bytes of executionState. */
  content: string | Uint8Array;
}

export interface CheckpointPlan {
  /** Snapshot blobs to store, then the manifest blob (last). */
  blobs: PlannedBlob[];
  /** canonical(manifest): the manifest blob's content (JSON.parse it for the manifest object). */
  manifestJson: string;
  checkpointRef: string;
  /** Refs given without their snapshot: each must name an existing blob of the session. */
  refsToCheck: { field: 'toolStateRef' | 'pluginSnapshotRef' | 'executionStateRef'; ref: string }[];
  /** Every blob the new head references; the commit deletes all others. */
  liveRefs: string[];
}

const SNAPSHOTS = [
  { field: 'toolStateRef', value: 'toolState' },
  { field: 'pluginSnapshotRef', value: 'pluginSnapshot' },
  { field: 'executionStateRef', value: 'executionState' },
] as const;

/**
 * sha256hex of short texts, memoised. Most commits carry one of a few small manifests (often
 * exactly `{"schemaVersion":1,"turnState":null}`), so the manifest hash is usually a lookup.
 * Bounded: at most HASH_MEMO_ENTRIES texts of at most HASH_MEMO_MAX_CHARS, oldest evicted first.
 */
const HASH_MEMO_ENTRIES = 256;
const HASH_MEMO_MAX_CHARS = 512;
const hashMemo = new Map<string, string>();

function memoSha256hex(text: string): string {
  if (text.length > HASH_MEMO_MAX_CHARS) return sha256hex(text);
  let hash = hashMemo.get(text);
  if (hash === undefined) {
    hash = sha256hex(text);
    if (hashMemo.size >= HASH_MEMO_ENTRIES) hashMemo.delete(hashMemo.keys().next().value as string);
    hashMemo.set(text, hash);
  }
  return hash;
}

export function planCheckpoint(checkpoint: HydratedSessionCheckpoint): CheckpointPlan {
  const blobs: PlannedBlob[] = [];
  const refsToCheck: CheckpointPlan['refsToCheck'] = [];
  const refs: Partial<Record<(typeof SNAPSHOTS)[number]['field'], string>> = {};
  for (const { field, value } of SNAPSHOTS) {
    const snapshot = checkpoint[value];
    if (snapshot !== undefined) {
      if (value === 'executionState') {
        const bytes = snapshot as Uint8Array;
        const ref = sha256hex(bytes);
        blobs.push({ ref, content: bytes });
        refs[field] = ref;
      } else {
        const text = canonical(snapshot);
        const ref = memoSha256hex(text);
        blobs.push({ ref, content: text });
        refs[field] = ref;
      }
    } else if (checkpoint[field] !== undefined) {
      refs[field] = checkpoint[field];
      refsToCheck.push({ field, ref: checkpoint[field] as string });
    }
  }
  const manifest: SessionCheckpoint = { schemaVersion: 1, turnState: checkpoint.turnState };
  if (refs.toolStateRef !== undefined) manifest.toolStateRef = refs.toolStateRef;
  if (refs.pluginSnapshotRef !== undefined) manifest.pluginSnapshotRef = refs.pluginSnapshotRef;
  if (checkpoint.pluginSnapshotRevision !== undefined)
    manifest.pluginSnapshotRevision = checkpoint.pluginSnapshotRevision;
  if (refs.executionStateRef !== undefined) manifest.executionStateRef = refs.executionStateRef;
  const manifestJson = canonical(manifest);
  const checkpointRef = memoSha256hex(manifestJson);
  blobs.push({ ref: checkpointRef, content: manifestJson });
  const liveRefs = [checkpointRef];
  for (const ref of Object.values(refs)) if (!liveRefs.includes(ref)) liveRefs.push(ref);
  return { blobs, manifestJson, checkpointRef, refsToCheck, liveRefs };
}

export const USAGE_COUNTERS = [
  'inputTokens',
  'outputTokens',
  'cacheReadInputTokens',
  'cacheWriteInputTokens',
  'reasoningOutputTokens',
] as const satisfies readonly (keyof TokenUsage)[];

/** SPEC 6.3 step 2: an entry whose four non-reasoning counters sum to 0 is skipped. */
export function countsTowardLedger(usage: TokenUsage): boolean {
  return usage.inputTokens + usage.outputTokens + usage.cacheReadInputTokens + usage.cacheWriteInputTokens !== 0;
}

/** The deltas that change the ledger, pre-summed per (source, model) in first-seen order. */
export function foldUsageDeltas(deltas: TokenLedgerEntry[]): TokenLedgerEntry[] {
  const groups = new Map<string, TokenLedgerEntry>();
  for (const d of deltas) {
    if (!countsTowardLedger(d.usage)) continue;
    const key = JSON.stringify([d.source, d.model]);
    const g = groups.get(key);
    if (!g) {
      groups.set(key, { source: d.source, model: d.model, usage: { ...pickUsage(d.usage) } });
    } else {
      for (const c of USAGE_COUNTERS) g.usage[c] += d.usage[c];
    }
  }
  return [...groups.values()];
}

/** Adds folded deltas to a ledger (new groups go at the end); returns a new ledger. */
export function applyUsage(ledger: TokenLedgerEntry[], deltas: TokenLedgerEntry[]): TokenLedgerEntry[] {
  const out = ledger.map((e) => ({ source: e.source, model: e.model, usage: { ...e.usage } }));
  for (const d of foldUsageDeltas(deltas)) {
    const g = out.find((e) => e.source === d.source && e.model === d.model);
    if (g) for (const c of USAGE_COUNTERS) g.usage[c] += d.usage[c];
    else out.push(d);
  }
  return out;
}

function pickUsage(u: TokenUsage): TokenUsage {
  return {
    inputTokens: u.inputTokens,
    outputTokens: u.outputTokens,
    cacheReadInputTokens: u.cacheReadInputTokens,
    cacheWriteInputTokens: u.cacheWriteInputTokens,
    reasoningOutputTokens: u.reasoningOutputTokens,
  };
}
