/**
 * Script replies: `{ 0, ... }` on success, `{ code, detailsJson }` on a domain error. The codes
 * are the table in lua/include/common.lua; this is the one place they become StoreErrors. A hot
 * script may also answer its common success with one bare integer or string: Redis spends about
 * 7k instructions more on any table reply (bench/RESULTS.md), and such a reply is the payload.
 */
import { StoreError, type StoreErrorCode } from '../contract/errors.js';

export const SCRIPT_ERROR_CODES: Record<number, StoreErrorCode> = {
  [-1]: 'SessionExecutionLeaseExpired',
  [-2]: 'TurnInputClaimSuperseded',
  [-3]: 'HeadRevisionConflict',
  [-4]: 'RuntimeTurnCommitConflict',
  [-5]: 'PendingTurnInputSourceKeyConflict',
  [-6]: 'PendingTurnInputIdConflict',
  [-7]: 'QueuedWorkClaimSuperseded',
  [-8]: 'InvalidInput',
  [-9]: 'MissingRecordSchemaVersion',
  [-10]: 'InvalidRecordSchemaVersion',
  [-11]: 'UnsupportedRecordSchemaVersion',
  [-12]: 'Backend',
};

export type ScriptReply = [number, ...unknown[]];

/** Returns the success payload (elements after the status) or throws the mapped StoreError. */
export function unwrapReply(reply: unknown): unknown[] {
  if (typeof reply === 'number' || typeof reply === 'string') return [reply];
  if (!Array.isArray(reply) || typeof reply[0] !== 'number') {
    throw new StoreError('Backend', { cause: `unexpected script reply: ${JSON.stringify(reply)?.slice(0, 200)}` });
  }
  const status = (reply as ScriptReply)[0];
  // slice, not `[status, ...rest]`: the iterator-based destructuring is measurably slower per call.
  const rest = reply.slice(1);
  if (status === 0) return rest;
  const code = SCRIPT_ERROR_CODES[status];
  if (!code) throw new StoreError('Backend', { cause: `unknown script status ${status}` });
  let details: Record<string, unknown> = {};
  try {
    const parsed = JSON.parse(String(rest[0] ?? '{}'));
    // cjson encodes an empty table as {} and never as [], so details are always an object.
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) details = parsed;
  } catch {
    details = {};
  }
  throw new StoreError(code, details);
}
