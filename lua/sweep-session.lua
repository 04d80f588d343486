--[[
  sweep-session: one dispatch-sweeper visit of a session found in the shard dispatch index
  (SPEC 11, "No lost wake-ups"). src/dispatch/sweeper.ts sends the wake-up on 'wake'.

  KEYS[1] lease
  KEYS[2] states     read: whether a K.nogen member is still pending_active without a generation
  KEYS[3] next
  KEYS[4] accepted
  KEYS[5] genactive
  KEYS[6] nogen      requeue mode: members whose row moved on are removed
  KEYS[7] dispatch   (shard) the session's removal

  ARGV[1] encoded session id (the member in K.dispatch)
  ARGV[2] '1' when strandedTurnInputs is 'requeue' (rows T9 would move count), else '0'

  Reply:
    { 0, verdict }
      'removed'  no deferred_next_turn row (and, in requeue mode, no accepted, genactive or nogen
                 row): the session leaves K.dispatch. Every script that later makes such a row
                 adds it back in the same step.
      'leased'   kept: such rows exist but a lease is live; its release signals, or the lease
                 expires and a later sweep says 'wake'
      'waiting'  kept (requeue mode): only active input enqueued while no lease was live, none
                 past its grace deadline yet; a later sweep says 'wake' once one is
      'wake'     kept: dispatchable; the caller sends a wake-up
]]
-- @include dispatchable

local requeue = ARGV[2] == '1'
local now = now_ms()
if has_dispatchable_rows(requeue) then
  if live_generation(now) == nil then return { 0, 'wake' } end
  return { 0, 'leased' }
end
if requeue and redis.call('EXISTS', K.nogen) == 1 then
  if live_generation(now) ~= nil then return { 0, 'leased' } end
  if nogen_due(now, true) then return { 0, 'wake' } end
  if redis.call('EXISTS', K.nogen) == 1 then return { 0, 'waiting' } end
end
redis.call('ZREM', K.dispatch, ARGV[1])
return { 0, 'removed' }
