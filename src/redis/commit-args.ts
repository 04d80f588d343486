/**
 * The pure half of commitRuntimeState: the one structured argument of
 * lua/commit-runtime-state.lua (see its header), a JSON text, and the blob contents that travel
 * beside it as they are (executionState bytes included). No I/O here.
 *
 * Opaque JSON (config, agentFrames, nodes, snapshots, the manifest) travels as strings made here
 * (JSON.stringify / canonical) and is stored by Lua as given: Lua never decodes and re-encodes a
 * payload (SPEC 10.6).
 */
import type { ParsedCommit } from '../contract/arguments.js';
import { StoreError } from '../contract/errors.js';
import type { TokenLedgerEntry } from '../contract/types.js';
import { type CheckpointPlan, USAGE_COUNTERS } from '../core/commit-plan.js';
import { decodeId, encodeId } from './key-encoding.js';
import { encodeNodeValue } from './node-value.js';

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

type Lease = NonNullable<ParsedCommit['sessionExecutionLease']>;

function leaseArgs(l: Lease): string[] {
  return [l.owner.ownerId, l.owner.incarnationId, l.leaseToken, String(l.fencingToken)];
}

/**
 * ARGV[2..] of lua/commit-runtime-state.lua: the packed commit, then each blob's content. `usage` is the folded deltas (foldUsageDeltas). A fence
 * that names another session is sent as absent, so the script fails the fence check at its own
 * step (after the turn-commit replay).
 */
export function buildCommitArgs(
  commit: ParsedCommit,
  plan: CheckpointPlan,
  usage: TokenLedgerEntry[],
  requeue: boolean,
  /** Whether the store sends idle-dispatch wake-ups: without them the script reports none. */
  wakes: boolean,
): (string | Buffer)[] {
  const graph = commit.graph;
  const nodes = graph.kind === 'append' ? graph.nodes : graph.kind === 'replace_full' ? graph.graph.nodes : [];
  const leaf = graph.kind === 'replace_full' ? graph.graph.leafNodeId : graph.leafNodeId;
  const fence = commit.sessionExecutionLease;
  // Members that are empty or false are left out: the script reads an absent one as empty, and
  // each decoded member costs it a few thousand instructions (docs/DECISIONS.md).
  const c: Record<string, unknown> = {
    graphKind: graph.kind,
    config: JSON.stringify(commit.config),
    agentFrames: JSON.stringify(commit.agentFrames),
    currentAgentFrameId: commit.currentAgentFrameId,
    // The manifest last: its ref is the checkpointRef and its text the result's manifest. The
    // contents travel as ARGV of their own, so bytes need no encoding.
    blobs: plan.blobs.map((b) => b.ref),
  };
  if (requeue) c.requeue = true;
  if (wakes) c.wakes = true;
  const put = (name: string, items: unknown[]) => {
    if (items.length > 0) c[name] = items;
  };
  put(
    'completions',
    commit.completedTurnInputClaims.map((x) => ({
      ...(x.sessionId === commit.sessionId ? {} : { sessionId: x.sessionId }),
      claimId: x.claimId,
      token: x.leaseToken,
      inputIds: x.inputIds,
    })),
  );
  put(
    'nodes',
    nodes.map((n) => [n.nodeId, encodeNodeValue(n)]),
  );
  put(
    'refs',
    plan.refsToCheck.map((r) => [r.field, r.ref]),
  );
  put(
    'usage',
    usage.map((u) => [usageGroup(u.source, u.model), ...USAGE_COUNTERS.map((k) => String(u.usage[k]))]),
  );
  put('attachments', commit.committedAttachmentIds.map(encodeId));
  if (commit.turnCommit !== undefined) {
    c.turn = { id: commit.turnCommit.turnId, hash: JSON.stringify(commit.turnCommit.turnCommitHash) };
  }
  let fenceArgs: string[] | undefined;
  if (fence === undefined) c.noFence = true;
  else if (fence.sessionId === commit.sessionId) c.fence = fenceArgs = leaseArgs(fence);
  const release = commit.releaseSessionExecutionLease;
  if (release !== undefined) {
    const releaseArgs = leaseArgs(release);
    // The usual finishing commit releases with its own fence: `true` says so.
    c.release = fenceArgs !== undefined && releaseArgs.every((v, i) => v === fenceArgs[i]) ? true : releaseArgs;
  }
  if (commit.expectedHeadRevision !== undefined) c.expected = commit.expectedHeadRevision;
  const queue = commit.completedQueueClaims?.[0];
  if (queue !== undefined) c.queue = [queue.sessionId, queue.claimId];
  if (leaf !== undefined) c.leaf = leaf;
  if (commit.interruptedTurnInputTurnId !== undefined) c.interrupt = commit.interruptedTurnInputTurnId;
  return [
    JSON.stringify(c),
    ...plan.blobs.map((b) => (typeof b.content === 'string' ? b.content : bytesArg(b.content))),
  ];
}
