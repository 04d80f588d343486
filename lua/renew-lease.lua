--[[
  renew-lease: renewSessionExecutionLease (SPEC 4.3): extend a live lease under a full fence check.

  KEYS[1] lease

  ARGV[1] encoded session id
  ARGV[2] fence.owner.ownerId
  ARGV[3] fence.owner.incarnationId
  ARGV[4] fence.leaseToken
  ARGV[5] fence.fencingToken (decimal)
  ARGV[6] leaseTtlMs (0..86400000)

  Reply:
    { 0, lease... }  renewed: expiresAt = now + ttl; everything else unchanged
    { 0, lease..., policy, reason, inputId, atEpochMs }  renewed, and this generation is marked
                     interrupted (SPEC 3.9): the mark ('' for an absent reason or input id)
    { E.SessionExecutionLeaseExpired, {sessionId} }  no record, another incarnation, token or
                     generation, or the lease is not live (an expired lease cannot be renewed,
                     even if nobody took it); nothing written
]]
-- @include lease

local now = now_ms()
local lease = lease_read()
if not fence_ok(lease, now, ARGV[2], ARGV[3], ARGV[4], ARGV[5]) then
  return fail(E.SessionExecutionLeaseExpired, { sessionId = session_raw() })
end
lease.expiresAt = now + tonumber(ARGV[6])
redis.call('HSET', K.lease, 'expiresAtEpochMs', fmt(lease.expiresAt))
local out = lease_reply({ 0 }, lease)
-- SPEC 3.9: a renewal of an interrupted generation still extends it (the holder needs the time to
-- settle its claims and release) and says so.
local m = redis.call('HMGET', K.lease, 'interruptGen', 'interruptPolicy', 'interruptReason', 'interruptInputId',
  'interruptAtMs')
if m[1] == lease.fencingText then
  out[#out + 1] = m[2] or 'interrupt'
  out[#out + 1] = m[3] or ''
  out[#out + 1] = m[4] or ''
  out[#out + 1] = tonumber(m[5] or '0')
end
return out
