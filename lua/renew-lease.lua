--[[
  Extend a live lease under a full fence check (SPEC 4.3).

  Input:
    KEYS: the standard per-session block (docs/KEYS.md, lua/include/keys.lua) of
          fence.sessionId: the 19 session keys then the 5 shard keys, narrowed to those it names. Reads and writes K.lease
          only.

    ARGV[1] encoded session id (every per-session script)
    ARGV[2] fence.owner.ownerId
    ARGV[3] fence.owner.incarnationId
    ARGV[4] fence.leaseToken
    ARGV[5] fence.fencingToken (decimal)
    ARGV[6] leaseTtlMs (integer, 0..86400000)
    ARGV[7] fence.sessionId as given (only echoed in the error details)

  Output:
    { 0, lease... }   renewed: expiresAt = now + ttl; token, generation, claimedAt and owner
                      unchanged. lease... are the reply fields of lease_reply (common.lua).
    { -1, '{"sessionId":…}' }  SessionExecutionLeaseExpired: no record, another incarnation,
                      another token or generation, or the lease is not live (an expired lease
                      cannot be renewed, even if nobody took it). Nothing is written.
]]
-- @include keys
-- @include common
-- @include rows

local ownerId, incarnationId, leaseToken, fencingToken = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local ttl = tonumber(ARGV[6])
local sessionId = ARGV[7]

local now = now_ms()
local lease = lease_read()
if not fence_ok(lease, now, ownerId, incarnationId, leaseToken, fencingToken) then
  return fail(E.SessionExecutionLeaseExpired, { sessionId = sessionId })
end

lease.expiresAt = now + ttl
redis.call('HSET', K.lease, 'expiresAtEpochMs', fmt(lease.expiresAt))
return lease_reply({ 0 }, lease)
