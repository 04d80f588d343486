/** Pure projections of the contract (SPEC 4.5, 5.8): no I/O. */

import { isPlainObject } from '../contract/schemas.js';
import type {
  CheckpointKind,
  LeaseOwnerIdentity,
  PendingTurnInputCancelTarget,
  SessionExecutionLease,
  SessionExecutionLeaseCompletion,
  SessionExecutionLeaseFence,
  StoreStats,
  TurnInputClaim,
  TurnInputCompletion,
  TurnInputIngress,
} from '../contract/types.js';

/** What JSON.parse(JSON.stringify(v)) gives for a string, boolean, null or finite number; else NOT_FLAT. */
const NOT_FLAT = Symbol('not flat');
function copyScalar(v: unknown): unknown {
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return v;
  if (typeof v === 'number' && Number.isFinite(v)) return v === 0 ? 0 : v; // -0 becomes 0, as in JSON
  return NOT_FLAT;
}

/**
 * The JSON copy of a plain object, in key order, each defined member copied by `copy`; NOT_FLAT
 * when `copy` gives that for any member.
 */
function copyPlain(o: Record<string, unknown>, copy: (key: string, v: unknown) => unknown): unknown {
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(o)) {
    const v = o[k];
    if (v === undefined) continue;
    const c = copy(k, v);
    if (c === NOT_FLAT || k === '__proto__') return NOT_FLAT;
    out[k] = c;
  }
  return out;
}

/** An owner's member: scalars, and a liveness object of scalars. */
function copyOwnerMember(key: string, v: unknown): unknown {
  if (key === 'liveness' && isPlainObject(v)) return copyPlain(v, (_, x) => copyScalar(x));
  return copyScalar(v);
}

/**
 * A deep JSON copy of an owner. The usual owner (scalar fields and a flat liveness object) is
 * copied directly, keys in the same order; anything else takes the JSON round trip, which
 * defines the result (it used to be the only path, and cost about 1 us per fence).
 */
function copyOwner(owner: LeaseOwnerIdentity): LeaseOwnerIdentity {
  const out = isPlainObject(owner) ? copyPlain(owner, copyOwnerMember) : NOT_FLAT;
  if (out !== NOT_FLAT) return out as LeaseOwnerIdentity;
  return JSON.parse(JSON.stringify(owner)) as LeaseOwnerIdentity;
}

export function leaseFence(lease: SessionExecutionLease): SessionExecutionLeaseFence {
  return {
    sessionId: lease.sessionId,
    owner: copyOwner(lease.owner),
    leaseToken: lease.leaseToken,
    fencingToken: lease.fencingToken,
  };
}

export function leaseCompletion(lease: SessionExecutionLease): SessionExecutionLeaseCompletion {
  return leaseFence(lease);
}

export function claimCompletion<TInput>(claim: TurnInputClaim<TInput>): TurnInputCompletion {
  return {
    sessionId: claim.sessionId,
    claimId: claim.claimId,
    leaseToken: claim.leaseToken,
    inputIds: claim.inputs.map((i) => i.inputId),
  };
}

/** The owner as returned: liveness always present. */
export function normalizeOwner(owner: LeaseOwnerIdentity): LeaseOwnerIdentity {
  return {
    ownerId: owner.ownerId,
    incarnationId: owner.incarnationId,
    liveness: owner.liveness ? { ...owner.liveness } : { kind: 'opaque' },
  };
}

/** An ingress as stored and returned (SPEC 2.5): active-turn ingress always carries minBoundary. */
export type NormalizedIngress =
  | { scope: 'active_turn'; turnId: string; minBoundary: CheckpointKind }
  | { scope: 'next_turn' };

export function normalizeIngress(ingress: TurnInputIngress): NormalizedIngress {
  return ingress.scope === 'active_turn'
    ? { scope: 'active_turn', turnId: ingress.turnId, minBoundary: ingress.minBoundary ?? 'after_work' }
    : { scope: 'next_turn' };
}

/** Whether two ingresses name the same target (what a source-key replay compares). */
export function sameIngress(a: NormalizedIngress, b: NormalizedIngress): boolean {
  if (a.scope === 'next_turn' || b.scope === 'next_turn') return a.scope === b.scope;
  return a.turnId === b.turnId && a.minBoundary === b.minBoundary;
}

/** Claim ids are `tic:<first row's enqueueSeq>:<its counter after the claim>` (SPEC 3.4). */
export function claimIdFor(firstSeq: number, fencingToken: number): string {
  return `tic:${firstSeq}:${fencingToken}`;
}

/** A fresh copy of a cancel target (results echo the caller's target, never its object). */
export function copyTarget(target: PendingTurnInputCancelTarget): PendingTurnInputCancelTarget {
  return { kind: target.kind, value: target.value } as PendingTurnInputCancelTarget;
}

/** The figures of stats() before any session is counted (both backends add to it). */
export function emptyStoreStats(atEpochMs: number): StoreStats {
  return {
    sessionsWithPendingInput: 0,
    pendingInputs: 0,
    oldestPendingInputAgeMs: 0,
    liveLeases: 0,
    stalledClaims: 0,
    atEpochMs,
  };
}
