/**
 * buildTurnCommit: the commit of the common turn, one that appends nodes to the session graph.
 * It fills in what the run already knows (the session, the claims to complete, the head it read)
 * and carries over what the turn does not change (config, agent frames, checkpoint), so a turn
 * only says what it added.
 */
import type {
  HydratedSessionCheckpoint,
  JsonValue,
  PersistedSessionRead,
  SessionNodeRecord,
  TokenLedgerEntry,
  TurnInputCompletion,
} from '../contract/types.js';
import { claimCompletion } from '../core/projections.js';
import { turnCommitHash } from '../core/turn-commit-hash.js';
import type { RunTurnCommit, RunTurnContext } from './worker.js';

export interface TurnCommitParts {
  /**
   * The session as this turn read it (`store.session(id).loadSession(...)`), or null for a
   * session with no commit yet. Its headRevision becomes expectedHeadRevision (a commit in between
   * fails as HeadRevisionConflict), its leaf the parent of the first node, and its config, agent
   * frames and checkpoint carry over unless given here.
   */
  head: PersistedSessionRead | null;
  /**
   * The nodes the turn appends, in order. A node without parentNodeId is linked to the node before
   * it (the first one to the head's leaf); the objects are not modified.
   */
  nodes: SessionNodeRecord[];
  /** Default: the last node (the head's leaf when `nodes` is empty). */
  leafNodeId?: string;
  /** Default: the head's (`{}` for a new session). */
  config?: JsonValue;
  /** Default: the head's (`[]` for a new session). */
  agentFrames?: JsonValue[];
  /** Default: the head's (`'main'` for a new session). */
  currentAgentFrameId?: string;
  /**
   * Default: the head's checkpoint, kept by reference (turnState and the snapshot refs; nothing is
   * re-sent). For a new session `{ turnState: null }`.
   */
  checkpoint?: HydratedSessionCheckpoint;
  /** Default `[]`. */
  usageDeltas?: TokenLedgerEntry[];
  /**
   * The turn's id. When given, the commit is stamped (`turnCommit` with its turnCommitHash: a
   * replay of the same turn is answered with the first result) and active-turn input addressed to
   * this turn that no checkpoint admitted moves to the next turn (`interruptedTurnInputTurnId`).
   */
  turnId?: string;
  /** Default `[]`. */
  committedAttachmentIds?: string[];
}

/**
 * Builds the RuntimeCommit of a turn run by the idle-dispatch worker: every claim the run holds
 * (`ctx.claims`) is completed, and the helper adds the fence and the release. Pure, no I/O.
 *
 *   const head = await store.session(ctx.sessionId).loadSession({ kind: 'active_path' });
 *   // ...run the model on ctx.claim.inputs...
 *   return buildTurnCommit(ctx, { head, nodes: [userNode, assistantNode] });
 */
export function buildTurnCommit<TInput>(ctx: RunTurnContext<TInput>, parts: TurnCommitParts): RunTurnCommit {
  const { head } = parts;
  let leaf = head?.graph.leafNodeId;
  const nodes = parts.nodes.map((node) => {
    const linked = node.parentNodeId === undefined && leaf !== undefined ? { ...node, parentNodeId: leaf } : node;
    leaf = node.nodeId;
    return linked;
  });
  const leafNodeId = parts.leafNodeId ?? leaf;
  const completedTurnInputClaims: TurnInputCompletion[] = ctx.claims.map(claimCompletion);
  const commit: RunTurnCommit = {
    sessionId: ctx.sessionId,
    expectedHeadRevision: head?.headRevision ?? 0,
    config: parts.config ?? head?.config ?? {},
    agentFrames: parts.agentFrames ?? head?.agentFrames ?? [],
    currentAgentFrameId: parts.currentAgentFrameId ?? head?.currentAgentFrameId ?? 'main',
    graph: leafNodeId === undefined ? { kind: 'append', nodes } : { kind: 'append', nodes, leafNodeId },
    checkpoint: parts.checkpoint ?? checkpointByReference(head?.checkpoint),
    usageDeltas: parts.usageDeltas ?? [],
    completedTurnInputClaims,
    committedAttachmentIds: parts.committedAttachmentIds ?? [],
  };
  if (parts.turnId !== undefined) {
    commit.interruptedTurnInputTurnId = parts.turnId;
    const full = { ...commit, sessionId: ctx.sessionId, completedTurnInputClaims };
    commit.turnCommit = { sessionId: ctx.sessionId, turnId: parts.turnId, turnCommitHash: turnCommitHash(full) };
  }
  return commit;
}

/** The head's checkpoint without its hydrated snapshots: the refs keep the stored blobs. */
function checkpointByReference(checkpoint: HydratedSessionCheckpoint | undefined): HydratedSessionCheckpoint {
  if (!checkpoint) return { turnState: null };
  const out: HydratedSessionCheckpoint = { turnState: checkpoint.turnState };
  if (checkpoint.toolStateRef !== undefined) out.toolStateRef = checkpoint.toolStateRef;
  if (checkpoint.pluginSnapshotRef !== undefined) out.pluginSnapshotRef = checkpoint.pluginSnapshotRef;
  if (checkpoint.pluginSnapshotRevision !== undefined) out.pluginSnapshotRevision = checkpoint.pluginSnapshotRevision;
  if (checkpoint.executionStateRef !== undefined) out.executionStateRef = checkpoint.executionStateRef;
  return out;
}
