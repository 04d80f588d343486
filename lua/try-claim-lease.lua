--[[
  Try to take (or re-enter) a session's execution lease (SPEC 4.1).

  Input:
    KEYS: the standard per-session block (docs/KEYS.md, lua/include/keys.lua): the 19 session
          keys then the 5 shard keys. Reads K.lease; a fresh acquisition writes K.lease and, for
          T9, K.inputs, K.next, K.active, K.accepted, K.genactive and K.dispatch.

    ARGV[1] encoded session id (every per-session script)
    ARGV[2] owner.ownerId
    ARGV[3] owner.incarnationId
    ARGV[4] owner.liveness as canonical JSON ({"kind":"opaque"} when it was omitted); stored
            verbatim and returned verbatim
    ARGV[5] a new random lease token (>= 128 bits, made by the client), used only on a fresh
            acquisition
    ARGV[6] leaseTtlMs (integer, 0..86400000)
    ARGV[7] '1' when strandedTurnInputs is 'requeue' (run T9 on a fresh acquisition), else '0'

  Output:
    { 0, 'acquired', lease... }  re-entry (same incarnation, live lease: only expiresAt moves to
                                  now + ttl, which may shorten it)
    '<fencingToken>:<claimedAt>'  a fresh acquisition (no record, released or expired: generation
                                  + 1, the new token), as one string (lease_acquire_fresh in
                                  lua/include/lease.lua): expiresAt is claimedAt + ARGV[6], the
                                  rest of the lease is ARGV[2..5] as sent
    { 0, 'busy', lease... }      a live lease held by anyone else, even another incarnation of
                                  the same ownerId; nothing is written
    lease... are the lease's reply fields (lease_reply in lua/include/common.lua).
    No domain errors.
]]
-- @include keys
-- @include common
-- @include rows
-- @include lease

local ownerId, incarnationId, livenessJson = ARGV[2], ARGV[3], ARGV[4]
local candidateToken = ARGV[5]
local ttl = tonumber(ARGV[6])
local requeue = ARGV[7] == '1'

local now = now_ms()
-- A fresh acquisition needs three fields: the two that say whether the lease is live, and the
-- generation. The whole record is read only for a live lease, whose busy or re-entry reply
-- carries it: each field read costs Redis about 1-2k instructions, and most acquisitions are fresh.
local head = redis.call('HMGET', K.lease, 'leaseToken', 'expiresAtEpochMs', 'fencingToken')
if lease_fields_live(head[1], tonumber(head[2] or '0'), now) then
  local lease = lease_read()
  if not lease_same_incarnation(lease, ownerId, incarnationId) then
    return lease_outcome('busy', lease)
  end
  -- Re-entry: keep token, generation, claimedAt and the stored owner; a ttl of 0 ends the lease.
  lease.expiresAt = now + ttl
  redis.call('HSET', K.lease, 'expiresAtEpochMs', fmt(lease.expiresAt))
  return lease_outcome('acquired', lease)
end

return lease_acquire_fresh(head[3] or nil, now, ownerId, incarnationId, livenessJson, candidateToken,
  ttl, requeue)
