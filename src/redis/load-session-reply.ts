/**
 * The pure half of loadSession: the ARGV of lua/load-session.lua, reading its reply, and the
 * stored schemaVersion checks. No I/O here.
 */
import { StoreError } from '../contract/errors.js';
import type {
  HydratedSessionCheckpoint,
  JsonValue,
  PersistedSessionRead,
  SessionCheckpoint,
  SessionNodeRecord,
  SessionReadScope,
  TokenLedgerEntry,
  TokenUsage,
} from '../contract/types.js';
import { USAGE_COUNTERS } from '../core/commit-plan.js';
import { parseUsageGroup } from './commit-args.js';
import { nodeJsonOf } from './node-value.js';

export const SCHEMA_VERSION = 1;

export type RecordKind = 'session_head' | 'session_checkpoint';

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
  return ['path', scope.leafNodeId !== undefined ? '1' : '0', scope.leafNodeId ?? ''];
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
 *   nNodes, stored node* (`<pct(parent)>|<node JSON>`, active_path: root first).
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
  for (let n = count(next()); n > 0; n--) {
    const stored = next();
    nodes.push(json(nodeJsonOf(Buffer.isBuffer(stored) ? stored : text(stored)), 'graph node') as SessionNodeRecord);
  }

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
