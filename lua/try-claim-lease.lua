--[[
  try-claim-lease: tryClaimSessionExecutionLease (SPEC 4.1).

  KEYS[1]  lease
  KEYS[2]  states     T9 (a fresh acquisition in requeue mode)
  KEYS[3]  claims     T9
  KEYS[4]  next       T9
  KEYS[5]  active     T9
  KEYS[6]  accepted   T9
  KEYS[7]  genactive  T9
  KEYS[8]  nogen      T9: requeued past its grace deadline, else adopted; emptied
  KEYS[9]  tomb       named by the shared index code; never written here
  KEYS[10] dispatch   (shard) T9
  KEYS[11] tombs      (shard) named by the shared index code; never written here
  KEYS[12] activity   (optional) (shard) last activity, sent only with sessionRetentionMs: a fresh acquisition (re-entry
                      and renewal move expiresAtEpochMs, which idle expiry reads too)

  ARGV[1] encoded session id
  ARGV[2] owner.ownerId
  ARGV[3] owner.incarnationId
  ARGV[4] owner.liveness as canonical JSON ({"kind":"opaque"} when omitted), stored as sent
  ARGV[5] a new random lease token (made by the client), used only by a fresh acquisition
  ARGV[6] leaseTtlMs (0..86400000)
  ARGV[7] '1' when strandedTurnInputs is 'requeue' (T9 on a fresh acquisition), else '0'

  Reply:
    { 0, 'acquired', lease...[, requeued] }  a fresh acquisition (no record, released or expired: generation
                                 + 1, the new token), or re-entry (same incarnation, live lease:
                                 only expiresAt moves, to now + ttl)
    { 0, 'busy', lease... }      a live lease held by anyone else, even another incarnation of
                                 the same ownerId; nothing written
    { E.SessionPaused, {sessionId, pausedAtEpochMs} }  no live lease and the session's dispatch
                                 is paused (issue 18); nothing written
  lease... are the fields of lease_reply (lua/include/lease.lua); requeued, after a fresh
  acquisition whose T9 moved rows, is how many (absent when none).
]]
-- @include lease-acquire

local ownerId, incarnationId = ARGV[2], ARGV[3]
local ttl = tonumber(ARGV[6])
local now = now_ms()
-- Most acquisitions are fresh: they need only whether the lease is live and its generation.
local v = redis.call('HMGET', K.lease, 'leaseToken', 'expiresAtEpochMs', 'fencingToken', 'pausedAtMs')
local lease = nil
if v[3] then lease = { leaseToken = v[1] or '', expiresAt = tonumber(v[2] or '0'), fencingToken = tonumber(v[3]) } end
if lease_live(lease, now) then
  lease = lease_read()
  if not lease_same_incarnation(lease, ownerId, incarnationId) then return lease_reply({ 0, 'busy' }, lease) end
  -- Re-entry: token, generation, claimedAt and the stored owner stay; a ttl of 0 ends the lease.
  lease.expiresAt = now + ttl
  redis.call('HSET', K.lease, 'expiresAtEpochMs', fmt(lease.expiresAt))
  return lease_reply({ 0, 'acquired' }, lease)
end
-- Issue 18: a paused session starts no new turn.
if v[4] then return fail(E.SessionPaused, { sessionId = session_raw(), pausedAtEpochMs = tonumber(v[4]) }) end
lease = lease_acquire_fresh(lease, now, ownerId, incarnationId, ARGV[4], ARGV[5], ttl, ARGV[7] == '1')
if K.activity then redis.call('ZADD', K.activity, 'GT', fmt(now), ARGV[1]) end
return lease_reply({ 0, 'acquired' }, lease)
