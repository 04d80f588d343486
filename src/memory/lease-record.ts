/**
 * The session execution lease record of one session (SPEC 3.2, 3.3, 4.4) and the pure checks on
 * it. The record exists from the first acquisition on; release clears the holder and keeps
 * `fencingToken`, the generation counter, which never goes down.
 */
import type {
  LeaseOwnerIdentity,
  SessionExecutionLease,
  SessionExecutionLeaseFence,
  TurnInterruptMark,
  TurnInterruptPolicy,
} from '../contract/types.js';
import { canonical } from '../core/canonical.js';
import { normalizeOwner } from '../core/projections.js';
import { newToken } from '../core/tokens.js';

export interface LeaseHolder {
  /** Normalised: liveness always present. */
  owner: LeaseOwnerIdentity;
  leaseToken: string;
  claimedAtEpochMs: number;
  expiresAtEpochMs: number;
}

export interface LeaseRecord {
  /** The last generation handed out (0 never appears: the record is created by the first acquisition). */
  fencingToken: number;
  /** Absent once released. */
  holder?: LeaseHolder;
  /**
   * Set by a deleteSession that fenced a lease out (SPEC 8.4): when the fenced lease would have
   * expired. Kept by later acquisitions, as on Redis.
   */
  fencedUntilEpochMs?: number;
  /** The record is only the fence a deleteSession left (no acquisition since). */
  fenceOnly?: true;
  /** The interrupt mark (SPEC 3.9); applies only while `interrupt.generation === fencingToken`. */
  interrupt?: TurnInterruptMark;
}

/** The record's own generation is marked interrupted (SPEC 3.9). */
export function isInterrupted(record: LeaseRecord | undefined): boolean {
  return record?.interrupt !== undefined && record.interrupt.generation === record.fencingToken;
}

/**
 * Marks the live generation of `record` interrupted (a rollback mark is never weakened). Returns
 * the policy in force.
 */
export function markInterrupted(
  record: HeldLease,
  policy: TurnInterruptPolicy,
  now: number,
  reason: string | undefined,
  inputId: string | undefined,
): TurnInterruptPolicy {
  const kept = isInterrupted(record) && record.interrupt?.policy === 'rollback' ? 'rollback' : policy;
  const mark: TurnInterruptMark = { generation: record.fencingToken, policy: kept, atEpochMs: now };
  if (reason !== undefined && reason !== '') mark.reason = reason;
  if (inputId !== undefined) mark.inputId = inputId;
  record.interrupt = mark;
  return kept;
}

/** A record with a holder (live, or expired but not released). */
export type HeldLease = LeaseRecord & { holder: LeaseHolder };

/** Live: a token is set and the expiry is strictly in the future. */
export function isLive(record: LeaseRecord | undefined, now: number): record is HeldLease {
  return record?.holder !== undefined && record.holder.expiresAtEpochMs > now;
}

/** The generation whose claims are live now, or undefined when no lease is live. */
export function liveGeneration(record: LeaseRecord | undefined, now: number): number | undefined {
  return isLive(record, now) ? record.fencingToken : undefined;
}

/** Same incarnation: ownerId and incarnationId equal, liveness ignored. */
export function sameIncarnation(a: LeaseOwnerIdentity, b: LeaseOwnerIdentity): boolean {
  return a.ownerId === b.ownerId && a.incarnationId === b.incarnationId;
}

/** The fence check of SPEC 3.3 against `targetSessionId`. */
export function fencePasses(
  record: LeaseRecord | undefined,
  targetSessionId: string,
  fence: SessionExecutionLeaseFence,
  now: number,
): boolean {
  return (
    fence.sessionId === targetSessionId &&
    isLive(record, now) &&
    sameIncarnation(record.holder.owner, fence.owner) &&
    record.holder.leaseToken === fence.leaseToken &&
    record.fencingToken === fence.fencingToken
  );
}

/** SPEC 4.2 (a): the live record matches the observation exactly, liveness included. */
export function matchesObservation(
  record: HeldLease,
  sessionId: string,
  observed: SessionExecutionLeaseFence,
): boolean {
  const o = normalizeOwner(observed.owner);
  const h = record.holder.owner;
  return (
    observed.sessionId === sessionId &&
    o.ownerId === h.ownerId &&
    o.incarnationId === h.incarnationId &&
    canonical(o.liveness) === canonical(h.liveness) &&
    record.holder.leaseToken === observed.leaseToken &&
    record.fencingToken === observed.fencingToken
  );
}

/** A fresh acquisition (SPEC 3.2): the next generation, a new token, claimedAt = now. */
export function freshAcquisition(
  previous: LeaseRecord | undefined,
  owner: LeaseOwnerIdentity,
  leaseTtlMs: number,
  now: number,
): HeldLease {
  const record: HeldLease = {
    fencingToken: (previous?.fencingToken ?? 0) + 1,
    holder: {
      owner: normalizeOwner(owner),
      leaseToken: newToken(),
      claimedAtEpochMs: now,
      expiresAtEpochMs: now + leaseTtlMs,
    },
  };
  if (previous?.fencedUntilEpochMs !== undefined) record.fencedUntilEpochMs = previous.fencedUntilEpochMs;
  if (previous?.interrupt !== undefined) record.interrupt = previous.interrupt; // names an older generation
  return record;
}

/** SPEC 4.4: the fenced release applies on an exact match of the four identifying fields only. */
export function releaseMatches(record: LeaseRecord | undefined, completion: SessionExecutionLeaseFence): boolean {
  const holder = record?.holder;
  return (
    holder !== undefined &&
    holder.owner.ownerId === completion.owner.ownerId &&
    holder.owner.incarnationId === completion.owner.incarnationId &&
    holder.leaseToken === completion.leaseToken &&
    record!.fencingToken === completion.fencingToken
  );
}

/** Applies a fenced release in place (silent when it does not match). Returns true when it released. */
export function applyRelease(record: LeaseRecord | undefined, completion: SessionExecutionLeaseFence): boolean {
  if (!record || !releaseMatches(record, completion)) return false;
  delete record.holder;
  return true;
}

/** The lease as callers see it: a fresh copy. */
export function leaseView(sessionId: string, record: HeldLease): SessionExecutionLease {
  return {
    sessionId,
    owner: normalizeOwner(record.holder.owner),
    leaseToken: record.holder.leaseToken,
    fencingToken: record.fencingToken,
    claimedAtEpochMs: record.holder.claimedAtEpochMs,
    expiresAtEpochMs: record.holder.expiresAtEpochMs,
  };
}
