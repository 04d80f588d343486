/**
 * Pure decoding of the turn-input scripts' replies (no I/O): input rows (docs/KEYS.md), each an
 * input id and its stored value, become PendingTurnInput values, claim diagnostics and cancel outcomes, built as
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

/**
 * An input row as the client sees it, decoded from an `inputs` hash field (its input id) and
 * value (docs/KEYS.md, lua/include/rows.lua): the stored meta with the ingress unflattened, the
 * implied state filled in, and the payload parsed.
 */
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
  input: JsonValue;
}

/** The stored value's own shape: short names, ingress flattened, payload last as `input`. */
interface StoredValue
  extends Omit<StoredRow, 'inputId' | 'state' | 'ingress' | 'origIngress' | 'enqueuedAtMs' | 'claimOwner'> {
  /** The claim owner's JSON text (a string member, so Lua never decodes it). */
  claimOwner?: string;
  at: number;
  scope: TurnInputIngress['scope'];
  turnId?: string;
  minBoundary?: 'after_work' | 'before_completion';
  state?: TurnInputState;
  orig?: TurnInputIngress;
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

/** Parses and shape-checks one stored row (one JSON.parse for meta and payload together). */
export function parseRow(inputId: unknown, value: unknown): StoredRow {
  const id = str(inputId, 'input id');
  let v: StoredValue | null;
  try {
    v = JSON.parse(str(value, 'row')) as StoredValue | null;
  } catch (e) {
    if (e instanceof StoreError) throw e;
    throw corrupt('row is not JSON');
  }
  if (
    v === null ||
    typeof v !== 'object' ||
    typeof v.seq !== 'number' ||
    typeof v.at !== 'number' ||
    !('input' in v) ||
    (v.state !== undefined && !STATES.has(v.state))
  ) {
    throw corrupt('malformed row');
  }
  const ingress =
    v.scope === 'next_turn'
      ? ({ scope: 'next_turn' } as TurnInputIngress)
      : storedIngress({ scope: v.scope, turnId: v.turnId, minBoundary: v.minBoundary });
  // Built field by field (no spread): this runs for every row a list, claim or cancel returns.
  const row: StoredRow = {
    inputId: id,
    seq: v.seq,
    state: v.state ?? (ingress.scope === 'next_turn' ? 'deferred_next_turn' : 'pending_active'),
    ingress,
    enqueuedAtMs: v.at,
    input: v.input,
  };
  if (v.orig !== undefined) row.origIngress = v.orig;
  if (v.sourceKey !== undefined) row.sourceKey = v.sourceKey;
  if (v.inputHash !== undefined) row.inputHash = v.inputHash;
  if (v.enqueueGen !== undefined) row.enqueueGen = v.enqueueGen;
  if (v.claimFencingToken !== undefined) row.claimFencingToken = v.claimFencingToken;
  if (v.claimId !== undefined) row.claimId = v.claimId;
  if (v.claimToken !== undefined) row.claimToken = v.claimToken;
  if (v.claimOwner !== undefined) row.claimOwner = parseOwner(v.claimOwner);
  if (v.claimGen !== undefined) row.claimGen = v.claimGen;
  if (v.claimedAtMs !== undefined) row.claimedAtMs = v.claimedAtMs;
  if (v.claimExpiresAtMs !== undefined) row.claimExpiresAtMs = v.claimExpiresAtMs;
  if (v.terminalAtMs !== undefined) row.terminalAtMs = v.terminalAtMs;
  return row;
}

function parseOwner(text: unknown): LeaseOwnerIdentity {
  try {
    const owner = JSON.parse(str(text, 'claim owner')) as LeaseOwnerIdentity | null;
    if (owner !== null && typeof owner === 'object' && typeof owner.ownerId === 'string') return owner;
  } catch (e) {
    if (e instanceof StoreError) throw e;
  }
  throw corrupt('malformed claim owner');
}

/** A stored ingress as returned (SPEC 2.5 normalisation); anything else in Redis is corruption. */
function storedIngress(ingress: { scope?: unknown; turnId?: unknown; minBoundary?: unknown }): TurnInputIngress {
  if (ingress?.scope === 'next_turn') return { scope: 'next_turn' };
  const known =
    ingress?.scope === 'active_turn' &&
    typeof ingress.turnId === 'string' &&
    (ingress.minBoundary === undefined ||
      ingress.minBoundary === 'after_work' ||
      ingress.minBoundary === 'before_completion');
  if (!known) throw corrupt('malformed ingress');
  return normalizeIngress(ingress as TurnInputIngress);
}

/** A decoded row as a PendingTurnInput of `sessionId` (the payload object is the row's own fresh parse). */
export function toPendingTurnInput(sessionId: string, row: StoredRow): PendingTurnInput {
  const input: PendingTurnInput = {
    inputId: row.inputId,
    sessionId,
    enqueueSeq: row.seq,
    ingress: row.ingress,
    state: row.state,
    enqueuedAtMs: row.enqueuedAtMs,
    input: row.input,
  };
  if (typeof row.sourceKey === 'string') input.sourceKey = row.sourceKey;
  return input;
}

/** One reply pair (input id, stored value) as a PendingTurnInput. */
export function decodeInput(sessionId: string, inputId: unknown, value: unknown): PendingTurnInput {
  return toPendingTurnInput(sessionId, parseRow(inputId, value));
}

/**
 * The row an enqueue just created, from the draft's parts and the script's [ 'new', seq,
 * enqueuedAtMs, state ] reply. A deferred active_turn draft is T3: its ingress was rewritten.
 */
export function newInput(
  sessionId: string,
  inputId: string,
  sourceKey: string | undefined,
  ingress: TurnInputIngress,
  payload: string,
  reply: unknown,
): PendingTurnInput {
  // '<d|p>:<seq>:<enqueuedAtMs>' (lua/enqueue-input.lua)
  const m = typeof reply === 'string' ? /^([dp]):(\d+):(\d+)$/.exec(reply) : null;
  if (!m) throw corrupt('enqueue reply');
  const state = m[1] === 'd' ? 'deferred_next_turn' : 'pending_active';
  const input: PendingTurnInput = {
    inputId,
    sessionId,
    enqueueSeq: int(m[2], 'enqueueSeq'),
    ingress: state === 'deferred_next_turn' ? { scope: 'next_turn' } : ingress,
    state,
    enqueuedAtMs: int(m[3], 'enqueuedAtMs'),
    // A fresh copy of what was stored (SPEC 2.5), never the caller's object.
    input: JSON.parse(payload) as JsonValue,
  };
  if (sourceKey !== undefined) input.sourceKey = sourceKey;
  return input;
}

/** A flat `inputId, value, inputId, value, ...` list (list and claim replies). */
export function decodeInputPairs(sessionId: string, flat: unknown[], start = 0): PendingTurnInput[] {
  return parseRowPairs(flat, start).map((row) => toPendingTurnInput(sessionId, row));
}

/** A flat `inputId, value, ...` list from `start` as stored rows (parseRow each). */
export function parseRowPairs(flat: unknown[], start = 0): StoredRow[] {
  if ((flat.length - start) % 2 !== 0) throw corrupt('odd id/row list');
  const out: StoredRow[] = [];
  for (let i = start; i < flat.length; i += 2) out.push(parseRow(flat[i], flat[i + 1]));
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
  inputId: unknown,
  value: unknown,
): PendingTurnInputCancelOutcome {
  if (outcome === 'not_found') return { outcome: 'not_found' };
  const row = parseRow(inputId, value);
  const input = toPendingTurnInput(sessionId, row);
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
