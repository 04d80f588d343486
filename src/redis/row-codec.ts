/**
 * Pure decoding of the turn-input scripts' replies (no I/O): input rows (docs/KEYS.md), each its
 * record and state entry, become PendingTurnInput values, claim diagnostics and cancel outcomes, built as
 * fresh, normalised copies (SPEC 2.5: optional fields absent, active ingress with minBoundary,
 * owner liveness present). Anything malformed is a Backend error.
 */

import { StoreError } from '../contract/errors.js';
import type {
  FailedTurnInputRetryResult,
  JsonValue,
  LeaseOwnerIdentity,
  PendingTurnInput,
  PendingTurnInputCancelOutcome,
  PendingTurnInputCancelResult,
  PendingTurnInputCancelTarget,
  PendingTurnInputClaimDiagnostics,
  PendingTurnInputSuffixCancelOutcome,
  TraceContext,
  TurnInputClaim,
  TurnInputClaimMode,
  TurnInputIngress,
  TurnInputState,
} from '../contract/types.js';
import { copyTarget, normalizeIngress, normalizeOwner } from '../core/projections.js';
import { storedTraceContext } from '../telemetry/trace-context.js';
import { decodeId } from './key-encoding.js';

/**
 * An input row as the client sees it, decoded from its record (K.inputs), its state entry
 * (K.states, '' for an untouched next-turn row) and, where a reply carries it, the entry of the
 * claim it carries (K.claims): docs/KEYS.md, lua/include/row-format.lua.
 */
export interface StoredRow {
  inputId: string;
  seq: number;
  state: TurnInputState;
  ingress: TurnInputIngress;
  /** The ingress the row was enqueued with, when the current one differs (rewritten to next_turn). */
  origIngress?: TurnInputIngress;
  sourceKey?: string;
  enqueuedAtMs: number;
  /** sha256hex(canonical(input)), written at enqueue for source-key content matches. */
  inputHash?: string;
  enqueueGen?: number;
  /** The state entry's gen flag: a generation was live at enqueue, or adopted the row (T9). */
  underGeneration?: boolean;
  claimFencingToken?: number;
  claimId?: string;
  claimToken?: string;
  claimOwner?: LeaseOwnerIdentity;
  claimGen?: number;
  claimedAtMs?: number;
  claimExpiresAtMs?: number;
  terminalAtMs?: number;
  /** The enqueue span's W3C trace context, when one was recording (SPEC 17.2). */
  trace?: TraceContext;
  input: JsonValue;
}

/** The record's own shape (written once by lua/enqueue-input.lua). */
interface StoredRecord {
  seq: number;
  at: number;
  enqueuedAs: TurnInputState;
  scope: TurnInputIngress['scope'];
  turnId?: string;
  minBoundary?: 'after_work' | 'before_completion';
  sourceKey?: string;
  inputHash?: string;
  enqueueGen?: number;
  trace?: unknown;
  input: JsonValue;
}

const STATES: ReadonlySet<string> = new Set([
  'pending_active',
  'deferred_next_turn',
  'accepted',
  'cancelled',
  'completed',
  'failed',
]);

const STATE_ENTRY = /^([a-z_]+)\|(\d+)\|(\d+)\|([^|]*)\|(\d*)\|([^|]*)\|(1?f?)\|([\s\S]*)$/;
const CLAIM_ENTRY = /^(\d+)\|(\d+)\|([^|]*)\|(\d+)\|(\d+)\|([\s\S]*)$/;

function corrupt(what: string): StoreError {
  return new StoreError('Backend', { cause: `unexpected turn-input reply: ${what}` });
}

function str(value: unknown, what: string): string {
  if (typeof value !== 'string') throw corrupt(`${what} is not a string`);
  return value;
}

/** A state entry's ingress field: 'n', or 'a:<pct(turnId)>' / 'b:<pct(turnId)>'. */
function entryIngress(field: string): TurnInputIngress {
  if (field === 'n') return { scope: 'next_turn' };
  const m = /^([ab]):(.*)$/.exec(field);
  if (!m) throw corrupt('malformed ingress');
  return {
    scope: 'active_turn',
    turnId: decodeId(m[2]),
    minBoundary: m[1] === 'b' ? 'before_completion' : 'after_work',
  };
}

function parseOwner(text: string): LeaseOwnerIdentity {
  try {
    const owner = JSON.parse(text) as LeaseOwnerIdentity | null;
    if (owner !== null && typeof owner === 'object' && typeof owner.ownerId === 'string') return owner;
  } catch {
    // reported below
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

/** Parses and shape-checks one row from its reply elements. */
export function parseRow(inputId: unknown, record: unknown, entry: unknown, claimEntry?: unknown): StoredRow {
  const id = str(inputId, 'input id');
  let r: StoredRecord | null;
  try {
    r = JSON.parse(str(record, 'record')) as StoredRecord | null;
  } catch (e) {
    if (e instanceof StoreError) throw e;
    throw corrupt('record is not JSON');
  }
  if (r === null || typeof r !== 'object' || typeof r.seq !== 'number' || typeof r.at !== 'number' || !('input' in r)) {
    throw corrupt('malformed record');
  }
  const original =
    r.scope === 'next_turn'
      ? ({ scope: 'next_turn' } as TurnInputIngress)
      : storedIngress({ scope: r.scope, turnId: r.turnId, minBoundary: r.minBoundary });
  const row: StoredRow = {
    inputId: id,
    seq: r.seq,
    state: 'deferred_next_turn',
    ingress: { scope: 'next_turn' },
    enqueuedAtMs: r.at,
    input: r.input,
  };
  const text = str(entry, 'state entry');
  if (text !== '') {
    const m = STATE_ENTRY.exec(text);
    if (!m || !STATES.has(m[1])) throw corrupt('malformed state entry');
    row.state = m[1] as TurnInputState;
    row.ingress = entryIngress(m[6]);
    row.claimFencingToken = Number(m[3]);
    if (m[4] !== '') row.claimId = m[4];
    if (m[5] !== '') row.terminalAtMs = Number(m[5]);
    if (m[7] === '1') row.underGeneration = true;
  }
  if (row.ingress.scope !== original.scope) row.origIngress = original;
  if (r.sourceKey !== undefined) row.sourceKey = r.sourceKey;
  if (r.inputHash !== undefined) row.inputHash = r.inputHash;
  if (r.enqueueGen !== undefined) row.enqueueGen = r.enqueueGen;
  if (r.trace !== undefined) {
    const trace = storedTraceContext(r.trace);
    if (trace !== undefined) row.trace = trace;
  }
  if (claimEntry !== undefined && claimEntry !== '' && row.claimId !== undefined) {
    const m = CLAIM_ENTRY.exec(str(claimEntry, 'claim entry'));
    if (!m) throw corrupt('malformed claim entry');
    row.claimGen = Number(m[2]);
    row.claimToken = m[3];
    row.claimedAtMs = Number(m[4]);
    row.claimExpiresAtMs = Number(m[5]);
    row.claimOwner = parseOwner(m[6]);
  }
  return row;
}

/** The ingress the row was enqueued with (what a source-key replay compares against). */
export function originalIngress(row: StoredRow): TurnInputIngress {
  return row.origIngress ?? row.ingress;
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
  if (row.trace !== undefined) input.traceContext = row.trace;
  return input;
}

/** One row's reply triple (input id, record, state entry) as a PendingTurnInput. */
export function decodeInput(sessionId: string, inputId: unknown, record: unknown, entry: unknown): PendingTurnInput {
  return toPendingTurnInput(sessionId, parseRow(inputId, record, entry));
}

/**
 * The row an enqueue just made, from the draft's parts and the script's `'new', state, seq,
 * enqueuedAtMs` reply. A deferred active_turn draft is T3: its ingress became next_turn.
 */
export function newInput(
  sessionId: string,
  inputId: string,
  sourceKey: string | undefined,
  ingress: TurnInputIngress,
  payload: string,
  reply: unknown[],
): PendingTurnInput {
  const [, state, seq, at] = reply;
  if (state !== 'deferred_next_turn' && state !== 'pending_active') throw corrupt('enqueue reply');
  const input: PendingTurnInput = {
    inputId,
    sessionId,
    enqueueSeq: int(seq, 'enqueueSeq'),
    ingress: state === 'deferred_next_turn' ? { scope: 'next_turn' } : ingress,
    state,
    enqueuedAtMs: int(at, 'enqueuedAtMs'),
    // A fresh copy of what was stored (SPEC 2.5), never the caller's object.
    input: JSON.parse(payload) as JsonValue,
  };
  if (sourceKey !== undefined) input.sourceKey = sourceKey;
  return input;
}

/** A flat list of row triples (list and claim replies) from `start`, as PendingTurnInputs. */
export function decodeInputTriples(sessionId: string, flat: unknown[], start = 0): PendingTurnInput[] {
  if ((flat.length - start) % 3 !== 0) throw corrupt('row list length');
  const out: PendingTurnInput[] = [];
  for (let i = start; i < flat.length; i += 3) out.push(decodeInput(sessionId, flat[i], flat[i + 1], flat[i + 2]));
  return out;
}

/** A flat list of row quadruples (rows with their claim entry), from `start`, as stored rows. */
export function parseRowQuads(flat: unknown[], start = 0): StoredRow[] {
  if ((flat.length - start) % 4 !== 0) throw corrupt('row list length');
  const out: StoredRow[] = [];
  for (let i = start; i < flat.length; i += 4) out.push(parseRow(flat[i], flat[i + 1], flat[i + 2], flat[i + 3]));
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
export function cancelOutcome(sessionId: string, flat: unknown[], at: number): PendingTurnInputCancelOutcome {
  const outcome = flat[at];
  if (outcome === 'not_found') return { outcome: 'not_found' };
  const row = parseRow(flat[at + 1], flat[at + 2], flat[at + 3], flat[at + 4]);
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

/** The cancel-inputs reply (five elements per target) as results echoing each target. */
export function decodeCancelResults(
  sessionId: string,
  targets: PendingTurnInputCancelTarget[],
  flat: unknown[],
): PendingTurnInputCancelResult[] {
  if (flat.length !== targets.length * 5) throw corrupt('cancel reply length');
  return targets.map((target, i) => ({ target: copyTarget(target), outcome: cancelOutcome(sessionId, flat, 5 * i) }));
}

/** The cancel-suffix reply. */
export function decodeSuffix(
  sessionId: string,
  anchor: PendingTurnInputCancelTarget,
  flat: unknown[],
): PendingTurnInputSuffixCancelOutcome {
  if (flat[0] === 'anchor_not_found') return { outcome: 'anchor_not_found', anchor: copyTarget(anchor) };
  if (flat[0] !== 'outcomes' || (flat.length - 1) % 5 !== 0) throw corrupt('suffix reply');
  const outcomes: PendingTurnInputCancelOutcome[] = [];
  for (let i = 1; i < flat.length; i += 5) outcomes.push(cancelOutcome(sessionId, flat, i));
  return { outcome: 'outcomes', anchor: copyTarget(anchor), outcomes };
}

function int(value: unknown, what: string): number {
  const n = typeof value === 'number' ? value : /^\d+$/.test(str(value, what)) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < 0) throw corrupt(`${what} is not an integer >= 0`);
  return n;
}

/** The reply of claim-next-inputs and claim-active-inputs as a TurnInputClaim, or null when nothing was claimable. */
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
  if (flat.length < 7) throw corrupt('claim reply length');
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
    inputs: decodeInputTriples(request.sessionId, flat, 4),
  };
}

/** A K.failures entry (`{"attempts":n,"lastError":"..."}`) as the view's fields. */
export function parseFailure(entry: unknown): { attempts: number; lastError: string } {
  try {
    const f = JSON.parse(str(entry, 'failure entry')) as { attempts?: unknown; lastError?: unknown } | null;
    if (f && typeof f.attempts === 'number' && Number.isSafeInteger(f.attempts) && typeof f.lastError === 'string') {
      return { attempts: f.attempts, lastError: f.lastError };
    }
  } catch (e) {
    if (e instanceof StoreError) throw e;
  }
  throw corrupt('malformed failure entry');
}

/**
 * The ids of a claim reply's rows whose state entry carries the 'f' flag (a failed run counted
 * against them, SPEC 3.8): only their attempt counts are worth reading.
 */
export function flaggedClaimRows(flat: unknown[]): string[] {
  const ids: string[] = [];
  for (let i = 4; i + 2 < flat.length; i += 3) {
    const entry = flat[i + 2];
    if (typeof entry !== 'string' || entry === '') continue;
    const m = STATE_ENTRY.exec(entry);
    if (m?.[7].endsWith('f')) ids.push(str(flat[i], 'input id'));
  }
  return ids;
}

/** Sets attempts and lastError on the inputs of `ids` from their read-failures entries. */
export function applyFailures(inputs: PendingTurnInput[], ids: string[], entries: unknown[]): void {
  if (entries.length !== ids.length) throw corrupt('read-failures reply length');
  const byId = new Map<string, unknown>();
  for (let i = 0; i < ids.length; i++) byId.set(ids[i], entries[i]);
  for (const input of inputs) {
    const entry = byId.get(input.inputId);
    if (entry !== undefined && entry !== '') Object.assign(input, parseFailure(entry));
  }
}

/** The list-failed reply: quadruples of row triple + failure entry. */
export function decodeFailedInputs(sessionId: string, flat: unknown[]): PendingTurnInput[] {
  if (flat.length % 4 !== 0) throw corrupt('failed list length');
  const out: PendingTurnInput[] = [];
  for (let i = 0; i < flat.length; i += 4) {
    out.push({ ...decodeInput(sessionId, flat[i], flat[i + 1], flat[i + 2]), ...parseFailure(flat[i + 3]) });
  }
  return out;
}

/** The retry-failed reply after its wake flag: four elements per id. */
export function decodeRetryResults(
  sessionId: string,
  inputIds: string[],
  flat: unknown[],
  start: number,
): FailedTurnInputRetryResult[] {
  if (flat.length - start !== inputIds.length * 4) throw corrupt('retry reply length');
  return inputIds.map((inputId, i) => {
    const at = start + 4 * i;
    const outcome = flat[at];
    if (outcome === 'not_found') return { inputId, outcome: { outcome: 'not_found' } };
    if (outcome !== 'retried' && outcome !== 'not_failed') throw corrupt(`unknown retry outcome ${String(outcome)}`);
    return { inputId, outcome: { outcome, input: decodeInput(sessionId, flat[at + 1], flat[at + 2], flat[at + 3]) } };
  });
}
