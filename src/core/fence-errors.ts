/**
 * The fence failure of a commit that carries no fence at all (`sessionExecutionLease` is optional
 * in the type, so it is easy to leave out): still SessionExecutionLeaseExpired, as SPEC 6.2 step 3
 * says, but with details naming what is missing. Both backends answer it alike.
 */
import { isStoreError, StoreError } from '../contract/errors.js';

export const NO_LEASE_FENCE = 'no_lease_fence';

export function noLeaseFenceError(sessionId: string): StoreError {
  return new StoreError('SessionExecutionLeaseExpired', {
    sessionId,
    reason: NO_LEASE_FENCE,
    hint: 'the commit has no sessionExecutionLease: pass leaseFence(lease) of the lease this worker holds',
  });
}

/** A backend's fence failure for a commit without a fence, given the details that say so. */
export function explainMissingFence(
  error: unknown,
  commit: { sessionId: string; sessionExecutionLease?: unknown },
): unknown {
  if (commit.sessionExecutionLease === undefined && isStoreError(error, 'SessionExecutionLeaseExpired')) {
    return noLeaseFenceError(commit.sessionId);
  }
  return error;
}
