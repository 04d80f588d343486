/**
 * The lease methods of the in-memory store (SPEC 4). Each is one synchronous step after
 * validation: nothing else can interleave.
 */
import { args } from '../contract/arguments.js';
import { StoreError } from '../contract/errors.js';
import type {
  LeaseOwnerIdentity,
  RequestTurnInterruptOptions,
  SessionExecutionLease,
  SessionExecutionLeaseClaimOutcome,
  SessionExecutionLeaseCompletion,
  SessionExecutionLeaseFence,
  TurnInterruptOutcome,
} from '../contract/types.js';
import { isDefinitelyDead } from '../core/liveness.js';
import { requeueStranded } from './input-rows.js';
import {
  applyRelease,
  fencePasses,
  freshAcquisition,
  isInterrupted,
  isLive,
  leaseView,
  markInterrupted,
  matchesObservation,
  sameIncarnation,
} from './lease-record.js';
import { type MemoryContext, type SessionState, sessionFor, touchSession } from './session-state.js';

/** Issue 18: a paused session starts no new turn (fresh acquisitions and takeovers). */
function refusePaused(sessionId: string, session: SessionState): void {
  if (session.pausedAtMs !== undefined) {
    throw new StoreError('SessionPaused', { sessionId, pausedAtEpochMs: session.pausedAtMs });
  }
}

/** A fresh acquisition, with T9 when requeue is on; returns the outcome. */
function acquire(
  ctx: MemoryContext,
  sessionId: string,
  session: SessionState,
  owner: LeaseOwnerIdentity,
  leaseTtlMs: number,
  now: number,
): SessionExecutionLeaseClaimOutcome {
  refusePaused(sessionId, session);
  const record = freshAcquisition(session.lease, owner, leaseTtlMs, now);
  session.lease = record;
  touchSession(session, now);
  const requeued = ctx.requeue ? requeueStranded(session.inputs, now, record.fencingToken) : 0;
  const lease = leaseView(sessionId, record);
  return requeued > 0 ? { outcome: 'acquired', lease, requeuedTurnInputs: requeued } : { outcome: 'acquired', lease };
}

export function tryClaimLease(
  ctx: MemoryContext,
  sessionIdArg: string,
  ownerArg: LeaseOwnerIdentity,
  leaseTtlMsArg: number,
): SessionExecutionLeaseClaimOutcome {
  const { sessionId, owner, leaseTtlMs } = args.tryClaim(sessionIdArg, ownerArg, leaseTtlMsArg);
  ctx.assertOpen();
  const now = ctx.clock();
  const session = sessionFor(ctx.state, sessionId);
  const record = session.lease;
  if (isLive(record, now)) {
    if (!sameIncarnation(record.holder.owner, owner)) return { outcome: 'busy', holder: leaseView(sessionId, record) };
    // Re-entry: only the expiry moves (it may shorten; a ttl of 0 ends the lease).
    record.holder.expiresAtEpochMs = now + leaseTtlMs;
    return { outcome: 'acquired', lease: leaseView(sessionId, record) };
  }
  return acquire(ctx, sessionId, session, owner, leaseTtlMs, now);
}

export function reclaimLease(
  ctx: MemoryContext,
  sessionIdArg: string,
  ownerArg: LeaseOwnerIdentity,
  observedArg: SessionExecutionLeaseFence,
  leaseTtlMsArg: number,
): SessionExecutionLeaseClaimOutcome {
  const { sessionId, owner, observedHolder, leaseTtlMs } = args.reclaim(
    sessionIdArg,
    ownerArg,
    observedArg,
    leaseTtlMsArg,
  );
  ctx.assertOpen();
  const now = ctx.clock();
  const session = sessionFor(ctx.state, sessionId);
  const record = session.lease;
  if (!isLive(record, now)) return acquire(ctx, sessionId, session, owner, leaseTtlMs, now);
  // The deadness verdict is the claimant's local decision; the compare-and-set on (a) makes a
  // stale observation harmless.
  if (matchesObservation(record, sessionId, observedHolder) && isDefinitelyDead(observedHolder.owner, owner)) {
    return acquire(ctx, sessionId, session, owner, leaseTtlMs, now);
  }
  return { outcome: 'busy', holder: leaseView(sessionId, record) };
}

export function renewLease(
  ctx: MemoryContext,
  fenceArg: SessionExecutionLeaseFence,
  leaseTtlMsArg: number,
): SessionExecutionLease {
  const { fence, leaseTtlMs } = args.renew(fenceArg, leaseTtlMsArg);
  ctx.assertOpen();
  const now = ctx.clock();
  const record = ctx.state.sessions.get(fence.sessionId)?.lease;
  if (!fencePasses(record, fence.sessionId, fence, now) || !record?.holder) {
    throw new StoreError('SessionExecutionLeaseExpired', { sessionId: fence.sessionId });
  }
  record.holder.expiresAtEpochMs = now + leaseTtlMs;
  const view = leaseView(fence.sessionId, { fencingToken: record.fencingToken, holder: record.holder });
  if (isInterrupted(record) && record.interrupt) view.interrupt = { ...record.interrupt };
  return view;
}

/** SPEC 3.9: marks the live generation interrupted; no live lease, nothing written. */
export function requestInterrupt(
  ctx: MemoryContext,
  sessionIdArg: string,
  optionsArg: RequestTurnInterruptOptions | undefined,
): TurnInterruptOutcome {
  const { sessionId, options } = args.interrupt(sessionIdArg, optionsArg);
  ctx.assertOpen();
  const now = ctx.clock();
  const record = ctx.state.sessions.get(sessionId)?.lease;
  if (!isLive(record, now)) return { interrupted: false };
  const policy = markInterrupted(record, options?.policy ?? 'interrupt', now, options?.reason, undefined);
  return { interrupted: true, generation: record.fencingToken, policy };
}

export function releaseLease(ctx: MemoryContext, completionArg: SessionExecutionLeaseCompletion): void {
  const completion = args.release(completionArg);
  ctx.assertOpen();
  const session = ctx.state.sessions.get(completion.sessionId);
  if (session && applyRelease(session.lease, completion)) touchSession(session, ctx.clock());
}

/** Issue 18: pauses one session's dispatch. */
export function pauseDispatch(ctx: MemoryContext, sessionIdArg: string): { changed: boolean } {
  const sessionId = args.sessionId(sessionIdArg);
  ctx.assertOpen();
  const session = sessionFor(ctx.state, sessionId);
  if (session.pausedAtMs !== undefined) return { changed: false };
  session.pausedAtMs = ctx.clock();
  return { changed: true };
}

/** Issue 18: ends a pause. */
export function resumeDispatch(ctx: MemoryContext, sessionIdArg: string): { changed: boolean } {
  const sessionId = args.sessionId(sessionIdArg);
  ctx.assertOpen();
  const session = ctx.state.sessions.get(sessionId);
  if (session?.pausedAtMs === undefined) return { changed: false };
  delete session.pausedAtMs;
  return { changed: true };
}
