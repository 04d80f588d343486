-- Shared by try-claim-lease and reclaim-lease: the fresh acquisition of SPEC 4.1.
-- @include requeue
-- @include lease

-- Fresh acquisition: generation = previous + 1 (1 when the session never had a lease), the
-- caller's new token, claimedAt = now, expiresAt = now + ttl (ttl 0 gives a lease that is already
-- over), the owner's liveness JSON stored as sent. With requeue on, T9 runs in the same step.
-- Returns the new lease record.
local function lease_acquire_fresh(previous, now, ownerId, incarnationId, livenessJson, leaseToken, ttl, requeue)
  local gen = previous and previous.fencingToken + 1 or 1
  local lease = { ownerId = ownerId, incarnationId = incarnationId, liveness = livenessJson, leaseToken = leaseToken,
    fencingToken = gen, fencingText = fmt(gen), claimedAt = now, expiresAt = now + ttl }
  redis.call('HSET', K.lease, 'ownerId', ownerId, 'incarnationId', incarnationId, 'liveness', livenessJson,
    'leaseToken', leaseToken, 'fencingToken', lease.fencingText, 'claimedAtEpochMs', fmt(now),
    'expiresAtEpochMs', fmt(lease.expiresAt))
  -- How many rows T9 moved, for the reply (lease_reply appends it when > 0).
  if requeue then lease.requeued = requeue_stranded(now) end
  return lease
end
