/**
 * The Redis TurnInputStore (SPEC 5): enqueue, list, cancel, suffix cancel, claims and abandon.
 * Every method validates its arguments before any I/O, then makes exactly one script call per
 * session (lua/enqueue-input.lua, list-inputs, cancel-inputs, cancel-suffix, claim-inputs,
 * abandon-claims) inside ctx.track. Reply decoding lives in row-codec.ts.
 */

import { randomUUID } from 'node:crypto';
import { args, type ParsedClaim } from '../contract/arguments.js';
import { StoreError } from '../contract/errors.js';
import type {
  ClaimActiveTurnInputsRequest,
  ClaimNextTurnInputsRequest,
  LeaseOwnerIdentity,
  PendingTurnInput,
  PendingTurnInputCancelResult,
  PendingTurnInputCancelTarget,
  PendingTurnInputDraft,
  PendingTurnInputSuffixCancelOutcome,
  SessionExecutionLeaseFence,
  TurnInputClaim,
  TurnInputClaimMode,
} from '../contract/types.js';
import { canonical, sha256hex } from '../core/canonical.js';
import { normalizeIngress, normalizeOwner } from '../core/projections.js';
import type { RedisContext } from './context.js';
import {
  decodeCancelResults,
  decodeClaim,
  decodeInput,
  decodeInputPairs,
  decodeSuffix,
  newInput,
} from './row-codec.js';
import { keyCountThrough } from './script-loader.js';
import { newToken } from './tokens.js';

const CMD = {
  enqueue: 'rts_enqueue_input',
  list: 'rts_list_inputs',
  cancel: 'rts_cancel_inputs',
  suffix: 'rts_cancel_suffix',
  claim: 'rts_claim_inputs',
  abandon: 'rts_abandon_claims',
} as const;

/** A fresh claim token: 128 bits from the CSPRNG (SPEC 2.3). */
function newClaimToken(): string {
  return newToken();
}

export async function enqueue(ctx: RedisContext, draft: PendingTurnInputDraft): Promise<PendingTurnInput> {
  const d = args.enqueue(draft);
  const payload = JSON.stringify(d.input);
  // Only a source-keyed row is ever compared by content (a replay), so only it carries the hash.
  const inputHash = d.sourceKey === undefined ? '' : sha256hex(canonical(d.input));
  const inputId = d.inputId ?? `ti_${randomUUID()}`;
  const ingress = normalizeIngress(d.ingress);
  // ARGV as lua/enqueue-input.lua orders it (after the encoded session id): a next-turn draft
  // without a source key sends only the id and the payload; a turn id marks an active_turn one.
  const argv = [inputId, payload];
  if (d.sourceKey !== undefined || ingress.scope === 'active_turn') argv.push(d.sourceKey ?? '', inputHash);
  if (ingress.scope === 'active_turn') argv.push(ingress.turnId, ingress.minBoundary);
  const input = await ctx.track(async () => {
    // Keys up to the last this draft can reach (the script's `-- @keys` order): a next-turn draft
    // never touches stamps or the active-turn indexes, and only a source-keyed one touches src.
    const last = ingress.scope === 'active_turn' ? 'byseq' : d.sourceKey !== undefined ? 'src' : 'dispatch';
    const reply = await ctx.run(CMD.enqueue, d.sessionId, argv, keyCountThrough(CMD.enqueue, last));
    // A replay: [ 'replay', inputId, stored row ], the row as it is now. A new row: one string
    // with its state, seq and enqueuedAtMs; the rest is the draft (no need to read it back).
    if (reply[0] === 'replay') return decodeInput(d.sessionId, reply[1], reply[2]);
    return newInput(d.sessionId, inputId, d.sourceKey, ingress, payload, reply[0]);
  });
  if (input.state === 'deferred_next_turn') ctx.wake(d.sessionId);
  return input;
}

export async function list(ctx: RedisContext, sessionId: string): Promise<PendingTurnInput[]> {
  const id = args.sessionId(sessionId);
  return ctx.track(async () => decodeInputPairs(id, await ctx.run(CMD.list, id, [])));
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
  const claimToken = newClaimToken();
  const owner = normalizeOwner(c.owner);
  // As lua/claim-inputs.lua orders them: a next-turn claim sends neither the active-mode
  // arguments nor the keys only an active claim reaches.
  const argv = [
    c.fence.owner.ownerId,
    c.fence.owner.incarnationId,
    c.fence.leaseToken,
    String(c.fence.fencingToken),
    String(c.maxInputs),
    String(c.leaseTtlMs),
    claimToken,
    // The owner's JSON as a JSON string literal, the form the row stores it in (claimOwner), so
    // the script copies it instead of encoding it (cjson.encode, about 3.5k instructions).
    JSON.stringify(JSON.stringify(owner)),
  ];
  if (c.mode.kind === 'active_turn') argv.push(c.mode.turnId, c.mode.checkpoint);
  const keyCount = c.mode.kind === 'active_turn' ? undefined : keyCountThrough(CMD.claim, 'claims');
  return ctx.track(async () => {
    // The script checks the rest of the fence against the session's lease; a fence of another
    // session can never match it, and is not sent.
    if (c.fence.sessionId !== c.sessionId) {
      throw new StoreError('SessionExecutionLeaseExpired', { sessionId: c.sessionId });
    }
    return decodeClaim(await ctx.run(CMD.claim, c.sessionId, argv, keyCount), {
      sessionId: c.sessionId,
      owner,
      claimToken,
      sessionLeaseGeneration: c.fence.fencingToken,
      mode: c.mode,
    });
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

/**
 * Abandons claims (already validated by the store class; re-validated here, which is cheap):
 * one script call per distinct session, concurrently; an empty list makes no I/O.
 */
/** Abandons claims already validated by the caller (args.abandon / args.abandonMany). */
export async function abandon(ctx: RedisContext, parsed: ParsedClaim[]): Promise<void> {
  if (parsed.length === 0) return;
  const bySession = new Map<string, ParsedClaim[]>();
  for (const c of parsed) {
    const group = bySession.get(c.sessionId);
    if (group) group.push(c);
    else bySession.set(c.sessionId, [c]);
  }
  await Promise.all(
    [...bySession].map(async ([sessionId, group]) => {
      const argv: string[] = [ctx.requeue ? '1' : '0', String(group.length)];
      for (const c of group) {
        argv.push(c.claimId, c.leaseToken, c.mode.kind, String(c.inputs.length));
        for (const i of c.inputs) argv.push(i.inputId);
      }
      const wake = await ctx.track(async () => (await ctx.run(CMD.abandon, sessionId, argv))[0]);
      if (wake === 1) ctx.wake(sessionId);
    }),
  );
}
