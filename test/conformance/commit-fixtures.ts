/**
 * Helpers of the commit, attachment and session-meta conformance files. Expectations are derived
 * from SPEC.md only; `canon` below is an independent test-side implementation of SPEC 2.7, so
 * content addresses are computed without the library's own `canonical`.
 */
import { createHash } from 'node:crypto';
import { expect } from 'vitest';
import {
  claimCompletion,
  type JsonValue,
  type LeaseOwnerIdentity,
  leaseFence,
  type PendingTurnInput,
  type RuntimeCommit,
  type RuntimeStore,
  type SessionExecutionLease,
  type SessionExecutionLeaseFence,
  type SessionNodeRecord,
  type TokenLedgerEntry,
  type TurnInputClaim,
  type TurnInputCompletion,
  turnCommitHash,
} from '../../src/index.js';
import { adminClient, snapshotPrefix } from '../support/prefix.js';
import type { FreshStore } from './backends.js';
import { assertStoreError, type DraftBody, draft, O, rejection } from './fixtures.js';

/** SPEC 2.7, written independently of src/core/canonical.ts. */
export function canon(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map((v) => canon(v)).join(',')}]`;
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj)
    .filter((k) => obj[k] !== undefined)
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canon(obj[k])}`).join(',')}}`;
}

/** Lowercase hex SHA-256 of UTF-8 text or of bytes. */
export function sha(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** The content address of a JSON snapshot or manifest: sha256hex(canonical(value)). */
export function jsonRef(value: unknown): string {
  return sha(canon(value));
}

function asFence(f: SessionExecutionLease | SessionExecutionLeaseFence): SessionExecutionLeaseFence {
  return 'claimedAtEpochMs' in f ? leaseFence(f as SessionExecutionLease) : f;
}

/**
 * A valid commit for `sessionId`: graph unchanged, checkpoint `{ turnState: null }`, no usage, no
 * completions. `fence` becomes `sessionExecutionLease` (omitted when undefined). `overrides` wins.
 */
export function baseCommit(
  sessionId: string,
  fence?: SessionExecutionLease | SessionExecutionLeaseFence,
  overrides: Partial<RuntimeCommit> = {},
): RuntimeCommit {
  const commit: RuntimeCommit = {
    sessionId,
    config: {},
    agentFrames: [],
    currentAgentFrameId: 'frame-0',
    graph: { kind: 'unchanged' },
    checkpoint: { turnState: null },
    usageDeltas: [],
    completedTurnInputClaims: [],
    committedAttachmentIds: [],
  };
  if (fence !== undefined) commit.sessionExecutionLease = asFence(fence);
  return { ...commit, ...overrides };
}

/** The completions of claims (or completions passed through). */
export function completions(...claims: Array<TurnInputClaim | TurnInputCompletion>): TurnInputCompletion[] {
  return claims.map((c) => ('inputs' in c ? claimCompletion(c) : c));
}

/** `commit` with `turnCommit = { commit.sessionId, turnId, turnCommitHash(commit) }`. */
export function stamped(commit: RuntimeCommit, turnId: string): RuntimeCommit {
  return { ...commit, turnCommit: { sessionId: commit.sessionId, turnId, turnCommitHash: turnCommitHash(commit) } };
}

/** A node record. */
export function node(nodeId: string, parentNodeId?: string, extra: Record<string, JsonValue> = {}): SessionNodeRecord {
  const n: SessionNodeRecord = { nodeId, timestamp: `ts-${nodeId}`, ...extra };
  if (parentNodeId !== undefined) n.parentNodeId = parentNodeId;
  return n;
}

/** A usage entry / ledger entry. */
export function usage(
  source: string,
  model: string,
  inputTokens = 0,
  outputTokens = 0,
  cacheReadInputTokens = 0,
  cacheWriteInputTokens = 0,
  reasoningOutputTokens = 0,
): TokenLedgerEntry {
  return {
    source,
    model,
    usage: { inputTokens, outputTokens, cacheReadInputTokens, cacheWriteInputTokens, reasoningOutputTokens },
  };
}

/**
 * The current row of an input that was enqueued with a source key: replaying its original draft
 * returns the row as it is now and writes nothing (SPEC 5.1 step 1).
 */
export async function peek(store: RuntimeStore, sessionId: string, body: DraftBody): Promise<PendingTurnInput> {
  expect(body.sourceKey, 'peek needs a draft with a sourceKey').toBeDefined();
  return store.enqueuePendingTurnInput(draft(sessionId, body));
}

/** Asserts, without writing, that `sessionId`'s lease is live and is `lease` (a probe owner is busy). */
export async function expectLeaseHeld(
  store: RuntimeStore,
  sessionId: string,
  lease: SessionExecutionLease,
): Promise<void> {
  const r = await store.tryClaimSessionExecutionLease(sessionId, O('probe'), 60_000);
  expect(r.outcome, 'the lease should still be held').toBe('busy');
  if (r.outcome === 'busy') {
    expect(r.holder.leaseToken).toBe(lease.leaseToken);
    expect(r.holder.fencingToken).toBe(lease.fencingToken);
    expect(r.holder.owner.ownerId).toBe(lease.owner.ownerId);
  }
}

/**
 * Asserts that `sessionId` has no live lease by acquiring it (a write) as `owner`, and that the
 * acquisition opened generation `generation`. Returns the new lease.
 */
export async function expectLeaseFree(
  store: RuntimeStore,
  sessionId: string,
  generation: number,
  owner: LeaseOwnerIdentity = O('next'),
): Promise<SessionExecutionLease> {
  const r = await store.tryClaimSessionExecutionLease(sessionId, owner, 60_000);
  expect(r.outcome, 'the lease should have been free').toBe('acquired');
  if (r.outcome !== 'acquired') throw new Error('unreachable');
  expect(r.lease.fencingToken).toBe(generation);
  return r.lease;
}

/** Every publicly readable piece of state of the sessions, plus (Redis) every key of the prefix. */
async function capture(f: FreshStore, sessionIds: string[]): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  for (const s of sessionIds) {
    const facet = f.store.session(s);
    out[s] = {
      full: await facet.loadSession({ kind: 'full_graph' }),
      path: await facet.loadSession({ kind: 'active_path' }),
      list: await f.store.listPendingTurnInputs(s),
      meta: await facet.loadSessionMeta(),
    };
  }
  out.attachments = await f.store.session(sessionIds[0] ?? 'probe').listAllRefs();
  out.uncommitted = await f.store.session(sessionIds[0] ?? 'probe').listUncommitted(Number.MAX_SAFE_INTEGER);
  if (f.prefix !== undefined) out.redisKeys = await snapshotPrefix(adminClient(), f.prefix);
  return out;
}

/**
 * Records the state now; the returned function asserts nothing changed since (SPEC 6.2 "No check
 * writes anything", 6.3 "All or nothing"). On Redis it compares every key of the test's prefix.
 */
export async function freeze(f: FreshStore, sessionIds: string[]): Promise<() => Promise<void>> {
  const before = await capture(f, sessionIds);
  return async () => {
    expect(await capture(f, sessionIds)).toEqual(before);
  };
}

/** The sorted own keys of an object (to check that absent optional fields are really absent). */
export function keysOf(o: object | null | undefined): string[] {
  return Object.keys(o ?? {}).sort();
}

/**
 * Awaits `promise` and asserts InvalidInput whose issues name `field` (SPEC 6.2 step 7: "the issue
 * names the field"): some issue contains `field` as a whole dotted-path segment run. The exact
 * "begins with the dotted path" format of SPEC 2.4 is pinned separately, in one dedicated test.
 */
export async function expectInvalidNaming(promise: Promise<unknown>, field: string): Promise<void> {
  const e = assertStoreError(await rejection(promise), 'InvalidInput');
  const issues = e.details.issues as unknown;
  expect(Array.isArray(issues), 'details.issues must be an array').toBe(true);
  const escaped = field.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const re = new RegExp(`(^|\\.)${escaped}(\\.|:|\\[)`);
  expect(
    (issues as unknown[]).some((i) => typeof i === 'string' && re.test(i)),
    `some issue must name ${field} (issues: ${JSON.stringify(issues)})`,
  ).toBe(true);
}
