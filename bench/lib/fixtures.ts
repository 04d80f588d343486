/** Inputs, owners, nodes and commits the scenarios share. */
import type {
  LeaseOwnerIdentity,
  RuntimeCommit,
  SessionExecutionLease,
  SessionNodeRecord,
  TurnInputClaim,
} from '../../src/index.js';
import { claimCompletion, leaseCompletion, leaseFence } from '../../src/index.js';

export const OWNER: LeaseOwnerIdentity = { ownerId: 'bench-worker', incarnationId: 'bench-worker:1' };
export const OTHER: LeaseOwnerIdentity = { ownerId: 'bench-other', incarnationId: 'bench-other:1' };
export const TTL = 600_000;

/** A 150-byte input: JSON.stringify(INPUT_150).length === 150. */
export const INPUT_150 = { text: 'x'.repeat(150 - '{"text":""}'.length) };
if (JSON.stringify(INPUT_150).length !== 150) throw new Error('INPUT_150 is not 150 bytes');

export function node(nodeId: string, parentNodeId: string | undefined): SessionNodeRecord {
  const n: SessionNodeRecord = { nodeId, timestamp: '2025-01-01T00:00:00.000Z', role: 'user', text: 'hello there' };
  if (parentNodeId !== undefined) n.parentNodeId = parentNodeId;
  return n;
}

/** The smallest valid commit: graph unchanged, checkpoint `{ turnState: null }`, no usage. */
export function baseCommit(sessionId: string, overrides: Partial<RuntimeCommit> = {}): RuntimeCommit {
  return {
    sessionId,
    config: {},
    agentFrames: [],
    currentAgentFrameId: 'frame-0',
    graph: { kind: 'unchanged' },
    checkpoint: { turnState: null },
    usageDeltas: [],
    completedTurnInputClaims: [],
    committedAttachmentIds: [],
    ...overrides,
  };
}

/** The end of one turn: complete the claim(s) and release the lease in the same commit. */
export function finishingCommit(lease: SessionExecutionLease, claims: TurnInputClaim[]): RuntimeCommit {
  return baseCommit(lease.sessionId, {
    sessionExecutionLease: leaseFence(lease),
    releaseSessionExecutionLease: leaseCompletion(lease),
    completedTurnInputClaims: claims.map((c) => claimCompletion(c)),
  });
}

/** A fenced append of `nodes` (no release). */
export function appendCommit(lease: SessionExecutionLease, nodes: SessionNodeRecord[], leaf: string): RuntimeCommit {
  return baseCommit(lease.sessionId, {
    sessionExecutionLease: leaseFence(lease),
    graph: { kind: 'append', nodes, leafNodeId: leaf },
  });
}
