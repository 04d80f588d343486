/**
 * Shared helpers of the conformance suite (SPEC.md section 15 notation and friends).
 *
 *   O(x)               the owner { ownerId: x, incarnationId: x + ':1', liveness: { kind: 'opaque' } }
 *   nt(text, extra?)   a next-turn draft body (no sessionId) with input { text }
 *   at(T, b, text?)    an active-turn draft body for turn T with boundary b (undefined = omitted)
 *   draft(sid, body)   the full PendingTurnInputDraft
 *
 * Every helper here is backend-agnostic and derives its expectations from SPEC.md only.
 * Keep the exports stable: other conformance files import them.
 */
import { expect } from 'vitest';
import {
  type CheckpointKind,
  claimCompletion,
  isStoreError,
  type LeaseOwnerIdentity,
  leaseFence,
  type PendingTurnInput,
  type PendingTurnInputDraft,
  type RuntimeCommit,
  type RuntimeStore,
  type SessionExecutionLease,
  type SessionExecutionLeaseFence,
  type StoreError,
  type StoreErrorCode,
  type TurnInputClaim,
  type TurnInputCompletion,
} from '../../src/index.js';

/** A long TTL: the lease or claim stays live for the whole test. */
export const LONG_TTL = 60_000;

/** The owner O(x) of the worked examples. */
export function O(x: string): LeaseOwnerIdentity {
  return { ownerId: x, incarnationId: `${x}:1`, liveness: { kind: 'opaque' } };
}

/** A draft without its sessionId (combine with `draft(sessionId, body)`). */
export type DraftBody = Omit<PendingTurnInputDraft, 'sessionId'>;

/** A next-turn draft body with `input: { text }`. `extra` may add `sourceKey` / `inputId`. */
export function nt(
  text = 'next',
  extra: Partial<Pick<PendingTurnInputDraft, 'sourceKey' | 'inputId'>> = {},
): DraftBody {
  return { ...extra, ingress: { scope: 'next_turn' }, input: { text } };
}

/**
 * An active-turn draft body for `turnId`. `boundary` undefined means `minBoundary` is omitted
 * (the store defaults it to 'after_work').
 */
export function at(
  turnId: string,
  boundary?: CheckpointKind,
  text = 'active',
  extra: Partial<Pick<PendingTurnInputDraft, 'sourceKey' | 'inputId'>> = {},
): DraftBody {
  const ingress: PendingTurnInputDraft['ingress'] =
    boundary === undefined ? { scope: 'active_turn', turnId } : { scope: 'active_turn', turnId, minBoundary: boundary };
  return { ...extra, ingress, input: { text } };
}

/** The full draft of `body` in `sessionId`. */
export function draft(sessionId: string, body: DraftBody): PendingTurnInputDraft {
  return { sessionId, ...body };
}

/** Enqueues `body` in `sessionId`. */
export function enqueue(store: RuntimeStore, sessionId: string, body: DraftBody): Promise<PendingTurnInput> {
  return store.enqueuePendingTurnInput(draft(sessionId, body));
}

/** Acquires the lease (asserting `acquired`) and returns it. */
export async function acquire(
  store: RuntimeStore,
  sessionId: string,
  owner: LeaseOwnerIdentity = O('w'),
  leaseTtlMs = LONG_TTL,
): Promise<SessionExecutionLease> {
  const r = await store.tryClaimSessionExecutionLease(sessionId, owner, leaseTtlMs);
  expect(r.outcome, `tryClaim(${sessionId}, ${owner.ownerId}) should be acquired`).toBe('acquired');
  if (r.outcome !== 'acquired') throw new Error('unreachable');
  return r.lease;
}

/** claimNextTurnInputs under `lease` (owner = the lease's owner unless given). */
export function claimNext(
  store: RuntimeStore,
  lease: SessionExecutionLease | SessionExecutionLeaseFence,
  options: { maxInputs?: number; leaseTtlMs?: number; owner?: LeaseOwnerIdentity; sessionId?: string } = {},
): Promise<TurnInputClaim | null> {
  return store.claimNextTurnInputs({
    sessionId: options.sessionId ?? lease.sessionId,
    fence: toFence(lease),
    owner: options.owner ?? lease.owner,
    leaseTtlMs: options.leaseTtlMs ?? LONG_TTL,
    maxInputs: options.maxInputs ?? 100,
  });
}

/** claimActiveTurnInputs for `turnId` at `checkpoint` under `lease`. */
export function claimActive(
  store: RuntimeStore,
  lease: SessionExecutionLease | SessionExecutionLeaseFence,
  turnId: string,
  checkpoint: CheckpointKind,
  options: { maxInputs?: number; leaseTtlMs?: number; owner?: LeaseOwnerIdentity; sessionId?: string } = {},
): Promise<TurnInputClaim | null> {
  return store.claimActiveTurnInputs({
    sessionId: options.sessionId ?? lease.sessionId,
    fence: toFence(lease),
    owner: options.owner ?? lease.owner,
    turnId,
    checkpoint,
    leaseTtlMs: options.leaseTtlMs ?? LONG_TTL,
    maxInputs: options.maxInputs ?? 100,
  });
}

function toFence(lease: SessionExecutionLease | SessionExecutionLeaseFence): SessionExecutionLeaseFence {
  return 'claimedAtEpochMs' in lease ? leaseFence(lease as SessionExecutionLease) : lease;
}

/**
 * The smallest valid commit for `fence.sessionId` (graph unchanged, no snapshots, no usage),
 * completing `claims`. `extra` overrides any field.
 */
export function minimalCommit(
  fence: SessionExecutionLeaseFence | SessionExecutionLease | undefined,
  claims: Array<TurnInputClaim | TurnInputCompletion> = [],
  extra: Partial<RuntimeCommit> & { sessionId?: string } = {},
): RuntimeCommit {
  const sessionId = extra.sessionId ?? fence?.sessionId;
  if (sessionId === undefined) throw new Error('minimalCommit needs a fence or extra.sessionId');
  const commit: RuntimeCommit = {
    sessionId,
    config: {},
    agentFrames: [],
    currentAgentFrameId: 'f',
    graph: { kind: 'unchanged' },
    checkpoint: { turnState: null },
    usageDeltas: [],
    completedTurnInputClaims: claims.map((c) => ('inputs' in c ? claimCompletion(c) : c)),
    committedAttachmentIds: [],
    ...extra,
  };
  if (fence !== undefined && extra.sessionExecutionLease === undefined) {
    commit.sessionExecutionLease = toFence(fence);
  }
  return commit;
}

/** Awaits `promise` and returns what it rejected with; fails the test if it resolved. */
export async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    const value = await promise;
    expect.fail(`expected a rejection, but it resolved with ${safeJson(value)}`);
  } catch (e) {
    if (isAssertion(e)) throw e;
    return e;
  }
  throw new Error('unreachable');
}

/** Calls `fn` and returns what it threw synchronously; fails the test if it returned. */
export function thrown(fn: () => unknown): unknown {
  try {
    const value = fn();
    expect.fail(`expected a throw, but it returned ${safeJson(value)}`);
  } catch (e) {
    if (isAssertion(e)) throw e;
    return e;
  }
  throw new Error('unreachable');
}

function isAssertion(e: unknown): boolean {
  return e instanceof Error && e.name === 'AssertionError' && !isStoreError(e);
}

function safeJson(v: unknown): string {
  try {
    return JSON.stringify(v);
  } catch {
    return String(v);
  }
}

/**
 * Asserts that `error` is a StoreError with `code`, a message that starts with the code (SPEC 2.6)
 * and, when `details` is given, details deep-equal to it.
 */
export function assertStoreError(error: unknown, code: StoreErrorCode, details?: Record<string, unknown>): StoreError {
  expect(isStoreError(error), `expected a StoreError ${code}, got ${String(error)}`).toBe(true);
  const e = error as StoreError;
  expect(e.code).toBe(code);
  expect(isStoreError(e, code)).toBe(true);
  expect(typeof e.message).toBe('string');
  expect(e.message.startsWith(code), `message "${e.message}" must start with ${code}`).toBe(true);
  expect(typeof e.details).toBe('object');
  expect(e.details).not.toBeNull();
  if (details !== undefined) expect(e.details).toEqual(details);
  return e;
}

/** Awaits `promise`, asserts it rejects with StoreError `code` (and `details`, deep-equal) and returns the error. */
export async function expectStoreError(
  promise: Promise<unknown>,
  code: StoreErrorCode,
  details?: Record<string, unknown>,
): Promise<StoreError> {
  return assertStoreError(await rejection(promise), code, details);
}

/**
 * Asserts that `error` is InvalidInput with `details.issues` a non-empty string array, and that for
 * every path in `paths` some issue starts with that dotted path (followed by ':' or '.').
 *
 * Paths follow SPEC 2.4's example (`maxInputs: must be an integer in 0..1000`): a field of a
 * method's single structured argument (draft, request, claim, commit, ...) is named relative to
 * it (`maxInputs`, `input.0`); that argument as a whole is named by its parameter (`request`);
 * the arguments of multi-parameter methods are rooted at the parameter (`owner.ownerId`,
 * `targets.0.value`, `leaseTtlMs`). The match is exact: no other form is accepted.
 */
export function assertInvalidInput(error: unknown, ...paths: string[]): StoreError {
  const e = assertStoreError(error, 'InvalidInput');
  const issues = e.details.issues as unknown;
  expect(Array.isArray(issues), 'details.issues must be an array').toBe(true);
  const list = issues as unknown[];
  expect(list.length).toBeGreaterThan(0);
  for (const issue of list) expect(typeof issue).toBe('string');
  const startsWithPath = (issue: string, p: string) =>
    issue.startsWith(p) && (issue[p.length] === ':' || issue[p.length] === '.');
  for (const path of paths) {
    const hit = (list as string[]).some((issue) => startsWithPath(issue, path));
    expect(hit, `some issue must start with "${path}:" (issues: ${JSON.stringify(list)})`).toBe(true);
  }
  return e;
}

/** Awaits `promise` and asserts InvalidInput naming every path in `paths` (see assertInvalidInput). */
export async function expectInvalidInput(promise: Promise<unknown>, ...paths: string[]): Promise<StoreError> {
  return assertInvalidInput(await rejection(promise), ...paths);
}

/** Distinct session ids for one test (readable, and unique within the fresh store anyway). */
export function sid(name: string): string {
  return `sess-${name}`;
}

/** The ids of a list of rows. */
export function ids(rows: Array<{ inputId: string }>): string[] {
  return rows.map((r) => r.inputId);
}
