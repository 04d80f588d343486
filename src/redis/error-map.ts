/**
 * Script replies: `{ 0, ... }` on success, `{ code, detailsJson }` on a domain error, the codes
 * being src/redis/script-errors.ts. This is the one place they become StoreErrors.
 */
import { StoreError } from '../contract/errors.js';
import { STORE_ERROR_BY_SCRIPT_CODE } from './script-errors.js';

/** Returns the success payload (elements after the status) or throws the mapped StoreError. */
export function unwrapReply(reply: unknown): unknown[] {
  if (!Array.isArray(reply) || typeof reply[0] !== 'number') {
    throw new StoreError('Backend', { cause: `unexpected script reply: ${JSON.stringify(reply)?.slice(0, 200)}` });
  }
  const status = reply[0];
  const rest = reply.slice(1);
  if (status === 0) return rest;
  const code = STORE_ERROR_BY_SCRIPT_CODE.get(status);
  if (!code) throw new StoreError('Backend', { cause: `unknown script status ${status}` });
  let details: Record<string, unknown> = {};
  try {
    const parsed = JSON.parse(String(rest[0] ?? '{}'));
    // cjson encodes an empty table as {}, so details are always an object.
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) details = parsed;
  } catch {
    details = {};
  }
  throw new StoreError(code, details);
}
