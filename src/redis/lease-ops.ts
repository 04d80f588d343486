/**
 * The session execution lease on Redis (SPEC 4.1-4.4): one script call per method
 * (lua/try-claim-lease.lua, reclaim-lease.lua, renew-lease.lua, release-lease.lua). This module
 * only validates, shapes ARGV and decodes replies; every decision about liveness, incarnation and
 * generation is made inside the script with the server clock. The one exception is the
 * "definitely dead" verdict of a reclaim, which only the claimant's process can see (/proc).
 */
import { args } from '../contract/arguments.js';
import { StoreError } from '../contract/errors.js';
import type {
  LeaseOwnerIdentity,
  LeaseOwnerLiveness,
  RequestTurnInterruptOptions,
  SessionExecutionLease,
  SessionExecutionLeaseClaimOutcome,
  SessionExecutionLeaseCompletion,
  SessionExecutionLeaseFence,
  TurnInterruptMark,
  TurnInterruptOutcome,
} from '../contract/types.js';
import { canonical } from '../core/canonical.js';
import { isDefinitelyDead } from '../core/liveness.js';
import { normalizeOwner } from '../core/projections.js';
import { newToken } from '../core/tokens.js';
import { isClusterClient, type RedisContext } from './context.js';
import { encodeId } from './key-encoding.js';

const OPAQUE_LIVENESS_JSON = canonical({ kind: 'opaque' });

/** The stored and compared form of an owner's liveness: canonical JSON, opaque when omitted. */
function livenessJson(owner: LeaseOwnerIdentity): string {
  // The common case (liveness omitted or opaque; the parsed owner has no other keys) is a constant.
  if (owner.liveness === undefined || owner.liveness.kind === 'opaque') return OPAQUE_LIVENESS_JSON;
  return canonical(normalizeOwner(owner).liveness);
}

function flag(b: boolean): string {
  return b ? '1' : '0';
}

function badReply(what: string, reply: unknown): StoreError {
  return new StoreError('Backend', { cause: `unexpected ${what} reply: ${JSON.stringify(reply)?.slice(0, 200)}` });
}

/**
 * Decodes the reply fields of `lease_reply` (lua/include/common.lua), from `at`: ownerId,
 * incarnationId, liveness JSON, leaseToken, then fencingToken, claimedAt and expiresAt as
 * integers, into a fresh SessionExecutionLease.
 */
function decodeLease(sessionId: string, reply: unknown[], at: number): SessionExecutionLease {
  const [ownerId, incarnationId, liveness, leaseToken, fencingToken, claimedAt, expiresAt] = reply.slice(at, at + 7);
  let parsedLiveness: unknown;
  try {
    parsedLiveness = JSON.parse(String(liveness));
  } catch {
    throw badReply('lease', reply);
  }
  if (
    typeof ownerId !== 'string' ||
    typeof incarnationId !== 'string' ||
    typeof parsedLiveness !== 'object' ||
    parsedLiveness === null ||
    typeof leaseToken !== 'string' ||
    !Number.isSafeInteger(fencingToken) ||
    !Number.isSafeInteger(claimedAt) ||
    !Number.isSafeInteger(expiresAt)
  ) {
    throw badReply('lease', reply);
  }
  return {
    sessionId,
    owner: { ownerId, incarnationId, liveness: parsedLiveness as LeaseOwnerLiveness },
    leaseToken,
    fencingToken: fencingToken as number,
    claimedAtEpochMs: claimedAt as number,
    expiresAtEpochMs: expiresAt as number,
  };
}

/** The reply of try-claim-lease / reclaim-lease: `'acquired' | 'busy'`, then the lease's fields. */
function decodeClaimOutcome(sessionId: string, reply: unknown[]): SessionExecutionLeaseClaimOutcome {
  const outcome = reply[0];
  if (outcome === 'acquired') {
    const lease = decodeLease(sessionId, reply, 1);
    const requeued = reply[8];
    return Number.isSafeInteger(requeued) && (requeued as number) > 0
      ? { outcome: 'acquired', lease, requeuedTurnInputs: requeued as number }
      : { outcome: 'acquired', lease };
  }
  if (outcome === 'busy') return { outcome: 'busy', holder: decodeLease(sessionId, reply, 1) };
  throw badReply('lease claim', reply);
}

/** The ARGV a fresh acquisition needs, shared by tryClaim and reclaim (lua/try-claim-lease.lua). */
function acquisitionArgv(ctx: RedisContext, owner: LeaseOwnerIdentity, leaseTtlMs: number): string[] {
  return [owner.ownerId, owner.incarnationId, livenessJson(owner), newToken(), String(leaseTtlMs), flag(ctx.requeue)];
}

/** SPEC 4.1: re-entry, busy, or a fresh acquisition (with T9 in requeue mode). */
export async function tryClaimLease(
  ctx: RedisContext,
  sessionId: string,
  owner: LeaseOwnerIdentity,
  leaseTtlMs: number,
): Promise<SessionExecutionLeaseClaimOutcome> {
  const a = args.tryClaim(sessionId, owner, leaseTtlMs);
  const argv = acquisitionArgv(ctx, a.owner, a.leaseTtlMs);
  return ctx.track(async () =>
    decodeClaimOutcome(a.sessionId, await ctx.run('rts_try_claim_lease', a.sessionId, argv)),
  );
}

/**
 * SPEC 4.2: a fresh acquisition when the lease is not live; a takeover of a live lease only when
 * it still matches `observedHolder` exactly (liveness included) and this process judges that
 * holder definitely dead. The verdict is computed here, the compare-and-set in the script.
 */
export async function reclaimLease(
  ctx: RedisContext,
  sessionId: string,
  owner: LeaseOwnerIdentity,
  observedHolder: SessionExecutionLeaseFence,
  leaseTtlMs: number,
): Promise<SessionExecutionLeaseClaimOutcome> {
  const a = args.reclaim(sessionId, owner, observedHolder, leaseTtlMs);
  const observed = a.observedHolder;
  const dead = isDefinitelyDead(normalizeOwner(observed.owner), normalizeOwner(a.owner));
  const argv = acquisitionArgv(ctx, a.owner, a.leaseTtlMs);
  argv.push(
    encodeId(observed.sessionId),
    observed.owner.ownerId,
    observed.owner.incarnationId,
    livenessJson(observed.owner),
    observed.leaseToken,
    String(observed.fencingToken),
    flag(dead),
  );
  return ctx.track(async () => decodeClaimOutcome(a.sessionId, await ctx.run('rts_reclaim_lease', a.sessionId, argv)));
}

/** SPEC 4.3: the full fence check, then expiresAt = now + ttl; else SessionExecutionLeaseExpired. */
export async function renewLease(
  ctx: RedisContext,
  fence: SessionExecutionLeaseFence,
  leaseTtlMs: number,
): Promise<SessionExecutionLease> {
  const a = args.renew(fence, leaseTtlMs);
  const f = a.fence;
  const argv = [f.owner.ownerId, f.owner.incarnationId, f.leaseToken, String(f.fencingToken), String(a.leaseTtlMs)];
  return ctx.track(async () => {
    const reply = await ctx.run('rts_renew_lease', f.sessionId, argv);
    const lease = decodeLease(f.sessionId, reply, 0);
    // SPEC 3.9: the renewed generation is marked interrupted.
    if (reply.length > 7) lease.interrupt = decodeMark(lease.fencingToken, reply, 7);
    return lease;
  });
}

/** The interrupt mark fields of a renew reply, from `at`: policy, reason, input id, time. */
function decodeMark(generation: number, reply: unknown[], at: number): TurnInterruptMark {
  const [policy, reason, inputId, atMs] = reply.slice(at, at + 4);
  if (
    (policy !== 'interrupt' && policy !== 'rollback') ||
    typeof reason !== 'string' ||
    typeof inputId !== 'string' ||
    !Number.isSafeInteger(atMs)
  ) {
    throw badReply('renew', reply);
  }
  const mark: TurnInterruptMark = { generation, policy, atEpochMs: atMs as number };
  if (reason !== '') mark.reason = reason;
  if (inputId !== '') mark.inputId = inputId;
  return mark;
}

/** SPEC 3.9: marks the live generation interrupted and publishes the notice (lua/interrupt-turn.lua). */
export async function requestInterrupt(
  ctx: RedisContext,
  sessionId: string,
  options: RequestTurnInterruptOptions | undefined,
): Promise<TurnInterruptOutcome> {
  const a = args.interrupt(sessionId, options);
  const argv = [a.options?.policy ?? 'interrupt', a.options?.reason ?? '', flag(isClusterClient(ctx.client))];
  return ctx.track(async () => {
    const reply = await ctx.run('rts_interrupt_turn', a.sessionId, argv);
    if (reply[0] !== 1) return { interrupted: false };
    const policy = reply[2];
    if (!Number.isSafeInteger(reply[1]) || (policy !== 'interrupt' && policy !== 'rollback')) {
      throw badReply('interrupt', reply);
    }
    return { interrupted: true, generation: reply[1] as number, policy };
  });
}

/**
 * SPEC 4.4: the fenced release, a silent no-op on mismatch. When the session is left with
 * dispatchable input, a wake-up is sent after the script settles (fire-and-forget).
 */
export async function releaseLease(ctx: RedisContext, completion: SessionExecutionLeaseCompletion): Promise<void> {
  const c = args.release(completion);
  const argv = [c.owner.ownerId, c.owner.incarnationId, c.leaseToken, String(c.fencingToken), flag(ctx.requeue)];
  const dispatchable = await ctx.track(async () => {
    const reply = await ctx.run('rts_release_lease', c.sessionId, argv);
    return reply[1] === 1;
  });
  if (dispatchable) ctx.wake(c.sessionId);
}

/** Issue 18: pauses one session's dispatch (lua/pause-session.lua). */
export async function pauseDispatch(ctx: RedisContext, sessionId: string): Promise<{ changed: boolean }> {
  const id = args.sessionId(sessionId);
  return ctx.track(async () => ({ changed: (await ctx.run('rts_pause_session', id, []))[0] === 1 }));
}

/** Issue 18: ends a pause; a wake-up when the session is left with dispatchable input. */
export async function resumeDispatch(ctx: RedisContext, sessionId: string): Promise<{ changed: boolean }> {
  const id = args.sessionId(sessionId);
  const reply = await ctx.track(() => ctx.run('rts_resume_session', id, [flag(ctx.requeue)]));
  if (reply[1] === 1) ctx.wake(id);
  return { changed: reply[0] === 1 };
}
