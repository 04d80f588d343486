--[[
  sweep-session: one dispatch-sweeper visit of a session found in the shard dispatch index
  (SPEC 11, "No lost wake-ups"). src/dispatch/sweeper.ts sends the wake-up on 'wake'.

  KEYS[1] lease
  KEYS[2] next
  KEYS[3] accepted
  KEYS[4] genactive
  KEYS[5] dispatch   (shard) the only write: the session's removal

  ARGV[1] encoded session id (the member in K.dispatch)
  ARGV[2] '1' when strandedTurnInputs is 'requeue' (rows T9 would move count), else '0'

  Reply:
    { 0, verdict }
      'removed'  no deferred_next_turn row (and, in requeue mode, no accepted or genactive row):
                 the session leaves K.dispatch. Every script that later makes such a row adds it
                 back in the same step (row-index.lua).
      'leased'   kept: such rows exist but a lease is live; its release signals, or the lease
                 expires and a later sweep says 'wake'
      'wake'     kept: dispatchable; the caller sends a wake-up
]]
-- @include dispatchable

local requeue = ARGV[2] == '1'
if not has_dispatchable_rows(requeue) then
  redis.call('ZREM', K.dispatch, ARGV[1])
  return { 0, 'removed' }
end
if live_generation(now_ms()) == nil then return { 0, 'wake' } end
return { 0, 'leased' }
