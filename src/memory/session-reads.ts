/**
 * Reads of settled session state (SPEC 6.5, 6.6): the head, the hydrated checkpoint, the graph
 * scopes and the usage ledger. Pure functions of a SettledState; every value returned is fresh.
 */
import { StoreError } from '../contract/errors.js';
import type {
  HydratedSessionCheckpoint,
  PersistedSessionRead,
  SessionCheckpoint,
  SessionGraph,
  SessionNodeRecord,
  SessionReadScope,
  TokenLedgerEntry,
} from '../contract/types.js';
import type { HeadRecord, SettledState, StoredNode } from './session-state.js';

function missingBlob(sessionId: string, ref: string): StoreError {
  return new StoreError('Backend', { cause: `session ${JSON.stringify(sessionId)} has no blob ${ref}` });
}

/** A JSON blob's text. (A byte blob with the same address holds the same bytes.) */
function blobText(settled: SettledState, sessionId: string, ref: string): string {
  const blob = settled.blobs.get(ref);
  if (blob === undefined) throw missingBlob(sessionId, ref);
  return typeof blob === 'string' ? blob : Buffer.from(blob).toString('utf8');
}

function blobBytes(settled: SettledState, sessionId: string, ref: string): Uint8Array {
  const blob = settled.blobs.get(ref);
  if (blob === undefined) throw missingBlob(sessionId, ref);
  return typeof blob === 'string' ? new Uint8Array(Buffer.from(blob, 'utf8')) : new Uint8Array(blob);
}

/** The manifest with every ref's snapshot loaded from its blob. */
export function hydrateCheckpoint(settled: SettledState, sessionId: string, ref: string): HydratedSessionCheckpoint {
  const manifest = JSON.parse(blobText(settled, sessionId, ref)) as SessionCheckpoint;
  const out: HydratedSessionCheckpoint = { turnState: manifest.turnState };
  if (manifest.toolStateRef !== undefined) {
    out.toolStateRef = manifest.toolStateRef;
    out.toolState = JSON.parse(blobText(settled, sessionId, manifest.toolStateRef));
  }
  if (manifest.pluginSnapshotRef !== undefined) {
    out.pluginSnapshotRef = manifest.pluginSnapshotRef;
    out.pluginSnapshot = JSON.parse(blobText(settled, sessionId, manifest.pluginSnapshotRef));
  }
  if (manifest.pluginSnapshotRevision !== undefined) out.pluginSnapshotRevision = manifest.pluginSnapshotRevision;
  if (manifest.executionStateRef !== undefined) {
    out.executionStateRef = manifest.executionStateRef;
    out.executionState = blobBytes(settled, sessionId, manifest.executionStateRef);
  }
  return out;
}

export function nodeView(node: StoredNode): SessionNodeRecord {
  return JSON.parse(node.json) as SessionNodeRecord;
}

/**
 * active_path: root first, from the leaf up through parentNodeId. The walk stops at the first
 * missing ancestor and at a node already visited (a cycle); its cost is the path length.
 */
export function activePath(nodes: Map<string, StoredNode>, leafNodeId: string | undefined): SessionGraph {
  if (leafNodeId === undefined) return { nodes: [] };
  const path: SessionNodeRecord[] = [];
  const seen = new Set<string>();
  let id: string | undefined = leafNodeId;
  while (id !== undefined && !seen.has(id)) {
    const node = nodes.get(id);
    if (!node) break;
    seen.add(id);
    path.push(nodeView(node));
    id = node.parentNodeId;
  }
  return { nodes: path.reverse(), leafNodeId };
}

export function fullGraph(nodes: Map<string, StoredNode>, head: HeadRecord): SessionGraph {
  const graph: SessionGraph = { nodes: [...nodes.values()].map(nodeView) };
  if (head.leafNodeId !== undefined) graph.leafNodeId = head.leafNodeId;
  return graph;
}

export function ledgerView(usage: TokenLedgerEntry[]): TokenLedgerEntry[] {
  return usage.map((e) => ({ source: e.source, model: e.model, usage: { ...e.usage } }));
}

/** loadSession: null before the first commit. */
export function readSession(
  settled: SettledState | undefined,
  sessionId: string,
  scope: SessionReadScope,
): PersistedSessionRead | null {
  const head = settled?.head;
  if (!settled || !head) return null;
  const checkpoint = hydrateCheckpoint(settled, sessionId, head.checkpointRef);
  const graph =
    scope.kind === 'full_graph'
      ? fullGraph(settled.nodes, head)
      : activePath(settled.nodes, scope.leafNodeId ?? head.leafNodeId);
  return {
    sessionId,
    headRevision: head.headRevision,
    config: JSON.parse(head.configJson),
    agentFrames: JSON.parse(head.agentFramesJson),
    currentAgentFrameId: head.currentAgentFrameId,
    graph,
    checkpointRef: head.checkpointRef,
    checkpoint,
    tokenLedger: ledgerView(settled.usage),
  };
}
