--[[
  One dispatch-sweeper visit of one session found in the shard dispatch index (SPEC 11,
  "No lost wake-ups"). The sweeper (src/dispatch/sweeper.ts) runs this for every member of every
  shard `dispatch` zset; the TypeScript side sends the wake-up when the verdict is 'wake'.

  Input:
    KEYS: the per-session block narrowed to what this script names (docs/KEYS.md). Reads
          K.lease, K.next, K.accepted and K.genactive; the only writes are the ZREM of the session
          from the shard K.dispatch and, with it, the HDEL of K.lease's dispatchIndexed mark.

    ARGV[1] encoded session id (every per-session script; the member in K.dispatch)
    ARGV[2] '1' when strandedTurnInputs is 'requeue' (rows T9 would move count), else '0'

  Output:
    { 0, verdict }
      'removed'  the session has no deferred_next_turn row and, in requeue mode, no accepted or
                 genactive row either: it is removed from K.dispatch. Every script that later
                 creates such a row adds it back in the same atomic step (lua/include/rows.lua).
      'leased'   kept: such rows exist but a lease is live. Its holder's release (or commit with
                 release) signals, or the lease expires and a later sweep says 'wake'.
      'wake'     kept: the session is dispatchable (no live lease, and such rows exist). The
                 caller sends a wake-up; the session stays indexed until a sweep finds it empty.
    No domain errors.
]]
-- @include keys
-- @include common
-- @include rows

local requeue = ARGV[2] == '1'
local now = now_ms()

if not has_dispatchable_rows(requeue) then
  redis.call('ZREM', K.dispatch, ENC_SESSION)
  -- The lease hash's dispatchIndexed mark (enqueue-input.lua) goes in the same step.
  redis.call('HDEL', K.lease, 'dispatchIndexed')
  return { 0, 'removed' }
end
-- It has such rows, so it is dispatchable exactly when no lease is live.
if live_generation(now) == nil then
  return { 0, 'wake' }
end
return { 0, 'leased' }
