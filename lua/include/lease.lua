-- Shared: the session execution lease in K.lease (SPEC 3.2, 3.3, 4). fencingToken, the
-- generation, survives release; a released lease has empty owner and token and both times 0.
-- @include common

-- The lease record, or nil when the session never had one. The generation is kept as stored
-- text (fencingText) for exact comparison with a fence, and as a number.
local function lease_read()
  local v = redis.call('HMGET', K.lease, 'ownerId', 'incarnationId', 'liveness', 'leaseToken',
    'fencingToken', 'claimedAtEpochMs', 'expiresAtEpochMs')
  if not v[5] then return nil end
  return {
    ownerId = v[1] or '', incarnationId = v[2] or '', liveness = v[3] or '', leaseToken = v[4] or '',
    fencingText = v[5], fencingToken = tonumber(v[5]), claimedAt = tonumber(v[6] or '0'),
    expiresAt = tonumber(v[7] or '0'),
  }
end

-- What a fence check and a fenced release compare: lease_read without the liveness JSON and
-- claimedAt (a field read costs a script about as much as a small command; docs/DECISIONS.md).
local function lease_read_fence()
  local v = redis.call('HMGET', K.lease, 'ownerId', 'incarnationId', 'leaseToken', 'fencingToken', 'expiresAtEpochMs',
    'interruptGen')
  if not v[4] then return nil end
  return { ownerId = v[1] or '', incarnationId = v[2] or '', leaseToken = v[3] or '', fencingText = v[4],
    expiresAt = tonumber(v[5] or '0'), interruptGen = v[6] }
end

-- SPEC 3.9: the record's own generation is marked interrupted (`lease` from lease_read_fence).
-- The mark names a generation, so a fresh acquisition needs no write to clear it.
local function lease_interrupted(lease)
  return lease ~= nil and lease.interruptGen == lease.fencingText
end

-- Live: a token is set and the expiry is strictly in the future.
local function lease_live(lease, now)
  return lease ~= nil and lease.leaseToken ~= '' and lease.expiresAt > now
end

-- The generation text of the live lease, or nil when none is live.
local function live_generation(now)
  local v = redis.call('HMGET', K.lease, 'leaseToken', 'fencingToken', 'expiresAtEpochMs')
  if v[2] and lease_live({ leaseToken = v[1] or '', expiresAt = tonumber(v[3] or '0') }, now) then return v[2] end
  return nil
end

-- SPEC 3.3: same owner, incarnation, token and generation, and live.
local function fence_ok(lease, now, ownerId, incarnationId, leaseToken, fencingToken)
  return lease_live(lease, now) and lease.ownerId == ownerId and lease.incarnationId == incarnationId
    and lease.leaseToken == leaseToken and lease.fencingText == fencingToken
end

-- Same incarnation (SPEC 4.1): ownerId and incarnationId equal; liveness is ignored.
local function lease_same_incarnation(lease, ownerId, incarnationId)
  return lease.ownerId == ownerId and lease.incarnationId == incarnationId
end

-- The fenced release of SPEC 4.4: only on an exact match, expiry not checked, generation kept.
-- Returns true when it released. `lease` is the record as read in this script (lease_read or
-- lease_read_fence), before any write to K.lease.
local function lease_release(lease, ownerId, incarnationId, leaseToken, fencingToken)
  if lease == nil or lease.leaseToken == '' then return false end
  if lease.ownerId ~= ownerId or lease.incarnationId ~= incarnationId or lease.leaseToken ~= leaseToken
    or lease.fencingText ~= fencingToken then
    return false
  end
  redis.call('HSET', K.lease, 'ownerId', '', 'incarnationId', '', 'liveness', '', 'leaseToken', '',
    'claimedAtEpochMs', '0', 'expiresAtEpochMs', '0')
  return true
end

-- Appends the lease's reply fields to `out`: ownerId, incarnationId, liveness JSON, leaseToken,
-- then fencingToken, claimedAt and expiresAt as integers (decodeLease in src/redis/lease-ops.ts);
-- after a fresh acquisition whose T9 moved rows, how many.
local function lease_reply(out, lease)
  out[#out + 1] = lease.ownerId
  out[#out + 1] = lease.incarnationId
  out[#out + 1] = lease.liveness ~= '' and lease.liveness or '{"kind":"opaque"}'
  out[#out + 1] = lease.leaseToken
  out[#out + 1] = lease.fencingToken
  out[#out + 1] = lease.claimedAt
  out[#out + 1] = lease.expiresAt
  if lease.requeued and lease.requeued > 0 then out[#out + 1] = lease.requeued end
  return out
end
