/** Pure projections of the contract (SPEC 4.5, 5.8): no I/O. */
import type {
  CheckpointKind,
  LeaseOwnerIdentity,
  SessionExecutionLease,
  SessionExecutionLeaseCompletion,
  SessionExecutionLeaseFence,
  TurnInputClaim,
  TurnInputCompletion,
  TurnInputIngress,
} from '../contract/types.js';

function copyOwner(owner: LeaseOwnerIdentity): LeaseOwnerIdentity {
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

export function claimCompletion(claim: TurnInputClaim): TurnInputCompletion {
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

/** Claim ids are `tic:<first row's enqueueSeq>:<its counter after the claim>` (SPEC 3.4). */
export function claimIdFor(firstSeq: number, fencingToken: number): string {
  return `tic:${firstSeq}:${fencingToken}`;
}
