/**
 * The one table of script error codes. A script replies `{ code, detailsJson }` on a domain error;
 * each script's prelude gets `local E = { <name> = <code>, ... }` generated from this table
 * (src/redis/scripts/script-text.ts), and error-map.ts maps a code back to its StoreError code.
 */
import type { StoreErrorCode } from '../contract/errors.js';

export const SCRIPT_ERROR_CODES = {
  SessionExecutionLeaseExpired: -1,
  TurnInputClaimSuperseded: -2,
  HeadRevisionConflict: -3,
  RuntimeTurnCommitConflict: -4,
  PendingTurnInputSourceKeyConflict: -5,
  PendingTurnInputIdConflict: -6,
  QueuedWorkClaimSuperseded: -7,
  InvalidInput: -8,
  MissingRecordSchemaVersion: -9,
  InvalidRecordSchemaVersion: -10,
  UnsupportedRecordSchemaVersion: -11,
  Backend: -12,
  SessionBusy: -13,
  TurnInterrupted: -14,
  PendingTurnInputQueueFull: -15,
  SessionPaused: -16,
} as const satisfies Partial<Record<StoreErrorCode, number>>;

export type ScriptErrorName = keyof typeof SCRIPT_ERROR_CODES;

/** code -> StoreError code. */
export const STORE_ERROR_BY_SCRIPT_CODE: ReadonlyMap<number, ScriptErrorName> = new Map(
  Object.entries(SCRIPT_ERROR_CODES).map(([name, code]) => [code, name as ScriptErrorName]),
);
