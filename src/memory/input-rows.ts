/**
 * Pending turn-input rows of one session and their state machine (SPEC 3.5). This module is the
 * only code that moves a row between states; every operation module goes through it, so the
 * per-session indexes below always agree with the rows.
 *
 *  State machine
 *  -------------
 *
 *                T1 enqueue next_turn / T3 enqueue active_turn of a stamped turn
 *   (new) ───────────────────────────────────────────────────────┐
 *     │ T2 enqueue active_turn, turn not stamped                  ▼
 *     ▼                                T10 interrupt / T9 requeue
 *   pending_active ─────────────────────────────────────► deferred_next_turn ◄─┐
 *     │  ▲                                                   │   │  T5 claim next (set claim,
 *     │  │ T6 abandon (active mode, turn not stamped)        │   └─ counter +1) / T7 abandon
 *     │  │                                                   │      (clear claim)
 *     │ T4 claim active (set claim, counter +1)              │
 *     ▼  │                                                   │
 *   accepted ─────── T6 abandon (turn stamped) / T9 requeue ─┘
 *     │
 *     │ T8 commit completing the claim (also from deferred_next_turn carrying it)
 *     ▼
 *   completed  ◄── tombstones ──►  cancelled ◄── T11 cancel of pending_active / deferred_next_turn
 *     │                               │             without a live claim
 *     └────────── T13 vacuum ─────────┘  (row, id and source key deleted; enqueueSeq never reused)
 *
 *  T12 (cancel of accepted, of a row with a live claim, or of a tombstone) changes nothing.
 *
 *  Failed runs (SPEC 3.8): a failure abandon counts an attempt on each row it abandons (T14);
 *  a row abandoned alone whose attempts reach maxAttempts becomes `failed` (T15, a tombstone).
 *  retryFailedTurnInputs puts a failed row back to deferred_next_turn at its seq (T16, attempts
 *  reset); cancel makes it `cancelled`, keeping its terminalAtMs (T17).
 *
 *  Row fields (mirroring the Redis row JSON of docs/KEYS.md)
 *  ---------------------------------------------------------
 *   seq              enqueueSeq: per-session counter, never reused (vacuum keeps the counter)
 *   ingress          the current stored ingress (rewritten to next_turn by T3, T6, T9, T10)
 *   origIngress      the ingress the row was enqueued with, once the current one was rewritten;
 *                    source-key replays compare against it
 *   enqueueGen       the lease generation live at enqueue (absent when none was): T9 requeues
 *                    pending_active rows that have one, since that generation is dead by then
 *   graceDeadlineMs  requeue mode, pending_active enqueued with no live lease: T9 requeues the
 *                    row past this deadline, and before it gives it the new generation (adoption)
 *   claimFencingToken the row's claim counter: +1 per claim, never reset
 *   claim            the claim the row carries (id, token, owner, generation, times); cleared by
 *                    abandon, completion, cancel, T9 and T10, the counter kept
 *   terminalAtMs     the store time the row became a tombstone (vacuum measures age from it)
 *
 *  Indexes (kept only by insertRow / setState / deleteRow)
 *  --------------------------------------------------------
 *   rows    every row, ascending seq (Map insertion order: seqs only grow)
 *   open    the non-terminal rows, ascending seq (a row leaves it once, for good, as a tombstone)
 *   tombs   the seqs of tombstones
 *   byId / bySource   input id / source key -> seq
 */

import type {
  CheckpointKind,
  LeaseOwnerIdentity,
  PendingTurnInput,
  PendingTurnInputCancelOutcome,
  PendingTurnInputClaimDiagnostics,
  TraceContext,
  TurnInputIngress,
  TurnInputState,
  TurnInterruptPolicy,
} from '../contract/types.js';
import { type NormalizedIngress, normalizeOwner } from '../core/projections.js';

/** A stored ingress: always normalised (active_turn carries minBoundary). */
export type StoredIngress = NormalizedIngress;

export interface RowClaim {
  claimId: string;
  claimToken: string;
  claimOwner: LeaseOwnerIdentity;
  /** The lease generation (fence.fencingToken) the claim was taken under. */
  claimGen: number;
  claimedAtMs: number;
  /** The stall deadline: reported, never a revocation. */
  claimExpiresAtMs: number;
}

export interface InputRow {
  inputId: string;
  seq: number;
  state: TurnInputState;
  ingress: StoredIngress;
  origIngress?: StoredIngress;
  sourceKey?: string;
  enqueuedAtMs: number;
  enqueueGen?: number;
  /**
   * Requeue mode, a pending_active row enqueued while no lease was live: enqueuedAtMs +
   * activeInputGraceMs. The next fresh acquisition requeues the row once this has passed and
   * adopts it (gives it its generation) before (T9); either way the deadline is then dropped.
   */
  graceDeadlineMs?: number;
  /** pendingTtlMs (issue 18): enqueuedAtMs + pendingTtlMs, until the row is claimed or expires. */
  expiresAtMs?: number;
  /** 'expired' on a row pendingTtlMs cancelled. */
  cancelReason?: 'expired';
  claimFencingToken: number;
  claim?: RowClaim;
  terminalAtMs?: number;
  /** Failed runs counted against the row (SPEC 3.8), with the last one's error text. */
  attempts?: number;
  lastError?: string;
  /** The input as JSON text (written once): every read parses a fresh copy. */
  inputJson: string;
  /** canonical(input), for source-key content matches. */
  inputCanonical: string;
  /** The enqueue span's W3C trace context (SPEC 17.2), written once. */
  trace?: TraceContext;
}

export class InputTable {
  /** The last enqueueSeq handed out; never goes down, not even after vacuum. */
  lastSeq = 0;
  readonly rows = new Map<number, InputRow>();
  readonly open = new Map<number, InputRow>();
  readonly tombs = new Set<number>();
  readonly byId = new Map<string, number>();
  readonly bySource = new Map<string, number>();
}

// ---------------------------------------------------------------- ingress

/** SPEC 3.7: after_work input is admitted at both checkpoints, before_completion input only at its own. */
export function admittedAt(minBoundary: CheckpointKind, checkpoint: CheckpointKind): boolean {
  return minBoundary === 'after_work' || checkpoint === 'before_completion';
}

/** The ingress the row was enqueued with (what source-key replays compare against). */
export function originalIngress(row: InputRow): StoredIngress {
  return row.origIngress ?? row.ingress;
}

// ---------------------------------------------------------------- lookups

export function rowById(table: InputTable, inputId: string): InputRow | undefined {
  const seq = table.byId.get(inputId);
  return seq === undefined ? undefined : table.rows.get(seq);
}

export function rowBySource(table: InputTable, sourceKey: string): InputRow | undefined {
  const seq = table.bySource.get(sourceKey);
  return seq === undefined ? undefined : table.rows.get(seq);
}

export function rowByTarget(
  table: InputTable,
  target: { kind: 'input_id' | 'source_key'; value: string },
): InputRow | undefined {
  return target.kind === 'input_id' ? rowById(table, target.value) : rowBySource(table, target.value);
}

/** Every row with enqueueSeq >= seq, ascending (cost: the suffix length, vacuumed gaps included). */
export function* rowsFrom(table: InputTable, seq: number): Generator<InputRow> {
  for (let s = seq; s <= table.lastSeq; s++) {
    const row = table.rows.get(s);
    if (row) yield row;
  }
}

// ---------------------------------------------------------------- claims

/** SPEC 3.4: a row "carries a claim" when it has a claim id and token. */
export function carriesClaim(row: InputRow): row is InputRow & { claim: RowClaim } {
  return row.claim !== undefined;
}

/** The liveness rule of lease-less paths: carried, and its generation is the live lease's. */
export function claimIsLive(row: InputRow, liveGeneration: number | undefined): boolean {
  return row.claim !== undefined && liveGeneration !== undefined && row.claim.claimGen === liveGeneration;
}

/** The claim path: free, or held under a generation other than the caller's (live) one. */
export function claimableBy(row: InputRow, generation: number): boolean {
  return row.claim === undefined || row.claim.claimGen !== generation;
}

/** A claim token: 128 bits from the CSPRNG. Lease tokens use the same form. */

/** T4 / T5: sets the claim, counter +1, and accepted in active mode. */
export function claimRow(table: InputTable, row: InputRow, claim: RowClaim, active: boolean, now: number): void {
  row.claimFencingToken += 1;
  row.claim = { ...claim, claimOwner: normalizeOwner(claim.claimOwner) };
  if (active) setState(table, row, 'accepted', now);
}

/** Clearing a claim removes every claim field except the counter. */
export function clearClaim(row: InputRow): void {
  delete row.claim;
}

// ---------------------------------------------------------------- transitions

export function insertRow(table: InputTable, row: InputRow): void {
  table.rows.set(row.seq, row);
  table.open.set(row.seq, row);
  table.byId.set(row.inputId, row.seq);
  if (row.sourceKey !== undefined) table.bySource.set(row.sourceKey, row.seq);
}

/** Rewrites the stored ingress to next_turn, keeping the original for source-key replays. */
function deferIngress(row: InputRow): void {
  if (row.ingress.scope !== 'next_turn') {
    if (row.origIngress === undefined) row.origIngress = row.ingress;
    row.ingress = { scope: 'next_turn' };
  }
}

/**
 * Moves a row to a state, keeping the indexes true. Tombstones get terminalAtMs = now and lose
 * their claim; deferred rows get a next_turn ingress. Callers clear claims where the table says.
 */
export function setState(table: InputTable, row: InputRow, state: TurnInputState, now: number): void {
  row.state = state;
  if (isTombstoneState(state)) {
    row.terminalAtMs = now;
    clearClaim(row);
    table.open.delete(row.seq);
    table.tombs.add(row.seq);
  } else if (state === 'deferred_next_turn') {
    deferIngress(row);
  }
}

export function isTombstoneState(state: TurnInputState): boolean {
  return state === 'cancelled' || state === 'completed' || state === 'failed';
}

/** T16: a failed row back to deferred_next_turn at its own seq (open keeps ascending seq order). */
export function retryRow(table: InputTable, row: InputRow): void {
  row.state = 'deferred_next_turn';
  delete row.terminalAtMs;
  delete row.attempts;
  delete row.lastError;
  deferIngress(row);
  table.tombs.delete(row.seq);
  const open = [...table.open.values(), row].sort((a, b) => a.seq - b.seq);
  table.open.clear();
  for (const r of open) table.open.set(r.seq, r);
}

/** T13: removes a tombstone with its id and source-key mappings. The seq counter is untouched. */
export function deleteRow(table: InputTable, row: InputRow): void {
  table.rows.delete(row.seq);
  table.open.delete(row.seq);
  table.tombs.delete(row.seq);
  if (table.byId.get(row.inputId) === row.seq) table.byId.delete(row.inputId);
  if (row.sourceKey !== undefined && table.bySource.get(row.sourceKey) === row.seq)
    table.bySource.delete(row.sourceKey);
}

/** Would T9 move this row? accepted, or pending_active enqueued under a (now dead) generation. */
export function isStranded(row: InputRow): boolean {
  return row.state === 'accepted' || (row.state === 'pending_active' && row.enqueueGen !== undefined);
}

/**
 * Would the next acquisition requeue this row as no-lease active input past its grace deadline?
 * (The dispatch sweeper's test; the row's deadline is the store's activeInputGraceMs after enqueue.)
 */
export function isPastGrace(row: InputRow, now: number): boolean {
  return (
    row.state === 'pending_active' &&
    row.enqueueGen === undefined &&
    row.graceDeadlineMs !== undefined &&
    row.graceDeadlineMs <= now
  );
}

/**
 * T9, at a fresh lease acquisition (generation `generation`) in requeue mode. Returns how many
 * rows moved. Active input enqueued while no lease was live moves too once past its grace
 * deadline; before it, the new generation adopts it, so that the next acquisition moves it if
 * this generation ends without admitting it.
 */
export function requeueStranded(table: InputTable, now: number, generation: number): number {
  let moved = 0;
  for (const row of table.open.values()) {
    const deadline = row.graceDeadlineMs;
    delete row.graceDeadlineMs;
    if (!isStranded(row)) {
      if (deadline === undefined || row.state !== 'pending_active' || row.enqueueGen !== undefined) continue;
      if (deadline > now) {
        row.enqueueGen = generation; // adopted
        continue;
      }
    }
    clearClaim(row);
    setState(table, row, 'deferred_next_turn', now);
    moved++;
  }
  return moved;
}

/** T10: pending_active rows of `turnId` move to the next turn, claims cleared. */
export function deferInterruptedTurn(table: InputTable, turnId: string, now: number): number {
  let moved = 0;
  for (const row of table.open.values()) {
    if (row.state !== 'pending_active' || row.ingress.scope !== 'active_turn' || row.ingress.turnId !== turnId)
      continue;
    clearClaim(row);
    setState(table, row, 'deferred_next_turn', now);
    moved++;
  }
  return moved;
}

/**
 * T6 / T7: abandon of a claim this row carries. An accepted row goes back to pending_active when
 * the claim was an active one and its turn has no stamp, else to the next turn.
 */
export function abandonRow(
  table: InputTable,
  row: InputRow,
  activeMode: boolean,
  turnStamped: (turnId: string) => boolean,
  now: number,
): void {
  clearClaim(row);
  if (row.state !== 'accepted') return;
  const ingress = row.ingress;
  if (activeMode && ingress.scope === 'active_turn' && !turnStamped(ingress.turnId)) {
    setState(table, row, 'pending_active', now);
  } else {
    setState(table, row, 'deferred_next_turn', now);
  }
}

/**
 * SPEC 3.9: abandon of a claim taken under an interrupted generation. 'rollback' cancels the
 * row; 'interrupt' clears the claim and sends an accepted row to the next turn (its turn is over),
 * keeping its enqueueSeq.
 */
export function settleInterruptedRow(table: InputTable, row: InputRow, policy: TurnInterruptPolicy, now: number): void {
  clearClaim(row);
  if (policy === 'rollback') setState(table, row, 'cancelled', now);
  else if (row.state === 'accepted') setState(table, row, 'deferred_next_turn', now);
}

/**
 * pendingTtlMs (issue 18): rows past their expiry deadline that are still pending without a live
 * claim become cancelled tombstones with reason 'expired'. Returns how many.
 */
export function expireDue(table: InputTable, now: number, liveGeneration: number | undefined): number {
  let n = 0;
  for (const row of [...table.open.values()]) {
    if (row.expiresAtMs === undefined || row.expiresAtMs > now) continue;
    if (row.state !== 'pending_active' && row.state !== 'deferred_next_turn') {
      delete row.expiresAtMs;
      continue;
    }
    if (claimIsLive(row, liveGeneration)) continue;
    delete row.expiresAtMs;
    row.cancelReason = 'expired';
    setState(table, row, 'cancelled', now);
    n++;
  }
  return n;
}

// ---------------------------------------------------------------- the cancel rule (SPEC 5.3)

export function diagnostics(row: InputRow): PendingTurnInputClaimDiagnostics {
  const d: PendingTurnInputClaimDiagnostics = { state: row.state, claimFencingToken: row.claimFencingToken };
  if (row.claim) {
    d.claimId = row.claim.claimId;
    d.claimOwner = normalizeOwner(row.claim.claimOwner);
    d.claimSessionLeaseGeneration = row.claim.claimGen;
  }
  return d;
}

/** T11 / T12 for one row (or a missing one). Cancelling writes the row; every other outcome reads. */
export function cancelRow(
  table: InputTable,
  sessionId: string,
  row: InputRow | undefined,
  liveGeneration: number | undefined,
  now: number,
): PendingTurnInputCancelOutcome {
  if (!row) return { outcome: 'not_found' };
  switch (row.state) {
    case 'cancelled':
      return { outcome: 'already_cancelled', input: rowView(sessionId, row) };
    case 'completed':
      return { outcome: 'already_completed', input: rowView(sessionId, row) };
    case 'failed':
      // T17: already a tombstone, so it keeps its terminalAtMs (retention counts from it).
      row.state = 'cancelled';
      return { outcome: 'cancelled', input: rowView(sessionId, row) };
    case 'accepted':
      return { outcome: 'already_claimed', input: rowView(sessionId, row), claim: diagnostics(row) };
    default:
      if (claimIsLive(row, liveGeneration)) {
        return { outcome: 'already_claimed', input: rowView(sessionId, row), claim: diagnostics(row) };
      }
      setState(table, row, 'cancelled', now);
      return { outcome: 'cancelled', input: rowView(sessionId, row) };
  }
}

// ---------------------------------------------------------------- views

export function ingressView(ingress: StoredIngress): TurnInputIngress {
  return ingress.scope === 'active_turn'
    ? { scope: 'active_turn', turnId: ingress.turnId, minBoundary: ingress.minBoundary }
    : { scope: 'next_turn' };
}

/**
 * The PendingTurnInput a caller sees: a fresh copy, optional fields absent when empty.
 * `withFailure`: claims and listFailedTurnInputs also show attempts and lastError (SPEC 3.8).
 */
export function rowView(sessionId: string, row: InputRow, withFailure = false): PendingTurnInput {
  const view: PendingTurnInput = {
    inputId: row.inputId,
    sessionId,
    enqueueSeq: row.seq,
    ingress: ingressView(row.ingress),
    state: row.state,
    enqueuedAtMs: row.enqueuedAtMs,
    input: JSON.parse(row.inputJson),
  };
  if (row.sourceKey !== undefined) view.sourceKey = row.sourceKey;
  if (withFailure && row.attempts !== undefined) {
    view.attempts = row.attempts;
    view.lastError = row.lastError ?? '';
  }
  if (row.trace !== undefined) view.traceContext = { ...row.trace };
  return view;
}
