/**
 * Accept-only checks for the arguments of the four calls of every turn (enqueue, tryClaim,
 * claimNext, commit): each returns exactly what the zod schema's parse returns (a copy with the
 * schema's keys, in its order; opaque JSON by reference), or NOT_HANDLED, and then arguments.ts
 * runs the zod schema, which stays the definition of what is valid and the only source of issue
 * texts. NOT_HANDLED never means invalid: anything unusual (an instance instead of a plain object,
 * an optional key present with the value undefined, a replace_full graph, a bad value) goes to zod.
 *
 * Why: zod spent about 10 µs of client CPU per turn on these four (bench/RESULTS.md), a tenth of
 * the client's work in a cycle. The rules are the same predicates the schemas use (isId, wellFormed,
 * jsonIssues, ... in schemas.ts); test/unit/fast-args.test.ts checks on generated arguments, valid
 * and not, that whatever these accept zod parses to an equal value.
 */
import type { ParsedClaimNext, ParsedCommit, ParsedDraft } from './arguments.js';
import {
  distinct,
  isId,
  isLeaseTtl,
  isMaxInputs,
  isPid,
  isPlainObject,
  isSafeNonNegInt,
  jsonIssues,
  scalarIssue,
  wellFormed,
} from './schemas.js';

export const NOT_HANDLED = Symbol('not handled');
type NotHandled = typeof NOT_HANDLED;
type Obj = Record<string, unknown>;

/** A thrown marker: the checks below bail out with `fail()` from any depth. */
class Bail {}
const BAIL = new Bail();
function fail(): never {
  throw BAIL;
}

function obj(v: unknown): Obj {
  return isPlainObject(v) ? v : fail();
}

function id(v: unknown): string {
  return isId(v) ? v : fail();
}

function text(v: unknown): string {
  return typeof v === 'string' && wellFormed(v) ? v : fail();
}

function safeInt(v: unknown): number {
  return typeof v === 'number' && isSafeNonNegInt(v) ? v : fail();
}

function json<T>(v: T): T {
  // A scalar is judged by scalarIssue directly: jsonIssues would allocate its cycle-check Set.
  if (v === null || typeof v !== 'object') return scalarIssue(v) === undefined ? v : fail();
  const issues: string[] = [];
  jsonIssues(v, '', issues);
  return issues.length === 0 ? v : fail();
}

function arr(v: unknown): unknown[] {
  return Array.isArray(v) ? v : fail();
}

/**
 * Whether an optional key is absent. A key present with the value undefined is left to zod
 * (which keeps such a key in its output).
 */
function absent(o: Obj, key: string): boolean {
  if (o[key] !== undefined) return false;
  if (key in o) fail();
  return true;
}

function liveness(v: unknown): Obj {
  const o = obj(v);
  if (o.kind === 'opaque') return { kind: 'opaque' };
  if (o.kind !== 'local_process') fail();
  const pid = o.pid;
  if (typeof pid !== 'number' || !isPid(pid)) fail();
  return { kind: 'local_process', hostId: id(o.hostId), bootId: id(o.bootId), pid, processStart: id(o.processStart) };
}

function owner(v: unknown): Obj {
  const o = obj(v);
  const out: Obj = { ownerId: id(o.ownerId), incarnationId: id(o.incarnationId) };
  if (!absent(o, 'liveness')) out.liveness = liveness(o.liveness);
  return out;
}

function fence(v: unknown): Obj {
  const o = obj(v);
  return {
    sessionId: id(o.sessionId),
    owner: owner(o.owner),
    leaseToken: id(o.leaseToken),
    fencingToken: safeInt(o.fencingToken),
  };
}

function ingress(v: unknown): Obj {
  const o = obj(v);
  if (o.scope === 'next_turn') return { scope: 'next_turn' };
  if (o.scope !== 'active_turn') fail();
  const out: Obj = { scope: 'active_turn', turnId: id(o.turnId) };
  if (!absent(o, 'minBoundary')) {
    if (o.minBoundary !== 'after_work' && o.minBoundary !== 'before_completion') fail();
    out.minBoundary = o.minBoundary;
  }
  return out;
}

function run<T>(check: () => T): T | NotHandled {
  try {
    return check();
  } catch (e) {
    if (e === BAIL) return NOT_HANDLED;
    throw e;
  }
}

export function fastDraft(v: unknown): ParsedDraft | NotHandled {
  return run(() => {
    const o = obj(v);
    const out: Obj = { sessionId: id(o.sessionId) };
    if (!absent(o, 'inputId')) out.inputId = id(o.inputId);
    if (!absent(o, 'sourceKey')) out.sourceKey = id(o.sourceKey);
    out.ingress = ingress(o.ingress);
    out.input = json(o.input);
    return out as ParsedDraft;
  });
}

export function fastTryClaim(
  sessionId: unknown,
  ownerArg: unknown,
  leaseTtlMs: unknown,
): { sessionId: string; owner: ParsedClaimNext['owner']; leaseTtlMs: number } | NotHandled {
  return run(() => {
    const s = id(sessionId);
    const o = owner(ownerArg) as ParsedClaimNext['owner'];
    if (typeof leaseTtlMs !== 'number' || !isLeaseTtl(leaseTtlMs)) fail();
    return { sessionId: s, owner: o, leaseTtlMs };
  });
}

export function fastClaimNext(v: unknown): ParsedClaimNext | NotHandled {
  return run(() => {
    const o = obj(v);
    const out: Obj = { sessionId: id(o.sessionId), fence: fence(o.fence), owner: owner(o.owner) };
    const ttl = o.leaseTtlMs;
    const max = o.maxInputs;
    if (typeof ttl !== 'number' || !isLeaseTtl(ttl) || typeof max !== 'number' || !isMaxInputs(max)) fail();
    out.leaseTtlMs = ttl;
    out.maxInputs = max;
    return out as ParsedClaimNext;
  });
}

/** A node is kept as given (nodeSchema returns the original object). */
function nodes(v: unknown): unknown[] {
  const a = arr(v);
  const seen = new Set<unknown>();
  const out = new Array<unknown>(a.length);
  for (let i = 0; i < a.length; i++) {
    const n = obj(a[i]);
    id(n.nodeId);
    if (n.parentNodeId !== undefined) id(n.parentNodeId);
    text(n.timestamp);
    json(n);
    if (seen.has(n.nodeId)) fail();
    seen.add(n.nodeId);
    out[i] = n;
  }
  return out;
}

function graph(v: unknown): Obj {
  const o = obj(v);
  let out: Obj;
  if (o.kind === 'unchanged') out = { kind: 'unchanged' };
  else if (o.kind === 'append') out = { kind: 'append', nodes: nodes(o.nodes) };
  else return fail(); // replace_full: zod
  if (!absent(o, 'leafNodeId')) out.leafNodeId = id(o.leafNodeId);
  return out;
}

function checkpoint(v: unknown): Obj {
  const o = obj(v);
  const out: Obj = { turnState: json(o.turnState) };
  if (!absent(o, 'toolStateRef')) out.toolStateRef = id(o.toolStateRef);
  if (!absent(o, 'toolState')) out.toolState = json(o.toolState);
  if (!absent(o, 'pluginSnapshotRef')) out.pluginSnapshotRef = id(o.pluginSnapshotRef);
  if (!absent(o, 'pluginSnapshot')) out.pluginSnapshot = json(o.pluginSnapshot);
  if (!absent(o, 'pluginSnapshotRevision')) out.pluginSnapshotRevision = safeInt(o.pluginSnapshotRevision);
  if (!absent(o, 'executionStateRef')) out.executionStateRef = id(o.executionStateRef);
  if (!absent(o, 'executionState')) {
    if (!(o.executionState instanceof Uint8Array)) fail();
    out.executionState = o.executionState;
  }
  return out;
}

function ledgerEntry(v: unknown): Obj {
  const o = obj(v);
  const u = obj(o.usage);
  return {
    source: text(o.source),
    model: text(o.model),
    usage: {
      inputTokens: safeInt(u.inputTokens),
      outputTokens: safeInt(u.outputTokens),
      cacheReadInputTokens: safeInt(u.cacheReadInputTokens),
      cacheWriteInputTokens: safeInt(u.cacheWriteInputTokens),
      reasoningOutputTokens: safeInt(u.reasoningOutputTokens),
    },
  };
}

function completion(v: unknown): Obj {
  const o = obj(v);
  const out: Obj = { sessionId: id(o.sessionId), claimId: id(o.claimId), leaseToken: id(o.leaseToken) };
  const inputIds = each(o.inputIds, id);
  if (inputIds.length < 1 || inputIds.length > 1000 || !distinct(inputIds)) fail();
  out.inputIds = inputIds;
  return out;
}

function queueCompletion(v: unknown): Obj {
  const o = obj(v);
  return {
    sessionId: id(o.sessionId),
    claimId: id(o.claimId),
    leaseToken: id(o.leaseToken),
    batchIds: each(o.batchIds, id),
  };
}

/** A new array of f applied to each element (zod's arrays are copies too). */
function each<T>(v: unknown, f: (x: unknown) => T): T[] {
  const a = arr(v);
  const out = new Array<T>(a.length);
  for (let i = 0; i < a.length; i++) out[i] = f(a[i]);
  return out;
}

export function fastCommit(v: unknown): ParsedCommit | NotHandled {
  return run(() => {
    const o = obj(v);
    const out: Obj = { sessionId: id(o.sessionId) };
    if (!absent(o, 'expectedHeadRevision')) out.expectedHeadRevision = safeInt(o.expectedHeadRevision);
    if (!absent(o, 'sessionExecutionLease')) out.sessionExecutionLease = fence(o.sessionExecutionLease);
    if (!absent(o, 'releaseSessionExecutionLease')) {
      const release = fence(o.releaseSessionExecutionLease);
      if (release.sessionId !== out.sessionId) fail();
      out.releaseSessionExecutionLease = release;
    }
    out.config = json(o.config);
    out.agentFrames = each(o.agentFrames, json);
    out.currentAgentFrameId = text(o.currentAgentFrameId);
    out.graph = graph(o.graph);
    out.checkpoint = checkpoint(o.checkpoint);
    out.usageDeltas = each(o.usageDeltas, ledgerEntry);
    if (!absent(o, 'turnCommit')) {
      const t = obj(o.turnCommit);
      out.turnCommit = { sessionId: id(t.sessionId), turnId: id(t.turnId), turnCommitHash: id(t.turnCommitHash) };
    }
    if (!absent(o, 'completedQueueClaims')) out.completedQueueClaims = each(o.completedQueueClaims, queueCompletion);
    out.completedTurnInputClaims = each(o.completedTurnInputClaims, completion);
    if (!absent(o, 'interruptedTurnInputTurnId')) out.interruptedTurnInputTurnId = id(o.interruptedTurnInputTurnId);
    out.committedAttachmentIds = each(o.committedAttachmentIds, id);
    return out as ParsedCommit;
  });
}
