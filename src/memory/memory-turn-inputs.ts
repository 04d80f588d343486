/**
 * The turn-input methods of the in-memory store (SPEC 5) and vacuum (SPEC 8.3). Each validates
 * its arguments, then runs as one synchronous step over the session's rows; the row state machine
 * itself lives in input-rows.ts.
 */

import { randomUUID } from 'node:crypto';
import { args, boundedErrorText, type ParsedAbandonOptions } from '../contract/arguments.js';
import { StoreError } from '../contract/errors.js';
import type {
  ClaimActiveTurnInputsRequest,
  ClaimNextTurnInputsRequest,
  FailedTurnInputRetryResult,
  PendingTurnInput,
  PendingTurnInputCancelOutcome,
  PendingTurnInputCancelResult,
  PendingTurnInputCancelTarget,
  PendingTurnInputDraft,
  PendingTurnInputSuffixCancelOutcome,
  TraceContext,
  TurnInputClaim,
  TurnInputClaimMode,
  VacuumResult,
} from '../contract/types.js';
import { canonical } from '../core/canonical.js';
import { claimIdFor, copyTarget, normalizeIngress, normalizeOwner, sameIngress } from '../core/projections.js';
import { newToken } from '../core/tokens.js';
import {
  abandonRow,
  admittedAt,
  cancelRow,
  claimableBy,
  claimIsLive,
  claimRow,
  clearClaim,
  deleteRow,
  expireDue,
  type InputRow,
  insertRow,
  originalIngress,
  retryRow,
  rowById,
  rowBySource,
  rowByTarget,
  rowsFrom,
  rowView,
  type StoredIngress,
  setState,
  settleInterruptedRow,
} from './input-rows.js';
import { fencePasses, isInterrupted, isLive, liveGeneration, markInterrupted } from './lease-record.js';
import { expireIdleSessions } from './memory-erase.js';
import { type MemoryContext, peekSession, sessionFor, touchSession } from './session-state.js';

// ---------------------------------------------------------------- enqueue (SPEC 5.1)

export function enqueue(ctx: MemoryContext, draftArg: PendingTurnInputDraft): PendingTurnInput {
  return enqueueTraced(ctx, draftArg, undefined).input;
}

/** enqueue, storing the enqueue span's trace context when given (SPEC 17.2); `created` false on a replay. */
export function enqueueTraced(
  ctx: MemoryContext,
  draftArg: PendingTurnInputDraft,
  trace: TraceContext | undefined,
): { input: PendingTurnInput; created: boolean } {
  const draft = args.enqueue(draftArg);
  ctx.assertOpen();
  const now = ctx.clock();
  const ingress = normalizeIngress(draft.ingress);
  const inputJson = JSON.stringify(draft.input);
  const inputCanonical = canonical(draft.input);
  const existing = peekSession(ctx.state, draft.sessionId);

  if (draft.sourceKey !== undefined && existing) {
    const row = rowBySource(existing.inputs, draft.sourceKey);
    if (row) {
      if (sameIngress(ingress, originalIngress(row)) && inputCanonical === row.inputCanonical) {
        return { input: rowView(draft.sessionId, row), created: false };
      }
      throw new StoreError('PendingTurnInputSourceKeyConflict', {
        sessionId: draft.sessionId,
        sourceKey: draft.sourceKey,
        existingInputId: row.inputId,
      });
    }
  }
  const whenBusy = draft.whenBusy ?? 'enqueue';
  const liveGen = liveGeneration(existing?.lease, now);
  if (whenBusy === 'reject' && liveGen !== undefined) {
    throw new StoreError('SessionBusy', { sessionId: draft.sessionId, generation: liveGen });
  }
  const limit = ctx.maxPendingPerSession;
  if (limit !== undefined && existing && existing.inputs.open.size >= limit) {
    throw new StoreError('PendingTurnInputQueueFull', { sessionId: draft.sessionId, limit });
  }
  if (draft.inputId !== undefined && existing && rowById(existing.inputs, draft.inputId)) {
    throw new StoreError('PendingTurnInputIdConflict', { sessionId: draft.sessionId, inputId: draft.inputId });
  }

  const session = existing ?? sessionFor(ctx.state, draft.sessionId);
  const table = session.inputs;
  // T3: active input for a turn whose final commit already happened goes to the next turn.
  const stamped = ingress.scope === 'active_turn' && session.settled.stamps.has(ingress.turnId);
  const stored: StoredIngress = stamped ? { scope: 'next_turn' } : ingress;
  table.lastSeq += 1;
  const row: InputRow = {
    inputId: draft.inputId ?? `ti_${randomUUID()}`,
    seq: table.lastSeq,
    state: ingress.scope === 'active_turn' && !stamped ? 'pending_active' : 'deferred_next_turn',
    ingress: stored,
    enqueuedAtMs: now,
    claimFencingToken: 0,
    inputJson,
    inputCanonical,
  };
  if (stamped) row.origIngress = ingress;
  if (draft.sourceKey !== undefined) row.sourceKey = draft.sourceKey;
  if (trace !== undefined) row.trace = { ...trace };
  const gen = liveGeneration(session.lease, now);
  if (gen !== undefined) row.enqueueGen = gen;
  else if (row.state === 'pending_active' && ctx.requeue) row.graceDeadlineMs = now + ctx.activeInputGraceMs;
  if (ctx.pendingTtlMs !== undefined) row.expiresAtMs = now + ctx.pendingTtlMs;
  insertRow(table, row);
  touchSession(session, now);
  if ((whenBusy === 'interrupt' || whenBusy === 'rollback') && isLive(session.lease, now)) {
    markInterrupted(session.lease, whenBusy, now, undefined, row.inputId);
  }
  return { input: rowView(draft.sessionId, row), created: true };
}

// ---------------------------------------------------------------- list (SPEC 5.2)

export function list(ctx: MemoryContext, sessionIdArg: string): PendingTurnInput[] {
  const sessionId = args.sessionId(sessionIdArg);
  ctx.assertOpen();
  const now = ctx.clock();
  const session = peekSession(ctx.state, sessionId);
  if (!session) return [];
  const gen = liveGeneration(session.lease, now);
  if (ctx.pendingTtlMs !== undefined) expireDue(session.inputs, now, gen);
  const out: PendingTurnInput[] = [];
  for (const row of session.inputs.open.values()) {
    if (row.state !== 'pending_active' && row.state !== 'deferred_next_turn') continue;
    if (claimIsLive(row, gen)) continue;
    out.push(rowView(sessionId, row));
  }
  return out;
}

// ---------------------------------------------------------------- cancel (SPEC 5.3 - 5.5)

export function cancel(
  ctx: MemoryContext,
  sessionIdArg: string,
  targetsArg: PendingTurnInputCancelTarget[],
): PendingTurnInputCancelResult[] {
  const { sessionId, targets } = args.cancel(sessionIdArg, targetsArg);
  if (targets.length === 0) return [];
  ctx.assertOpen();
  const now = ctx.clock();
  const session = peekSession(ctx.state, sessionId);
  const gen = liveGeneration(session?.lease, now);
  return targets.map((target) => ({
    target: copyTarget(target),
    outcome: session
      ? cancelRow(session.inputs, sessionId, rowByTarget(session.inputs, target), gen, now)
      : { outcome: 'not_found' },
  }));
}

export function cancelOne(ctx: MemoryContext, sessionIdArg: string, inputIdArg: string): PendingTurnInputCancelOutcome {
  const { sessionId, inputId } = args.cancelOne(sessionIdArg, inputIdArg);
  return cancel(ctx, sessionId, [{ kind: 'input_id', value: inputId }])[0].outcome;
}

export function cancelSuffix(
  ctx: MemoryContext,
  sessionIdArg: string,
  anchorArg: PendingTurnInputCancelTarget,
): PendingTurnInputSuffixCancelOutcome {
  const { sessionId, anchor } = args.suffix(sessionIdArg, anchorArg);
  ctx.assertOpen();
  const now = ctx.clock();
  const session = peekSession(ctx.state, sessionId);
  const anchorRow = session ? rowByTarget(session.inputs, anchor) : undefined;
  if (!session || !anchorRow) return { outcome: 'anchor_not_found', anchor: copyTarget(anchor) };
  const gen = liveGeneration(session.lease, now);
  const outcomes: PendingTurnInputCancelOutcome[] = [];
  for (const row of [...rowsFrom(session.inputs, anchorRow.seq)]) {
    outcomes.push(cancelRow(session.inputs, sessionId, row, gen, now));
  }
  return { outcome: 'outcomes', anchor: copyTarget(anchor), outcomes };
}

// ---------------------------------------------------------------- claims (SPEC 5.6)

interface ClaimSpec {
  sessionId: string;
  fence: ClaimNextTurnInputsRequest['fence'];
  owner: ClaimNextTurnInputsRequest['owner'];
  leaseTtlMs: number;
  maxInputs: number;
  mode: TurnInputClaimMode;
}

function runClaim(ctx: MemoryContext, spec: ClaimSpec): TurnInputClaim | null {
  ctx.assertOpen();
  const now = ctx.clock();
  const session = peekSession(ctx.state, spec.sessionId);
  // pendingTtlMs: as on Redis, expiry runs before the fence check.
  if (session && ctx.pendingTtlMs !== undefined && spec.fence.sessionId === spec.sessionId) {
    expireDue(session.inputs, now, liveGeneration(session.lease, now));
  }
  if (!session || !fencePasses(session.lease, spec.sessionId, spec.fence, now)) {
    throw new StoreError('SessionExecutionLeaseExpired', { sessionId: spec.sessionId });
  }
  // SPEC 3.9: an interrupted generation claims nothing more.
  if (isInterrupted(session.lease)) {
    throw new StoreError('TurnInterrupted', { sessionId: spec.sessionId, generation: spec.fence.fencingToken });
  }
  const generation = spec.fence.fencingToken;
  const mode = spec.mode;
  const eligible = (row: InputRow): boolean => {
    if (!claimableBy(row, generation)) return false;
    if (mode.kind === 'next_turn') return row.state === 'deferred_next_turn';
    return (
      row.state === 'pending_active' &&
      row.ingress.scope === 'active_turn' &&
      row.ingress.turnId === mode.turnId &&
      admittedAt(row.ingress.minBoundary, mode.checkpoint)
    );
  };
  let selected: InputRow[] = [];
  for (const row of session.inputs.open.values()) {
    if (selected.length >= spec.maxInputs) break;
    if (eligible(row)) selected.push(row);
  }
  if (selected.length === 0) return null;
  if (mode.kind === 'next_turn') {
    // SPEC 3.8 isolation: a row whose run failed before is claimed alone.
    const at = selected.findIndex((row) => (row.attempts ?? 0) > 0);
    if (at >= 0) selected = at === 0 ? [selected[0]] : selected.slice(0, at);
  }

  const first = selected[0];
  const fencingToken = first.claimFencingToken + 1;
  const claimId = claimIdFor(first.seq, fencingToken);
  const owner = normalizeOwner(spec.owner);
  const token = newToken();
  const claim = {
    claimId,
    claimToken: token,
    claimOwner: owner,
    claimGen: generation,
    claimedAtMs: now,
    claimExpiresAtMs: now + spec.leaseTtlMs,
  };
  for (const row of selected) claimRow(session.inputs, row, claim, mode.kind === 'active_turn', now);
  return {
    sessionId: spec.sessionId,
    claimId,
    owner: normalizeOwner(owner),
    leaseToken: token,
    fencingToken,
    sessionLeaseGeneration: generation,
    claimedAtEpochMs: now,
    expiresAtEpochMs: now + spec.leaseTtlMs,
    mode: { ...mode },
    inputs: selected.map((row) => rowView(spec.sessionId, row, true)),
  };
}

export function claimActive(ctx: MemoryContext, requestArg: ClaimActiveTurnInputsRequest): TurnInputClaim | null {
  const r = args.claimActive(requestArg);
  if (r.maxInputs === 0) return null;
  return runClaim(ctx, {
    sessionId: r.sessionId,
    fence: r.fence,
    owner: r.owner,
    leaseTtlMs: r.leaseTtlMs,
    maxInputs: r.maxInputs,
    mode: { kind: 'active_turn', turnId: r.turnId, checkpoint: r.checkpoint },
  });
}

export function claimNext(ctx: MemoryContext, requestArg: ClaimNextTurnInputsRequest): TurnInputClaim | null {
  const r = args.claimNext(requestArg);
  if (r.maxInputs === 0) return null;
  return runClaim(ctx, {
    sessionId: r.sessionId,
    fence: r.fence,
    owner: r.owner,
    leaseTtlMs: r.leaseTtlMs,
    maxInputs: r.maxInputs,
    mode: { kind: 'next_turn' },
  });
}

// ---------------------------------------------------------------- abandon (SPEC 5.7)

type ParsedClaim = ReturnType<typeof args.abandon>;

function applyAbandon(ctx: MemoryContext, claims: ParsedClaim[], options: ParsedAbandonOptions): void {
  if (claims.length === 0) return;
  ctx.assertOpen();
  const now = ctx.clock();
  // Per session, as the Redis store's one script per session: the rows that carry their claim.
  const bySession = new Map<string, Array<{ row: InputRow; active: boolean }>>();
  for (const claim of claims) {
    const session = peekSession(ctx.state, claim.sessionId);
    if (!session) continue;
    let work = bySession.get(claim.sessionId);
    if (!work) {
      work = [];
      bySession.set(claim.sessionId, work);
    }
    for (const { inputId } of claim.inputs) {
      const row = rowById(session.inputs, inputId);
      if (!row?.claim || row.claim.claimId !== claim.claimId || row.claim.claimToken !== claim.leaseToken) continue;
      if (!work.some((w) => w.row === row)) work.push({ row, active: claim.mode.kind === 'active_turn' });
    }
  }
  const failure = options?.failure;
  for (const [sessionId, work] of bySession) {
    const session = peekSession(ctx.state, sessionId);
    if (!session) continue;
    const stamps = session.settled.stamps;
    const mark = session.lease?.interrupt;
    for (const { row, active } of work) {
      // SPEC 3.9: a claim of the interrupted generation settles by the mark (not a failure).
      if (mark && row.claim?.claimGen === mark.generation) {
        settleInterruptedRow(session.inputs, row, mark.policy, now);
        continue;
      }
      if (failure) {
        // T14 / T15 (SPEC 3.8).
        row.attempts = (row.attempts ?? 0) + 1;
        row.lastError = boundedErrorText(failure.error);
        if (work.length === 1 && row.attempts >= failure.maxAttempts) {
          clearClaim(row);
          setState(session.inputs, row, 'failed', now);
          continue;
        }
      }
      abandonRow(session.inputs, row, active, (turnId) => stamps.has(turnId), now);
    }
  }
}

export function abandonOne(ctx: MemoryContext, claimArg: TurnInputClaim, optionsArg?: unknown): void {
  const claim = args.abandon(claimArg);
  applyAbandon(ctx, [claim], args.abandonOptions(optionsArg));
}

export function abandonMany(ctx: MemoryContext, claimsArg: TurnInputClaim[], optionsArg?: unknown): void {
  const claims = args.abandonMany(claimsArg);
  applyAbandon(ctx, claims, args.abandonOptions(optionsArg));
}

// ---------------------------------------------------------------- failed inputs (SPEC 3.8)

export function listFailed(ctx: MemoryContext, sessionIdArg: string): PendingTurnInput[] {
  const sessionId = args.sessionId(sessionIdArg);
  ctx.assertOpen();
  const session = peekSession(ctx.state, sessionId);
  if (!session) return [];
  const out: PendingTurnInput[] = [];
  for (const seq of [...session.inputs.tombs].sort((a, b) => a - b)) {
    const row = session.inputs.rows.get(seq);
    if (row?.state === 'failed') out.push(rowView(sessionId, row, true));
  }
  return out;
}

export function retryFailed(
  ctx: MemoryContext,
  sessionIdArg: string,
  inputIdsArg: string[],
): FailedTurnInputRetryResult[] {
  const { sessionId, inputIds } = args.retryFailed(sessionIdArg, inputIdsArg);
  if (inputIds.length === 0) return [];
  ctx.assertOpen();
  const session = peekSession(ctx.state, sessionId);
  return inputIds.map((inputId): FailedTurnInputRetryResult => {
    const row = session ? rowById(session.inputs, inputId) : undefined;
    if (!session || !row) return { inputId, outcome: { outcome: 'not_found' } };
    if (row.state !== 'failed') return { inputId, outcome: { outcome: 'not_failed', input: rowView(sessionId, row) } };
    retryRow(session.inputs, row);
    return { inputId, outcome: { outcome: 'retried', input: rowView(sessionId, row) } };
  });
}

// ---------------------------------------------------------------- vacuum (SPEC 8.3)

export function vacuum(ctx: MemoryContext, optionsArg: { olderThanMs?: number } | undefined): VacuumResult {
  const options = args.vacuum(optionsArg);
  ctx.assertOpen();
  const now = ctx.clock();
  const olderThanMs = options?.olderThanMs ?? ctx.tombstoneRetentionMs;
  let removed = 0;
  for (const session of ctx.state.sessions.values()) {
    const table = session.inputs;
    for (const seq of [...table.tombs]) {
      const row = table.rows.get(seq);
      if (!row) continue;
      if (now - (row.terminalAtMs ?? now) >= olderThanMs) {
        deleteRow(table, row);
        removed++;
      }
    }
  }
  const result: VacuumResult = { removedPendingTurnInputTombstones: removed };
  if (ctx.sessionRetentionMs !== undefined) {
    Object.assign(result, expireIdleSessions(ctx, ctx.sessionRetentionMs, now));
  }
  return result;
}
