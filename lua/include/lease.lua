-- Shared by the lease scripts: the fresh acquisition of SPEC 3.2 and the reply form of a lease.
-- Needs keys, common and rows included first.

-- Fresh acquisition (SPEC 3.2): generation = previous + 1 (previous is 0 when the session never
-- had a lease), the caller's new random token, claimedAt = now, expiresAt = now + ttl (ttl 0
-- gives a lease that is already over), the owner stored with its liveness JSON exactly as the
-- client sent it. With requeue on, T9 runs in the same step. Returns the script's reply, one string
-- '<generation>:<claimedAt>': the rest of the new lease is what the client sent (expiresAt is
-- claimedAt + the ttl it sent), and a table reply costs Redis about 7k instructions more.
-- `previousGen` is the stored generation's text, or nil when the session never had a lease (a
-- stored value that is not a number fails the script instead of restarting the generations).
local function lease_acquire_fresh(previousGen, now, ownerId, incarnationId, livenessJson, leaseToken, ttl, requeue)
  local gen = 1
  if previousGen ~= nil then gen = tonumber(previousGen) + 1 end
  local genText, nowText = fmt(gen), fmt(now)
  redis.call('HSET', K.lease, 'ownerId', ownerId, 'incarnationId', incarnationId, 'liveness', livenessJson,
    'leaseToken', leaseToken, 'fencingToken', genText, 'claimedAtEpochMs', nowText, 'expiresAtEpochMs', fmt(now + ttl))
  if requeue then requeue_stranded(now) end
  return genText .. ':' .. nowText
end

-- Same incarnation (SPEC 3.2): ownerId and incarnationId equal; liveness is ignored.
local function lease_same_incarnation(lease, ownerId, incarnationId)
  return lease.ownerId == ownerId and lease.incarnationId == incarnationId
end

-- The success reply of tryClaim / reclaim: { 0, 'acquired' | 'busy', lease fields... }.
local function lease_outcome(outcome, lease)
  return lease_reply({ 0, outcome }, lease)
end
