/**
 * The pure half of the Redis commit and load scripts: building the ARGV of
 * lua/commit-runtime-state.lua, reading the replies of lua/load-session.lua, the stored
 * schemaVersion checks, and the attachment entry JSON. No I/O here.
 *
 * Opaque JSON travels as strings made here (JSON.stringify / canonical) and is stored by Lua as
 * given: Lua never decodes and re-encodes a payload (SPEC 10.6).
 */
import type { ParsedCommit } from '../contract/arguments.js';
import { StoreError } from '../contract/errors.js';
import type {
  AttachmentIntent,
  AttachmentManifestEntry,
  HydratedSessionCheckpoint,
  JsonValue,
  PersistedSessionRead,
  SessionCheckpoint,
  SessionNodeRecord,
  SessionReadScope,
  TokenLedgerEntry,
  TokenUsage,
} from '../contract/types.js';
import { type CheckpointPlan, USAGE_COUNTERS } from '../core/commit-plan.js';
import { decodeId, encodeId } from './key-encoding.js';

export type ArgvItem = string | Buffer;

export const SCHEMA_VERSION = 1;

export type RecordKind = 'session_head' | 'session_checkpoint';

const flag = (b: boolean): string => (b ? '1' : '0');

/** `<pct(source)>:<pct(model)>`: the usage group member (docs/KEYS.md `usage`, `usageorder`). */
export function usageGroup(source: string, model: string): string {
  return `${encodeId(source)}:${encodeId(model)}`;
}

export function parseUsageGroup(group: string): { source: string; model: string } {
  const i = group.indexOf(':');
  if (i < 0) throw new StoreError('Backend', { cause: `unreadable usage group ${JSON.stringify(group)}` });
  return { source: decodeId(group.slice(0, i)), model: decodeId(group.slice(i + 1)) };
}

function bytesArg(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Positions in the flags argument (ARGV[3]) of lua/commit-runtime-state.lua; '1' = set. */
const FLAG = {
  requeue: 0,
  turn: 1,
  release: 2,
  releaseIsFence: 3,
  fence: 4,
  expected: 5,
  queue: 6,
  leaf: 7,
  interrupt: 8,
  nodes: 9,
  refs: 10,
  usage: 11,
  attachments: 12,
  wakes: 13,
} as const;

/**
 * ARGV[2..] of lua/commit-runtime-state.lua (ARGV[1], the encoded session id, is added by
 * ctx.run). `usage` is the folded deltas (foldUsageDeltas). A fence that is absent or names another
 * session is sent as absent, so the script fails the fence check at its own step (after replay).
 *
 * Every argument costs Redis CPU on every call (bench/RESULTS.md), so the form is compact: one
 * flags string says which optional groups follow, a release equal to the fence is not sent twice,
 * and values the script can derive (the result tail, the manifest's refs) are not sent at all.
 */
export function buildCommitArgv(
  commit: ParsedCommit,
  plan: CheckpointPlan,
  usage: TokenLedgerEntry[],
  requeue: boolean,
  /** Whether the store sends idle-dispatch wake-ups: without them the script skips the wake check. */
  wakes: boolean,
): ArgvItem[] {
  const flags = ['0', '0', '0', '0', '0', '0', '0', '0', '0', '0', '0', '0', '0', '0'];
  // The flags go first (filled in at the end); the script decodes the raw session id from ARGV[1].
  const a: ArgvItem[] = [''];
  const set = (f: number) => {
    flags[f] = '1';
  };
  if (requeue) set(FLAG.requeue);
  if (wakes) set(FLAG.wakes);

  const turn = commit.turnCommit;
  if (turn !== undefined) {
    set(FLAG.turn);
    a.push(turn.turnId, JSON.stringify(turn.turnCommitHash));
  }

  const rel = commit.releaseSessionExecutionLease;
  const fence = commit.sessionExecutionLease;
  const fenceUsable = fence !== undefined && fence.sessionId === commit.sessionId;
  if (rel !== undefined) {
    set(FLAG.release);
    if (fenceUsable && sameLease(rel, fence)) set(FLAG.releaseIsFence);
    else a.push(rel.owner.ownerId, rel.owner.incarnationId, rel.leaseToken, String(rel.fencingToken));
  }
  if (fenceUsable) {
    set(FLAG.fence);
    a.push(fence.owner.ownerId, fence.owner.incarnationId, fence.leaseToken, String(fence.fencingToken));
  }
  if (commit.expectedHeadRevision !== undefined) {
    set(FLAG.expected);
    a.push(String(commit.expectedHeadRevision));
  }
  const queue = commit.completedQueueClaims?.[0];
  if (queue !== undefined) {
    set(FLAG.queue);
    a.push(queue.sessionId, queue.claimId);
  }

  // Completions: the session id only when it is not the commit's ('' otherwise; ids are never empty).
  a.push(String(commit.completedTurnInputClaims.length));
  for (const c of commit.completedTurnInputClaims) {
    a.push(c.sessionId === commit.sessionId ? '' : c.sessionId, c.claimId, c.leaseToken, String(c.inputIds.length));
    for (const id of c.inputIds) a.push(id);
  }

  // Graph: nodes as id, parent ('' when none; ids are never empty), node JSON.
  const graph = commit.graph;
  const nodes = graph.kind === 'append' ? graph.nodes : graph.kind === 'replace_full' ? graph.graph.nodes : [];
  const leaf = graph.kind === 'replace_full' ? graph.graph.leafNodeId : graph.leafNodeId;
  a.push(graph.kind);
  if (leaf !== undefined) {
    set(FLAG.leaf);
    a.push(leaf);
  }
  // The groups below that are usually empty are sent (count first) only when flagged: a count
  // costs the script an argument and a number conversion.
  if (nodes.length > 0) {
    set(FLAG.nodes);
    a.push(String(nodes.length));
    for (const n of nodes) a.push(n.nodeId, n.parentNodeId ?? '', JSON.stringify(n));
  }

  if (plan.refsToCheck.length > 0) {
    set(FLAG.refs);
    a.push(String(plan.refsToCheck.length));
    for (const r of plan.refsToCheck) a.push(r.field, r.ref);
  }

  a.push(JSON.stringify(commit.config), JSON.stringify(commit.agentFrames), commit.currentAgentFrameId);

  // Blobs, the manifest last: its ref is the checkpointRef and its text the result's manifest.
  // The script keeps these and the refs above (plan.liveRefs is exactly their union).
  a.push(String(plan.blobs.length));
  for (const b of plan.blobs) a.push(b.ref, typeof b.content === 'string' ? b.content : bytesArg(b.content));

  if (usage.length > 0) {
    set(FLAG.usage);
    a.push(String(usage.length));
    for (const u of usage) {
      a.push(usageGroup(u.source, u.model));
      for (const c of USAGE_COUNTERS) a.push(String(u.usage[c]));
    }
  }

  if (commit.interruptedTurnInputTurnId !== undefined) {
    set(FLAG.interrupt);
    a.push(commit.interruptedTurnInputTurnId);
  }

  if (commit.committedAttachmentIds.length > 0) {
    set(FLAG.attachments);
    a.push(String(commit.committedAttachmentIds.length));
    for (const id of commit.committedAttachmentIds) a.push(encodeId(id));
  }
  a[0] = flags.join('');
  return a;
}

/**
 * The last key of lua/commit-runtime-state.lua's `@keys` order this commit can reach: `claims`
 * closes the keys every commit may touch; each later group is needed only by some commits.
 */
export function commitLastKey(commit: ParsedCommit, usage: TokenLedgerEntry[]): string {
  if (commit.committedAttachmentIds.length > 0) return 'att_uncommitted';
  if (commit.interruptedTurnInputTurnId !== undefined) return 'dispatch';
  if (usage.length > 0) return 'usageorder';
  if (commit.graph.kind !== 'unchanged') return 'order';
  if (commit.turnCommit !== undefined) return 'stamps';
  return 'claims';
}

/** A release that names exactly the fence's lease (the usual end of a turn). */
function sameLease(
  a: NonNullable<ParsedCommit['releaseSessionExecutionLease']>,
  b: NonNullable<ParsedCommit['sessionExecutionLease']>,
): boolean {
  return (
    a.owner.ownerId === b.owner.ownerId &&
    a.owner.incarnationId === b.owner.incarnationId &&
    a.leaseToken === b.leaseToken &&
    a.fencingToken === b.fencingToken
  );
}

// ------------------------------------------------------------------ schema versions

/**
 * A stored schemaVersion as found: `raw` is the Redis hash field (a string, or null when absent)
 * for the head, or the parsed JSON value (undefined when absent) for the manifest.
 */
export function checkSchemaVersion(raw: unknown, recordKind: RecordKind): void {
  if (raw === undefined || raw === null) {
    throw new StoreError('MissingRecordSchemaVersion', { recordKind, expected: SCHEMA_VERSION });
  }
  let version: number | undefined;
  if (typeof raw === 'number' && Number.isInteger(raw)) version = raw;
  else if (typeof raw === 'string' && recordKind === 'session_head' && /^-?\d+$/.test(raw)) version = Number(raw);
  if (version === undefined) {
    throw new StoreError('InvalidRecordSchemaVersion', { recordKind, actual: raw, expected: SCHEMA_VERSION });
  }
  if (version !== SCHEMA_VERSION) {
    throw new StoreError('UnsupportedRecordSchemaVersion', { recordKind, actual: version, expected: SCHEMA_VERSION });
  }
}

// ------------------------------------------------------------------ load-session reply

/** ARGV[2..] of lua/load-session.lua. */
export function loadSessionArgv(scope: SessionReadScope): string[] {
  if (scope.kind === 'full_graph') return ['full', '0', ''];
  return ['path', flag(scope.leafNodeId !== undefined), scope.leafNodeId ?? ''];
}

type Bulk = Buffer | null;

function text(v: unknown): string {
  if (Buffer.isBuffer(v)) return v.toString('utf8');
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return String(v);
  throw new StoreError('Backend', { cause: `unexpected load reply element ${typeof v}` });
}

function optText(v: unknown): string | undefined {
  return v === null || v === undefined ? undefined : text(v);
}

function json(v: unknown, what: string): unknown {
  try {
    return JSON.parse(text(v));
  } catch (e) {
    throw new StoreError('Backend', { cause: `unreadable ${what}: ${(e as Error).message}` });
  }
}

function count(v: unknown): number {
  const n = typeof v === 'number' ? v : Number(text(v));
  if (!Number.isSafeInteger(n) || n < 0) throw new StoreError('Backend', { cause: 'unexpected load reply count' });
  return n;
}

const SNAPSHOT_FIELDS = [
  { ref: 'toolStateRef', value: 'toolState', bytes: false },
  { ref: 'pluginSnapshotRef', value: 'pluginSnapshot', bytes: false },
  { ref: 'executionStateRef', value: 'executionState', bytes: true },
] as const;

/**
 * Reads the reply of lua/load-session.lua (fetched with runBuffer, so blobs keep their bytes):
 *   exists(0|1), schemaVersion, headRevision, config, agentFrames, currentAgentFrameId,
 *   checkpointRef, headLeaf, manifest, nBlobs, (ref, content)*, nGroups, (group, 5 counters)*,
 *   nNodes, nodeJson* (active_path: root first).
 */
export function parseLoadSessionReply(
  reply: unknown[],
  sessionId: string,
  scope: SessionReadScope,
): PersistedSessionRead | null {
  let i = 0;
  const next = (): unknown => reply[i++];
  if (count(next()) === 0) return null;
  const schemaVersion = optText(next());
  checkSchemaVersion(schemaVersion ?? null, 'session_head');
  const headRevision = count(next());
  const config = json(next(), 'head config') as JsonValue;
  const agentFrames = json(next(), 'head agentFrames') as JsonValue[];
  const currentAgentFrameId = text(next());
  const checkpointRef = optText(next());
  const headLeaf = optText(next());
  const manifestRaw = next() as Bulk;
  const blobs = new Map<string, Bulk>();
  for (let n = count(next()); n > 0; n--) {
    const ref = text(next());
    blobs.set(ref, (next() as Bulk) ?? null);
  }
  const tokenLedger: TokenLedgerEntry[] = [];
  for (let n = count(next()); n > 0; n--) {
    const { source, model } = parseUsageGroup(text(next()));
    const usage = {} as TokenUsage;
    for (const c of USAGE_COUNTERS) usage[c] = Number(optText(next()) ?? '0');
    tokenLedger.push({ source, model, usage });
  }
  const nodes: SessionNodeRecord[] = [];
  for (let n = count(next()); n > 0; n--) nodes.push(json(next(), 'graph node') as SessionNodeRecord);

  if (checkpointRef === undefined) throw new StoreError('Backend', { cause: 'the session head has no checkpointRef' });
  const checkpoint = hydrateCheckpoint(checkpointRef, manifestRaw, blobs);

  const leafNodeId = scope.kind === 'full_graph' ? headLeaf : (scope.leafNodeId ?? headLeaf);
  const graph: PersistedSessionRead['graph'] = { nodes };
  if (leafNodeId !== undefined) graph.leafNodeId = leafNodeId;
  if (!Array.isArray(agentFrames)) throw new StoreError('Backend', { cause: 'head agentFrames is not an array' });
  return {
    sessionId,
    headRevision,
    config,
    agentFrames,
    currentAgentFrameId,
    graph,
    checkpointRef,
    checkpoint,
    tokenLedger,
  };
}

function hydrateCheckpoint(
  checkpointRef: string,
  manifestRaw: Bulk,
  blobs: Map<string, Bulk>,
): HydratedSessionCheckpoint {
  if (manifestRaw === null || manifestRaw === undefined) {
    throw new StoreError('Backend', { cause: `missing checkpoint manifest blob ${checkpointRef}` });
  }
  const manifest = json(manifestRaw, 'checkpoint manifest') as Partial<SessionCheckpoint> | null;
  if (manifest === null || typeof manifest !== 'object' || Array.isArray(manifest)) {
    throw new StoreError('Backend', { cause: 'the checkpoint manifest is not an object' });
  }
  checkSchemaVersion(manifest.schemaVersion, 'session_checkpoint');
  const out: HydratedSessionCheckpoint = { turnState: (manifest.turnState ?? null) as JsonValue };
  for (const f of SNAPSHOT_FIELDS) {
    const ref = manifest[f.ref];
    if (ref === undefined) continue;
    if (typeof ref !== 'string') throw new StoreError('Backend', { cause: `manifest ${f.ref} is not a string` });
    const blob = blobs.get(ref);
    if (blob === null || blob === undefined) {
      throw new StoreError('Backend', { cause: `missing ${f.value} blob ${ref}` });
    }
    out[f.ref] = ref;
    if (f.bytes) out.executionState = new Uint8Array(blob);
    else out[f.value as 'toolState' | 'pluginSnapshot'] = json(blob, `${f.value} blob`) as JsonValue;
  }
  if (manifest.pluginSnapshotRevision !== undefined) out.pluginSnapshotRevision = manifest.pluginSnapshotRevision;
  return out;
}

// ------------------------------------------------------------------ attachment entries

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
