-- list-inputs: listPendingTurnInputs (SPEC 5.2). Read-only.
--
-- KEYS: the per-session block narrowed to what this script names (docs/KEYS.md). Reads lease,
--       next, active, inputs.
-- ARGV[1] encoded session id
--
-- Returns { 0, inputId1, value1, inputId2, value2, ... }: the pending_active and
-- deferred_next_turn rows that do not carry a live claim (claim liveness per SPEC 3.4, store
-- clock), ascending enqueueSeq (the `next` members merged with the seqs of the `active` members).
-- @include keys
-- @include common
-- @include rows
-- @include input-rules

local now = now_ms()
local live_gen = live_generation(now)

-- next members carry their seq as score; active members embed it.
local acc = { ids = {}, seq = {} }
ids_add_scored(acc, redis.call('ZRANGE', K.next, 0, -1, 'WITHSCORES'))
ids_add_active(acc, redis.call('ZRANGE', K.active, 0, -1))
local order = ids_in_seq_order(acc)

local out = { 0 }
for _, id in ipairs(order) do
  local row = row_get(id)
  if row and (row.state == 'pending_active' or row.state == 'deferred_next_turn')
    and not row_claim_live(row, live_gen) then
    row_reply(row, out)
  end
end
return out
