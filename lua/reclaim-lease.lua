--[[
  reclaim-lease: reclaimSessionExecutionLease (SPEC 4.2): take a lease over early from a holder
  that is provably dead.

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

  ARGV[1]  encoded session id
  ARGV[2]  owner.ownerId (the claimant)
  ARGV[3]  owner.incarnationId
  ARGV[4]  owner.liveness as canonical JSON ({"kind":"opaque"} when omitted), stored as sent
  ARGV[5]  a new random lease token (made by the client)
  ARGV[6]  leaseTtlMs (0..86400000)
  ARGV[7]  '1' when strandedTurnInputs is 'requeue' (T9 on an acquisition), else '0'
  ARGV[8]  observedHolder.sessionId, encoded like ARGV[1]
  ARGV[9]  observedHolder.owner.ownerId
  ARGV[10] observedHolder.owner.incarnationId
  ARGV[11] observedHolder.owner.liveness as canonical JSON, compared byte for byte
  ARGV[12] observedHolder.leaseToken
  ARGV[13] observedHolder.fencingToken (decimal)
  ARGV[14] '1' when the claimant's process judged the observed holder definitely dead
           (isDefinitelyDead in src/core/liveness.ts), else '0'

  Reply:
    { 0, 'acquired', lease...[, requeued] }
                                 the lease was not live, or it was live, matched the observation
                                 exactly and its holder is dead: a fresh acquisition (T9 applies);
                                 requeued, when T9 moved rows, is how many
    { 0, 'busy', lease... }      a live lease that differs from the observation, or whose holder
                                 is not definitely dead; nothing written
    { E.SessionPaused, {sessionId, pausedAtEpochMs} }  the acquisition would be fresh and the
                                 session's dispatch is paused (issue 18); nothing written
]]
-- @include lease-acquire

local now = now_ms()
local lease = lease_read()
if lease_live(lease, now) then
  -- The record is exactly what the claimant observed, liveness included (so the verdict was
  -- reached on the identity that is stored), and that holder is dead.
  local storedLiveness = lease.liveness ~= '' and lease.liveness or '{"kind":"opaque"}'
  local matches = ARGV[8] == ARGV[1] and lease.ownerId == ARGV[9] and lease.incarnationId == ARGV[10]
    and storedLiveness == ARGV[11] and lease.leaseToken == ARGV[12] and lease.fencingText == ARGV[13]
  if not (matches and ARGV[14] == '1') then return lease_reply({ 0, 'busy' }, lease) end
end
-- Issue 18: a paused session starts no new turn (nor a takeover).
local paused = redis.call('HGET', K.lease, 'pausedAtMs')
if paused then return fail(E.SessionPaused, { sessionId = session_raw(), pausedAtEpochMs = tonumber(paused) }) end
lease = lease_acquire_fresh(lease, now, ARGV[2], ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6]), ARGV[7] == '1')
if K.activity then redis.call('ZADD', K.activity, 'GT', fmt(now), ARGV[1]) end
return lease_reply({ 0, 'acquired' }, lease)
