--[[
  release-lease: releaseSessionExecutionLease (SPEC 4.4), the fenced release.

  KEYS[1] lease
  KEYS[2] next       read for the dispatch verdict
  KEYS[3] accepted   read for the dispatch verdict
  KEYS[4] genactive  read for the dispatch verdict
  KEYS[5] nogen      read for the dispatch verdict (requeue mode: rows past their grace deadline)
  KEYS[6] states     read for the dispatch verdict (whether a nogen member is still one)
  KEYS[7] activity   (optional) (shard) last activity, sent only with sessionRetentionMs: a release (it zeroes expiresAtEpochMs)

  ARGV[1] encoded session id
  ARGV[2] completion.owner.ownerId
  ARGV[3] completion.owner.incarnationId
  ARGV[4] completion.leaseToken
  ARGV[5] completion.fencingToken (decimal)
  ARGV[6] '1' when strandedTurnInputs is 'requeue' (T9 rows count as dispatchable), else '0'

  Reply:
    { 0, released, wake }
      released  1 when the record matched (owner, incarnation, token, generation; expiry is not
                checked) and was cleared, 0 on a mismatch (a silent no-op that never touches a
                newer owner's lease)
      wake      1 when the session is left with no live lease and dispatchable rows
]]
-- @include dispatchable

local now = now_ms()
local lease = lease_read_fence()
local released = lease_release(lease, ARGV[2], ARGV[3], ARGV[4], ARGV[5])
if released and K.activity then redis.call('ZADD', K.activity, 'GT', fmt(now), ARGV[1]) end
local wake = dispatchable_or_due(now, ARGV[6] == '1', released or not lease_live(lease, now))
return { 0, released and 1 or 0, wake and 1 or 0 }
