--[[
  The fenced release of a session's execution lease (SPEC 4.4).

  Input:
    KEYS: the standard per-session block (docs/KEYS.md, lua/include/keys.lua) of
          completion.sessionId: the 19 session keys then the 5 shard keys, narrowed to those it names. Writes K.lease only;
          reads K.next, K.accepted and K.genactive to report dispatchability.

    ARGV[1] encoded session id (every per-session script)
    ARGV[2] completion.owner.ownerId
    ARGV[3] completion.owner.incarnationId
    ARGV[4] completion.leaseToken
    ARGV[5] completion.fencingToken (decimal)
    ARGV[6] '1' when strandedTurnInputs is 'requeue' (T9 rows count as dispatchable), else '0'

  Output:
    { 0, released, dispatchable }
      released      1 when the record matched (ownerId, incarnationId, token, generation; expiry
                    and liveness are not checked) and was cleared: owner, token and liveness
                    blanked, both times 0, fencingToken kept. 0 on a mismatch, which is a silent
                    no-op that never touches a newer owner's lease.
      dispatchable  1 when, after this step, the session has no live lease and has next-turn
                    input (or, with requeue, rows T9 would move): the client sends a wake-up.
    No domain errors.
]]
-- @include keys
-- @include common
-- @include rows

local ownerId, incarnationId, leaseToken, fencingToken = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local requeue = ARGV[6] == '1'

local now = now_ms()
local released = lease_release(ownerId, incarnationId, leaseToken, fencingToken)
local wake = dispatchable(now, requeue, released)
return { 0, released and 1 or 0, wake and 1 or 0 }
