--[[
  Take over a session's execution lease early from a holder that is provably dead (SPEC 4.2).

  Input:
    KEYS: the standard per-session block (docs/KEYS.md, lua/include/keys.lua): the 19 session
          keys then the 5 shard keys. Reads K.lease; an acquisition writes K.lease and, for T9,
          K.inputs, K.next, K.active, K.accepted, K.genactive and K.dispatch.

    ARGV[1]  encoded session id (every per-session script)
    ARGV[2]  owner.ownerId (the claimant)
    ARGV[3]  owner.incarnationId
    ARGV[4]  owner.liveness as canonical JSON ({"kind":"opaque"} when omitted), stored verbatim
    ARGV[5]  a new random lease token (>= 128 bits, made by the client)
    ARGV[6]  leaseTtlMs (integer, 0..86400000)
    ARGV[7]  '1' when strandedTurnInputs is 'requeue' (run T9 on an acquisition), else '0'
    ARGV[8]  observedHolder.sessionId, encoded like ARGV[1] (compared with ARGV[1])
    ARGV[9]  observedHolder.owner.ownerId
    ARGV[10] observedHolder.owner.incarnationId
    ARGV[11] observedHolder.owner.liveness as canonical JSON ({"kind":"opaque"} when omitted),
             compared byte for byte with the stored liveness JSON
    ARGV[12] observedHolder.leaseToken
    ARGV[13] observedHolder.fencingToken (decimal)
    ARGV[14] '1' when the claimant's process judged the observed holder definitely dead
             (isDefinitelyDead in src/core/liveness.ts), else '0'

  Output:
    '<fencingToken>:<claimedAt>'  the lease was not live (fresh acquisition whatever the
                                  observation says), or it was live, matched the observation
                                  exactly and the holder is dead: takeover = fresh acquisition,
                                  generation = holder's + 1, T9 applies. One string, as from
                                  try-claim-lease.lua: the rest of the lease is ARGV[2..6] as sent
    { 0, 'busy', lease... }      a live lease that differs from the observation, or whose holder
                                  is not definitely dead; nothing is written
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
local observedSession = ARGV[8]
local observedOwnerId, observedIncarnationId, observedLiveness = ARGV[9], ARGV[10], ARGV[11]
local observedToken, observedGen = ARGV[12], tonumber(ARGV[13])
local holderDead = ARGV[14] == '1'

local now = now_ms()
local lease = lease_read()

if lease_live(lease, now) then
  -- (a) the record is exactly what the claimant observed, liveness included, so the deadness
  -- verdict was computed from the identity that is actually stored; (b) that holder is dead.
  local storedLiveness = lease.liveness ~= '' and lease.liveness or '{"kind":"opaque"}'
  local matches = observedSession == ENC_SESSION and lease.ownerId == observedOwnerId
    and lease.incarnationId == observedIncarnationId and storedLiveness == observedLiveness
    and lease.leaseToken == observedToken and lease.fencingToken == observedGen
  if not (matches and holderDead) then
    return lease_outcome('busy', lease)
  end
end

return lease_acquire_fresh(lease and lease.fencingText, now, ownerId, incarnationId, livenessJson, candidateToken, ttl,
  requeue)
