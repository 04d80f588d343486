/**
 * Pure decoding of the turn-input scripts' replies (no I/O): input rows (docs/KEYS.md) plus their
 * payload strings become PendingTurnInput values, claim diagnostics and cancel outcomes, built as
 * fresh, normalised copies (SPEC 2.5: optional fields absent, active ingress with minBoundary,
 * owner liveness present). Anything malformed is a Backend error.
 */

import { StoreError } from '../contract/errors.js';
import type {
  JsonValue,
  LeaseOwnerIdentity,
  PendingTurnInput,
  PendingTurnInputCancelOutcome,
  PendingTurnInputCancelResult,
  PendingTurnInputCancelTarget,
  PendingTurnInputClaimDiagnostics,
  PendingTurnInputSuffixCancelOutcome,
  TurnInputClaim,
  TurnInputClaimMode,
  TurnInputIngress,
  TurnInputState,
} from '../contract/types.js';
import { normalizeIngress, normalizeOwner } from '../core/projections.js';

/** An `inputs` hash value as the Lua scripts write it (docs/KEYS.md, lua/include/rows.lua). */
export interface StoredRow {
  inputId: string;
  seq: number;
  state: TurnInputState;
  ingress: TurnInputIngress;
  origIngress?: TurnInputIngress;
  sourceKey?: string;
  enqueuedAtMs: number;
  /** sha256hex(canonical(input)), written at enqueue for source-key content matches. */
  inputHash?: string;
  enqueueGen?: number;
  claimFencingToken?: number;
  claimId?: string;
  claimToken?: string;
  claimOwner?: LeaseOwnerIdentity;
  claimGen?: number;
  claimedAtMs?: number;
  claimExpiresAtMs?: number;
  terminalAtMs?: number;
}

const STATES: ReadonlySet<string> = new Set([
  'pending_active',
  'deferred_next_turn',
  'accepted',
  'cancelled',
  'completed',
]);

function corrupt(what: string): StoreError {
  return new StoreError('Backend', { cause: `unexpected turn-input reply: ${what}` });
}

function str(value: unknown, what: string): string {
  if (typeof value !== 'string') throw corrupt(`${what} is not a string`);
  return value;
}

/** Parses and shape-checks one row JSON. */
export function parseRow(rowJson: unknown): StoredRow {
  let row: unknown;
  try {
    row = JSON.parse(str(rowJson, 'row'));
  } catch (e) {
    if (e instanceof StoreError) throw e;
    throw corrupt('row is not JSON');
  }
  const r = row as Partial<StoredRow> | null;
  if (
    r === null ||
    typeof r !== 'object' ||
    typeof r.inputId !== 'string' ||
    typeof r.seq !== 'number' ||
    typeof r.state !== 'string' ||
    !STATES.has(r.state) ||
    typeof r.enqueuedAtMs !== 'number' ||
    r.ingress === null ||
    typeof r.ingress !== 'object'
  ) {
    throw corrupt('malformed row');
  }
  return r as StoredRow;
}

/** A stored ingress as returned (SPEC 2.5 normalisation); anything else in Redis is corruption. */
function storedIngress(ingress: TurnInputIngress): TurnInputIngress {
  const known =
    (ingress?.scope === 'active_turn' &&
      typeof ingress.turnId === 'string' &&
      (ingress.minBoundary === undefined ||
        ingress.minBoundary === 'after_work' ||
        ingress.minBoundary === 'before_completion')) ||
    ingress?.scope === 'next_turn';
  if (!known) throw corrupt('malformed ingress');
  return normalizeIngress(ingress);
}

function parsePayload(payload: unknown): JsonValue {
  try {
    return JSON.parse(str(payload, 'payload')) as JsonValue;
  } catch (e) {
    if (e instanceof StoreError) throw e;
    throw corrupt('payload is not JSON');
  }
}

/** A stored row and its payload string as a PendingTurnInput of `sessionId`. */
export function toPendingTurnInput(sessionId: string, row: StoredRow, payload: unknown): PendingTurnInput {
  const input: PendingTurnInput = {
    inputId: row.inputId,
    sessionId,
    enqueueSeq: row.seq,
    ingress: storedIngress(row.ingress),
    state: row.state,
    enqueuedAtMs: row.enqueuedAtMs,
    input: parsePayload(payload),
  };
  if (typeof row.sourceKey === 'string') input.sourceKey = row.sourceKey;
  return input;
}

/** Row JSON + payload string (one reply pair) as a PendingTurnInput. */
export function decodeInput(sessionId: string, rowJson: unknown, payload: unknown): PendingTurnInput {
  return toPendingTurnInput(sessionId, parseRow(rowJson), payload);
}

/** A flat `rowJson, payload, rowJson, payload, ...` list (list and claim replies). */
export function decodeInputPairs(sessionId: string, flat: unknown[], start = 0): PendingTurnInput[] {
  if ((flat.length - start) % 2 !== 0) throw corrupt('odd row/payload list');
  const out: PendingTurnInput[] = [];
  for (let i = start; i < flat.length; i += 2) out.push(decodeInput(sessionId, flat[i], flat[i + 1]));
  return out;
}

/** PendingTurnInputClaimDiagnostics from a row's claim fields (SPEC 5.3). */
export function claimDiagnostics(row: StoredRow): PendingTurnInputClaimDiagnostics {
  const d: PendingTurnInputClaimDiagnostics = { state: row.state, claimFencingToken: row.claimFencingToken ?? 0 };
  if (typeof row.claimId === 'string') d.claimId = row.claimId;
  if (row.claimOwner && typeof row.claimOwner === 'object') d.claimOwner = normalizeOwner(row.claimOwner);
  if (typeof row.claimGen === 'number') d.claimSessionLeaseGeneration = row.claimGen;
  return d;
}

/** One cancel-rule outcome: the outcome name plus the row as the rule left it. */
export function cancelOutcome(
  sessionId: string,
  outcome: unknown,
  rowJson: unknown,
  payload: unknown,
): PendingTurnInputCancelOutcome {
  if (outcome === 'not_found') return { outcome: 'not_found' };
  const row = parseRow(rowJson);
  const input = toPendingTurnInput(sessionId, row, payload);
  switch (outcome) {
    case 'cancelled':
    case 'already_cancelled':
    case 'already_completed':
      return { outcome, input };
    case 'already_claimed':
      return { outcome, input, claim: claimDiagnostics(row) };
    default:
      throw corrupt(`unknown cancel outcome ${String(outcome)}`);
  }
}

function copyTarget(target: PendingTurnInputCancelTarget): PendingTurnInputCancelTarget {
  return { kind: target.kind, value: target.value } as PendingTurnInputCancelTarget;
}

/** The cancel-inputs reply (three elements per target) as results echoing each target. */
export function decodeCancelResults(
  sessionId: string,
  targets: PendingTurnInputCancelTarget[],
  flat: unknown[],
): PendingTurnInputCancelResult[] {
  if (flat.length !== targets.length * 3) throw corrupt('cancel reply length');
  return targets.map((target, i) => ({
    target: copyTarget(target),
    outcome: cancelOutcome(sessionId, flat[3 * i], flat[3 * i + 1], flat[3 * i + 2]),
  }));
}

/** The cancel-suffix reply. */
export function decodeSuffix(
  sessionId: string,
  anchor: PendingTurnInputCancelTarget,
  flat: unknown[],
): PendingTurnInputSuffixCancelOutcome {
  if (flat[0] === 'anchor_not_found') return { outcome: 'anchor_not_found', anchor: copyTarget(anchor) };
  if (flat[0] !== 'outcomes' || (flat.length - 1) % 3 !== 0) throw corrupt('suffix reply');
  const outcomes: PendingTurnInputCancelOutcome[] = [];
  for (let i = 1; i < flat.length; i += 3) outcomes.push(cancelOutcome(sessionId, flat[i], flat[i + 1], flat[i + 2]));
  return { outcome: 'outcomes', anchor: copyTarget(anchor), outcomes };
}

function int(value: unknown, what: string): number {
  const n = typeof value === 'number' ? value : Number(str(value, what));
  if (!Number.isSafeInteger(n)) throw corrupt(`${what} is not an integer`);
  return n;
}

/** The claim-inputs reply as a TurnInputClaim, or null when nothing was claimable. */
export function decodeClaim(
  flat: unknown[],
  request: {
    sessionId: string;
    owner: LeaseOwnerIdentity;
    claimToken: string;
    sessionLeaseGeneration: number;
    mode: TurnInputClaimMode;
  },
): TurnInputClaim | null {
  if (flat.length === 0) return null;
  if (flat.length < 6) throw corrupt('claim reply length');
  const mode: TurnInputClaimMode =
    request.mode.kind === 'active_turn'
      ? { kind: 'active_turn', turnId: request.mode.turnId, checkpoint: request.mode.checkpoint }
      : { kind: 'next_turn' };
  return {
    sessionId: request.sessionId,
    claimId: str(flat[0], 'claimId'),
    owner: normalizeOwner(request.owner),
    leaseToken: request.claimToken,
    fencingToken: int(flat[1], 'fencingToken'),
    sessionLeaseGeneration: request.sessionLeaseGeneration,
    claimedAtEpochMs: int(flat[2], 'claimedAtEpochMs'),
    expiresAtEpochMs: int(flat[3], 'expiresAtEpochMs'),
    mode,
    inputs: decodeInputPairs(request.sessionId, flat, 4),
  };
}
