/**
 * The Redis TurnInputStore (SPEC 5): enqueue, list, cancel, suffix cancel, claims and abandon.
 * Every method validates its arguments before any I/O, then makes exactly one script call per
 * session (lua/enqueue-input.lua, list-inputs, cancel-inputs, cancel-suffix, claim-next-inputs, claim-active-inputs,
 * abandon-claims) inside ctx.track. Reply decoding lives in row-codec.ts.
 */

import { randomUUID } from 'node:crypto';
import { args, boundedErrorText, type ParsedAbandonOptions, type ParsedClaim } from '../contract/arguments.js';
import { StoreError } from '../contract/errors.js';
import type {
  ClaimActiveTurnInputsRequest,
  ClaimNextTurnInputsRequest,
  FailedTurnInputRetryResult,
  LeaseOwnerIdentity,
  PendingTurnInput,
  PendingTurnInputCancelResult,
  PendingTurnInputCancelTarget,
  PendingTurnInputDraft,
  PendingTurnInputSuffixCancelOutcome,
  SessionExecutionLeaseFence,
  TraceContext,
  TurnInputClaim,
  TurnInputClaimMode,
} from '../contract/types.js';
import { canonical, sha256hex } from '../core/canonical.js';
import { type NormalizedIngress, normalizeIngress, normalizeOwner, sameIngress } from '../core/projections.js';
import { newToken } from '../core/tokens.js';
import type { TracedEnqueueResult } from '../telemetry/internal.js';
import { traceRecordMember } from '../telemetry/trace-context.js';
import { isClusterClient, type RedisContext } from './context.js';
import {
  applyFailures,
  decodeCancelResults,
  decodeClaim,
  decodeFailedInputs,
  decodeInputTriples,
  decodeRetryResults,
  decodeSuffix,
  flaggedClaimRows,
  newInput,
  originalIngress,
  parseRow,
  toPendingTurnInput,
} from './row-codec.js';

const CMD = {
  enqueue: 'rts_enqueue_input',
  enqueueActive: 'rts_enqueue_active_input',
  enqueueBusy: 'rts_enqueue_input_busy',
  expire: 'rts_expire_inputs',
  list: 'rts_list_inputs',
  cancel: 'rts_cancel_inputs',
  suffix: 'rts_cancel_suffix',
  claimNext: 'rts_claim_next_inputs',
  claimActive: 'rts_claim_active_inputs',
  abandon: 'rts_abandon_claims',
  listFailed: 'rts_list_failed',
  retryFailed: 'rts_retry_failed',
  readFailures: 'rts_read_failures',
} as const;

export async function enqueue(ctx: RedisContext, draft: PendingTurnInputDraft): Promise<PendingTurnInput> {
  return (await enqueueTraced(ctx, draft, undefined)).input;
}

/**
 * enqueue, storing `trace` (the enqueue span's W3C context) in the record when given, and telling
 * whether the row is new (false: a source-key replay). Without a trace the script's arguments are
 * byte for byte those of a plain enqueue.
 */
export async function enqueueTraced(
  ctx: RedisContext,
  draft: PendingTurnInputDraft,
  trace: TraceContext | undefined,
): Promise<TracedEnqueueResult> {
  const d = args.enqueue(draft);
  const payload = JSON.stringify(d.input);
  // Only a source-keyed row is ever compared by content (a replay), so only it carries the hash.
  const inputHash = d.sourceKey === undefined ? undefined : sha256hex(canonical(d.input));
  const inputId = d.inputId ?? `ti_${randomUUID()}`;
  const ingress = normalizeIngress(d.ingress);
  const members = recordMembers(ingress, d.sourceKey, inputHash) + traceRecordMember(trace);
  const argv = [inputId, payload, members, d.sourceKey ?? ''];
  // Next-turn drafts take the narrower script: it is sent only the keys a next-turn row touches.
  const limit = ctx.settings.maxPendingPerSession;
  const ttl = ctx.settings.pendingTtlMs === undefined ? '' : String(ctx.settings.pendingTtlMs);
  if (ingress.scope === 'active_turn') {
    argv.push(
      ingress.turnId,
      ingress.minBoundary === 'before_completion' ? 'b' : 'a',
      ctx.requeue ? '1' : '0',
      String(ctx.settings.activeInputGraceMs),
      limit === undefined ? '' : String(limit),
      ttl,
    );
  }
  // whenBusy other than 'enqueue' (next-turn drafts only, per the schema) and the queue cap take
  // their own script, so the plain next-turn enqueue is sent no extra key or argument.
  const busy =
    (d.whenBusy !== undefined && d.whenBusy !== 'enqueue') ||
    ((limit !== undefined || ttl !== '') && ingress.scope === 'next_turn');
  if (busy) {
    argv.push(
      d.whenBusy ?? 'enqueue',
      isClusterClient(ctx.client) ? '1' : '0',
      limit === undefined ? '' : String(limit),
      ttl,
    );
  }
  const command = busy ? CMD.enqueueBusy : ingress.scope === 'active_turn' ? CMD.enqueueActive : CMD.enqueue;
  // A next-turn enqueue leaves its row deferred_next_turn (or replays a row), so its wake-up is
  // sent right behind the script call, in the same tick, instead of after the reply: the two
  // travel together (docs/DECISIONS.md). A wake-up for an enqueue that fails, or replays a row
  // that has moved on, finds nothing to run: harmless.
  const wakeEarly = ingress.scope === 'next_turn';
  const result = await ctx.track(async (): Promise<TracedEnqueueResult> => {
    const pending = ctx.run(command, d.sessionId, argv);
    if (wakeEarly) ctx.wake(d.sessionId);
    const reply = await pending;
    if (reply[0] === 'new') {
      const fresh = newInput(d.sessionId, inputId, d.sourceKey, ingress, payload, reply);
      if (trace !== undefined) fresh.traceContext = { ...trace };
      return { input: fresh, created: true };
    }
    // The source key names a row: the same content is a replay (the row as it is now), any other
    // is a conflict. Nothing was written either way.
    const row = parseRow(reply[1], reply[2], reply[3]);
    if (row.inputHash !== inputHash || !sameIngress(normalizeIngress(originalIngress(row)), ingress)) {
      throw new StoreError('PendingTurnInputSourceKeyConflict', {
        sessionId: d.sessionId,
        sourceKey: d.sourceKey,
        existingInputId: row.inputId,
      });
    }
    return { input: toPendingTurnInput(d.sessionId, row), created: false };
  });
  if (!wakeEarly && result.input.state === 'deferred_next_turn') ctx.wake(d.sessionId);
  return result;
}

/** The record's ingress and source members (ARGV[4] of lua/enqueue-input.lua and enqueue-active-input.lua). */
function recordMembers(
  ingress: NormalizedIngress,
  sourceKey: string | undefined,
  inputHash: string | undefined,
): string {
  let out =
    ingress.scope === 'active_turn'
      ? `"scope":"active_turn","turnId":${JSON.stringify(ingress.turnId)},"minBoundary":"${ingress.minBoundary}"`
      : '"scope":"next_turn"';
  if (sourceKey !== undefined) out += `,"sourceKey":${JSON.stringify(sourceKey)},"inputHash":"${inputHash}"`;
  return out;
}

export async function list(ctx: RedisContext, sessionId: string): Promise<PendingTurnInput[]> {
  const id = args.sessionId(sessionId);
  return ctx.track(async () => {
    await expireDue(ctx, id);
    return decodeInputTriples(id, await ctx.run(CMD.list, id, []));
  });
}

/**
 * pendingTtlMs (issue 18): turns the session's input past its expiry deadline into tombstones
 * (lua/expire-inputs.lua) before a claim or a list sees it. Without the option: no call.
 */
async function expireDue(ctx: RedisContext, sessionId: string): Promise<void> {
  if (ctx.settings.pendingTtlMs === undefined) return;
  await ctx.run(CMD.expire, sessionId, []);
}

export async function cancel(
  ctx: RedisContext,
  sessionId: string,
  targets: PendingTurnInputCancelTarget[],
): Promise<PendingTurnInputCancelResult[]> {
  const parsed = args.cancel(sessionId, targets);
  return cancelParsed(ctx, parsed.sessionId, parsed.targets);
}

/** The cancel script for arguments already validated (the bulk and the single form). */
export async function cancelParsed(
  ctx: RedisContext,
  sessionId: string,
  targets: PendingTurnInputCancelTarget[],
): Promise<PendingTurnInputCancelResult[]> {
  if (targets.length === 0) return [];
  const argv: string[] = [];
  for (const t of targets) argv.push(t.kind, t.value);
  return ctx.track(async () => decodeCancelResults(sessionId, targets, await ctx.run(CMD.cancel, sessionId, argv)));
}

export async function cancelSuffix(
  ctx: RedisContext,
  sessionId: string,
  anchor: PendingTurnInputCancelTarget,
): Promise<PendingTurnInputSuffixCancelOutcome> {
  const parsed = args.suffix(sessionId, anchor);
  return ctx.track(async () =>
    decodeSuffix(
      parsed.sessionId,
      parsed.anchor,
      await ctx.run(CMD.suffix, parsed.sessionId, [parsed.anchor.kind, parsed.anchor.value]),
    ),
  );
}

interface ClaimCall {
  sessionId: string;
  fence: SessionExecutionLeaseFence;
  owner: LeaseOwnerIdentity;
  leaseTtlMs: number;
  maxInputs: number;
  mode: TurnInputClaimMode;
}

async function claim(ctx: RedisContext, c: ClaimCall): Promise<TurnInputClaim | null> {
  const claimToken = newToken();
  const owner = normalizeOwner(c.owner);
  const active = c.mode.kind === 'active_turn' ? c.mode : undefined;
  const argv = [
    c.fence.owner.ownerId,
    c.fence.owner.incarnationId,
    c.fence.leaseToken,
    String(c.fence.fencingToken),
    String(c.maxInputs),
    String(c.leaseTtlMs),
    claimToken,
    JSON.stringify(owner),
  ];
  if (active) argv.push(active.turnId, active.checkpoint);
  return ctx.track(async () => {
    // The script checks the rest of the fence against the session's lease; a fence of another
    // session can never match it.
    if (c.fence.sessionId !== c.sessionId) {
      throw new StoreError('SessionExecutionLeaseExpired', { sessionId: c.sessionId });
    }
    await expireDue(ctx, c.sessionId);
    const reply = await ctx.run(active ? CMD.claimActive : CMD.claimNext, c.sessionId, argv);
    const claim = decodeClaim(reply, {
      sessionId: c.sessionId,
      owner,
      claimToken,
      sessionLeaseGeneration: c.fence.fencingToken,
      mode: c.mode,
    });
    // SPEC 3.8: rows a failed run counted show their attempts. Only such rows (flag 'f' in the
    // entry) cost this second read; the claims themselves are rows this claim now holds, so no
    // other call changes their counts in between.
    const flagged = claim ? flaggedClaimRows(reply) : [];
    if (claim && flagged.length > 0) {
      applyFailures(claim.inputs, flagged, await ctx.run(CMD.readFailures, c.sessionId, flagged));
    }
    return claim;
  });
}

export async function claimActive(
  ctx: RedisContext,
  request: ClaimActiveTurnInputsRequest,
): Promise<TurnInputClaim | null> {
  const r = args.claimActive(request);
  if (r.maxInputs === 0) return null;
  return claim(ctx, { ...r, mode: { kind: 'active_turn', turnId: r.turnId, checkpoint: r.checkpoint } });
}

export async function claimNext(
  ctx: RedisContext,
  request: ClaimNextTurnInputsRequest,
): Promise<TurnInputClaim | null> {
  const r = args.claimNext(request);
  if (r.maxInputs === 0) return null;
  return claim(ctx, { ...r, mode: { kind: 'next_turn' } });
}

/** Abandons claims already validated by the caller: one script call per session, concurrently. */
export async function abandon(
  ctx: RedisContext,
  parsed: ParsedClaim[],
  options: ParsedAbandonOptions = undefined,
): Promise<void> {
  if (parsed.length === 0) return;
  const failure = options?.failure;
  const report = failure ? [String(failure.maxAttempts), JSON.stringify(boundedErrorText(failure.error))] : ['', ''];
  const bySession = new Map<string, ParsedClaim[]>();
  for (const c of parsed) {
    const group = bySession.get(c.sessionId);
    if (group) group.push(c);
    else bySession.set(c.sessionId, [c]);
  }
  await Promise.all(
    [...bySession].map(async ([sessionId, group]) => {
      const claims = group.map((c) => ({
        claimId: c.claimId,
        token: c.leaseToken,
        active: c.mode.kind === 'active_turn',
        inputIds: c.inputs.map((i) => i.inputId),
      }));
      const argv = [ctx.requeue ? '1' : '0', JSON.stringify(claims), ...report];
      const wake = await ctx.track(async () => (await ctx.run(CMD.abandon, sessionId, argv))[0]);
      if (wake === 1) ctx.wake(sessionId);
    }),
  );
}

/** listFailedTurnInputs (SPEC 3.8): one read-only script call. */
export async function listFailed(ctx: RedisContext, sessionId: string): Promise<PendingTurnInput[]> {
  const id = args.sessionId(sessionId);
  return ctx.track(async () => decodeFailedInputs(id, await ctx.run(CMD.listFailed, id, [])));
}

/** retryFailedTurnInputs (SPEC 3.8): one script call; a wake-up when the session is dispatchable. */
export async function retryFailed(
  ctx: RedisContext,
  sessionId: string,
  inputIds: string[],
): Promise<FailedTurnInputRetryResult[]> {
  const parsed = args.retryFailed(sessionId, inputIds);
  if (parsed.inputIds.length === 0) return [];
  const argv = [ctx.requeue ? '1' : '0', ...parsed.inputIds];
  const [wake, results] = await ctx.track(async () => {
    const reply = await ctx.run(CMD.retryFailed, parsed.sessionId, argv);
    return [reply[0], decodeRetryResults(parsed.sessionId, parsed.inputIds, reply, 1)] as const;
  });
  if (wake === 1) ctx.wake(parsed.sessionId);
  return results;
}
