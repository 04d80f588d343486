/**
 * The fence failure of a commit that carries no fence at all (`sessionExecutionLease` is optional
 * in the type, so it is easy to leave out): still SessionExecutionLeaseExpired, as SPEC 6.2 step 3
 * says, but with details naming what is missing. lua/commit-runtime-state.lua answers the same.
 */
import { StoreError } from '../contract/errors.js';

export const NO_LEASE_FENCE = 'no_lease_fence';

export function noLeaseFenceError(sessionId: string): StoreError {
  return new StoreError('SessionExecutionLeaseExpired', { sessionId, reason: NO_LEASE_FENCE });
}
