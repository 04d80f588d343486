/**
 * The session facet of the in-memory store (SPEC 6, 7): commitRuntimeState, loads, meta and the
 * store-wide attachment manifest.
 *
 * commitRuntimeState runs every check of SPEC 6.2 in order, reading state only, and then every
 * write of SPEC 6.3; the writes cannot fail, so a rejected commit leaves no trace.
 */
import { args, type ParsedCommit } from '../contract/arguments.js';
import { invalidInput, StoreError } from '../contract/errors.js';
import type {
  DurabilityTier,
  PersistedSessionRead,
  RuntimeCommit,
  RuntimeCommitResult,
  SessionCommitStore,
  SessionMeta,
  SessionNodeRecord,
  SessionReadScope,
} from '../contract/types.js';
import { applyUsage, type CheckpointPlan, planCheckpoint } from '../core/commit-plan.js';
import { noLeaseFenceError } from '../core/fence-errors.js';
import { deferInterruptedTurn, type InputRow, rowById, setState } from './input-rows.js';
import { applyRelease, fencePasses, isInterrupted } from './lease-record.js';
import { MemoryAttachmentManifest, stampAttachments } from './memory-attachments.js';
import { nodeView, readSession } from './session-reads.js';
import { type MemoryContext, peekSession, type SessionState, sessionFor, touchSession } from './session-state.js';

/** Everything the checks established, for the write phase. */
interface CheckedCommit {
  session: SessionState;
  actual: number;
  plan: CheckpointPlan;
  /** The rows every completion settles (T8). */
  completedRows: InputRow[];
}

function bindingMismatch(boundSessionId: string, attemptedSessionId: string): StoreError {
  return new StoreError('SessionBindingMismatch', { boundSessionId, attemptedSessionId });
}

/**
 * SPEC 6.2 steps 3-7 (steps 0-2 run in commitRuntimeState). Reads only; throws the first failure.
 */
function checkCommit(ctx: MemoryContext, c: ParsedCommit, now: number): CheckedCommit {
  const sessionId = c.sessionId;
  const session = peekSession(ctx.state, sessionId);
  // 3. Fence.
  if (!c.sessionExecutionLease) throw noLeaseFenceError(sessionId);
  if (!session || !fencePasses(session.lease, sessionId, c.sessionExecutionLease, now)) {
    throw new StoreError('SessionExecutionLeaseExpired', { sessionId });
  }
  // 3a. An interrupted generation (SPEC 3.9) completes no claim and must release with this commit.
  if (isInterrupted(session.lease)) {
    const f = c.sessionExecutionLease;
    const r = c.releaseSessionExecutionLease;
    const releasesItself =
      r !== undefined &&
      r.owner.ownerId === f.owner.ownerId &&
      r.owner.incarnationId === f.owner.incarnationId &&
      r.leaseToken === f.leaseToken &&
      r.fencingToken === f.fencingToken;
    if (c.completedTurnInputClaims.length > 0 || !releasesItself) {
      throw new StoreError('TurnInterrupted', { sessionId, generation: f.fencingToken });
    }
  }
  const settled = session.settled;
  // 4. Head CAS.
  const actual = settled.head?.headRevision ?? 0;
  if (c.expectedHeadRevision !== undefined && c.expectedHeadRevision !== actual) {
    throw new StoreError('HeadRevisionConflict', { expected: c.expectedHeadRevision, actual });
  }
  // 5. No queued-work lane: any queued-work completion is superseded.
  const queued = c.completedQueueClaims?.[0];
  if (queued)
    throw new StoreError('QueuedWorkClaimSuperseded', { sessionId: queued.sessionId, claimId: queued.claimId });
  // 6. Turn-input completions: ownership, not liveness.
  const completedRows: InputRow[] = [];
  for (const completion of c.completedTurnInputClaims) {
    const superseded = () =>
      new StoreError('TurnInputClaimSuperseded', { sessionId: completion.sessionId, claimId: completion.claimId });
    if (completion.sessionId !== sessionId) throw superseded();
    const listed = new Set(completion.inputIds);
    const rows: InputRow[] = [];
    for (const inputId of completion.inputIds) {
      const row = rowById(session.inputs, inputId);
      if (!row?.claim || row.claim.claimId !== completion.claimId || row.claim.claimToken !== completion.leaseToken) {
        throw superseded();
      }
      rows.push(row);
    }
    for (const row of session.inputs.open.values()) {
      if (row.claim?.claimId === completion.claimId && !listed.has(row.inputId)) throw superseded();
    }
    completedRows.push(...rows);
  }
  // 7. Content checks.
  const issues: string[] = [];
  if (c.graph.kind === 'append') {
    c.graph.nodes.forEach((node, i) => {
      if (settled.nodes.has(node.nodeId)) issues.push(`graph.nodes.${i}.nodeId: already exists in the session graph`);
    });
  }
  const plan = planCheckpoint(c.checkpoint);
  for (const { field, ref } of plan.refsToCheck) {
    if (!settled.blobs.has(ref))
      issues.push(`checkpoint.${field}: names no blob of the session (send the snapshot, or the ref of a stored one)`);
  }
  if (issues.length > 0) throw invalidInput(issues);
  return { session, actual, plan, completedRows };
}

/** SPEC 6.3: every write of an accepted commit, in order. Nothing here can fail. */
function applyCommit(ctx: MemoryContext, c: ParsedCommit, checked: CheckedCommit, now: number): RuntimeCommitResult {
  const { session, actual, plan } = checked;
  const settled = session.settled;
  touchSession(session, now);
  // 1. Checkpoint blobs (snapshots, then the manifest).
  for (const blob of plan.blobs) {
    settled.blobs.set(blob.ref, typeof blob.content === 'string' ? blob.content : new Uint8Array(blob.content));
  }
  // 2. Usage.
  settled.usage = applyUsage(settled.usage, c.usageDeltas);
  // 3. Graph.
  const graph = c.graph;
  const store = (nodes: SessionNodeRecord[]) => {
    for (const node of nodes) {
      settled.nodes.set(node.nodeId, {
        json: JSON.stringify(node),
        ...(node.parentNodeId !== undefined ? { parentNodeId: node.parentNodeId } : {}),
      });
    }
  };
  let leafNodeId: string | undefined;
  if (graph.kind === 'replace_full') {
    settled.nodes.clear();
    store(graph.graph.nodes);
    leafNodeId = graph.graph.leafNodeId;
  } else {
    if (graph.kind === 'append') store(graph.nodes);
    leafNodeId = graph.leafNodeId;
  }
  // 4. Head.
  settled.head = {
    schemaVersion: 1,
    headRevision: actual + 1,
    configJson: JSON.stringify(c.config),
    agentFramesJson: JSON.stringify(c.agentFrames),
    currentAgentFrameId: c.currentAgentFrameId,
    checkpointRef: plan.checkpointRef,
    ...(leafNodeId !== undefined ? { leafNodeId } : {}),
    nodeCount: settled.nodes.size,
  };
  // 5. Settle claims (T8).
  for (const row of checked.completedRows) {
    if (row.state !== 'completed') setState(session.inputs, row, 'completed', now);
  }
  // 6. Interrupt deferral (T10), after the completions.
  if (c.interruptedTurnInputTurnId !== undefined)
    deferInterruptedTurn(session.inputs, c.interruptedTurnInputTurnId, now);
  // 7. Attachment stamps on existing entries of this session only.
  stampAttachments(ctx.state, c.sessionId, c.committedAttachmentIds, now);
  // 8. Turn stamp, with the exact result.
  const result: RuntimeCommitResult = {
    headRevision: actual + 1,
    checkpointRef: plan.checkpointRef,
    manifest: JSON.parse(plan.manifestJson),
  };
  const resultJson = JSON.stringify(result);
  if (c.turnCommit) {
    settled.stamps.set(c.turnCommit.turnId, {
      turnCommitHash: c.turnCommit.turnCommitHash,
      resultJson,
      committedAtMs: now,
    });
  }
  // 9. Fenced release.
  if (c.releaseSessionExecutionLease) applyRelease(session.lease, c.releaseSessionExecutionLease);
  // 10. Blob collection: keep exactly what the new head references.
  const live = new Set(plan.liveRefs);
  for (const ref of [...settled.blobs.keys()]) if (!live.has(ref)) settled.blobs.delete(ref);
  // 11.
  return JSON.parse(resultJson) as RuntimeCommitResult;
}

export function commitRuntimeState(
  ctx: MemoryContext,
  boundSessionId: string,
  commitArg: RuntimeCommit,
): RuntimeCommitResult {
  // 0. Validation.
  const c = args.commit(commitArg);
  // 1. Binding, and the first half of step 2: neither needs stored data (as on Redis, they are
  // answered before the closed gate).
  if (c.sessionId !== boundSessionId) throw bindingMismatch(boundSessionId, c.sessionId);
  if (c.turnCommit && c.turnCommit.sessionId !== c.sessionId) {
    throw new StoreError('RuntimeTurnCommitConflict', { sessionId: c.sessionId, turnId: c.turnCommit.turnId });
  }
  ctx.assertOpen();
  const now = ctx.clock();
  // 2. Turn-commit replay: answered before (and without) the fence.
  if (c.turnCommit) {
    const { turnId } = c.turnCommit;
    const session = peekSession(ctx.state, c.sessionId);
    const stamp = session?.settled.stamps.get(turnId);
    if (stamp) {
      if (stamp.turnCommitHash !== c.turnCommit.turnCommitHash) {
        throw new StoreError('RuntimeTurnCommitConflict', { sessionId: c.sessionId, turnId });
      }
      if (c.releaseSessionExecutionLease) applyRelease(session?.lease, c.releaseSessionExecutionLease);
      return JSON.parse(stamp.resultJson) as RuntimeCommitResult;
    }
  }
  const checked = checkCommit(ctx, c, now);
  return applyCommit(ctx, c, checked, now);
}

/** `store.session(id)`: bound to one session for commits and meta; the manifest is store-wide. */
export class MemorySessionCommitStore extends MemoryAttachmentManifest implements SessionCommitStore {
  constructor(
    ctx: MemoryContext,
    readonly sessionId: string,
  ) {
    super(ctx);
  }

  durabilityTier(): DurabilityTier {
    return 'inline';
  }

  async loadSession(scopeArg: SessionReadScope): Promise<PersistedSessionRead | null> {
    const scope = args.readScope(scopeArg);
    this.ctx.assertOpen();
    return readSession(peekSession(this.ctx.state, this.sessionId)?.settled, this.sessionId, scope);
  }

  async loadNode(nodeIdArg: string): Promise<SessionNodeRecord | null> {
    const nodeId = args.nodeId(nodeIdArg);
    this.ctx.assertOpen();
    const node = peekSession(this.ctx.state, this.sessionId)?.settled.nodes.get(nodeId);
    return node ? nodeView(node) : null;
  }

  async commitRuntimeState(commit: RuntimeCommit): Promise<RuntimeCommitResult> {
    return commitRuntimeState(this.ctx, this.sessionId, commit);
  }

  async saveSessionMeta(metaArg: SessionMeta): Promise<void> {
    const meta = args.meta(metaArg);
    if (meta.sessionId !== this.sessionId) throw bindingMismatch(this.sessionId, meta.sessionId);
    this.ctx.assertOpen();
    sessionFor(this.ctx.state, this.sessionId).metaJson = JSON.stringify(meta);
  }

  async loadSessionMeta(): Promise<SessionMeta | null> {
    this.ctx.assertOpen();
    const json = peekSession(this.ctx.state, this.sessionId)?.metaJson;
    return json === undefined ? null : (JSON.parse(json) as SessionMeta);
  }
}
