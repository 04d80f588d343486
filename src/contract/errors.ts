/**
 * The one error type of the store. Every failure is a StoreError with a code from the pinned
 * table and a plain, JSON-serialisable details object.
 */

export type StoreErrorCode =
  | 'SessionBindingMismatch'
  | 'UnsupportedReadScope'
  | 'HeadRevisionConflict'
  | 'RuntimeTurnCommitConflict'
  | 'TurnInputClaimSuperseded'
  | 'QueuedWorkClaimSuperseded'
  | 'PendingTurnInputSourceKeyConflict'
  | 'PendingTurnInputIdConflict'
  | 'SessionExecutionLeaseExpired'
  | 'SessionBusy'
  | 'TurnInterrupted'
  | 'PendingTurnInputQueueFull'
  | 'SessionPaused'
  | 'UnsupportedRecordSchemaVersion'
  | 'MissingRecordSchemaVersion'
  | 'InvalidRecordSchemaVersion'
  | 'InvalidInput'
  | 'StoreClosed'
  | 'Backend';

export const STORE_ERROR_CODES: readonly StoreErrorCode[] = [
  'SessionBindingMismatch',
  'UnsupportedReadScope',
  'HeadRevisionConflict',
  'RuntimeTurnCommitConflict',
  'TurnInputClaimSuperseded',
  'QueuedWorkClaimSuperseded',
  'PendingTurnInputSourceKeyConflict',
  'PendingTurnInputIdConflict',
  'SessionExecutionLeaseExpired',
  'SessionBusy',
  'TurnInterrupted',
  'PendingTurnInputQueueFull',
  'SessionPaused',
  'UnsupportedRecordSchemaVersion',
  'MissingRecordSchemaVersion',
  'InvalidRecordSchemaVersion',
  'InvalidInput',
  'StoreClosed',
  'Backend',
];

/** A brand shared by every loaded copy of the package, so isStoreError works across copies. */
const BRAND = Symbol.for('redis-turn-store.StoreError');

function describe(code: StoreErrorCode, details: Record<string, unknown>): string {
  if (code === 'StoreClosed') {
    return `${code}: the store was closed by close(); no call on it can succeed (do not retry: create a new store)`;
  }
  if (code === 'InvalidInput' && Array.isArray(details.issues)) {
    return `${code}: ${(details.issues as string[]).join('; ')}`;
  }
  const parts = Object.entries(details)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`);
  return parts.length > 0 ? `${code}: ${parts.join(', ')}` : code;
}

export class StoreError extends Error {
  readonly code: StoreErrorCode;
  readonly details: Record<string, unknown>;

  constructor(code: StoreErrorCode, details: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(describe(code, details), options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'StoreError';
    this.code = code;
    this.details = details;
    Object.defineProperty(this, BRAND, { value: true });
  }
}

export function isStoreError(error: unknown, code?: StoreErrorCode): error is StoreError {
  if (typeof error !== 'object' || error === null) return false;
  const e = error as Record<string | symbol, unknown>;
  if (e[BRAND] !== true) return false;
  return code === undefined || e.code === code;
}

/** What every call on a closed store rejects with (both backends): never worth retrying. */
export function storeClosed(): StoreError {
  return new StoreError('StoreClosed', {});
}

export function invalidInput(issues: string[]): StoreError {
  return new StoreError('InvalidInput', { issues });
}

/** Wraps anything thrown by the client (connection loss, timeouts, odd replies) as Backend. */
export function backendError(cause: unknown): StoreError {
  if (isStoreError(cause)) return cause;
  const message = cause instanceof Error ? cause.message : String(cause);
  return new StoreError('Backend', { cause: message }, { cause });
}
