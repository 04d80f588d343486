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
local order = {}
local seq_of = {}
local next_rows = redis.call('ZRANGE', K.next, 0, -1, 'WITHSCORES')
for i = 1, #next_rows, 2 do
  local id = next_rows[i]
  if not seq_of[id] then
    seq_of[id] = tonumber(next_rows[i + 1])
    order[#order + 1] = id
  end
end
for _, m in ipairs(redis.call('ZRANGE', K.active, 0, -1)) do
  local seq, id = string.match(m, '^[^:]*:(%d+):[ab]:(.*)$')
  if id and not seq_of[id] then
    seq_of[id] = tonumber(seq)
    order[#order + 1] = id
  end
end
table.sort(order, function(a, b) return seq_of[a] < seq_of[b] end)

local out = { 0 }
for _, id in ipairs(order) do
  local row = row_get(id)
  if row and (row.state == 'pending_active' or row.state == 'deferred_next_turn')
    and not row_claim_live(row, live_gen) then
    row_reply(row, out)
  end
end
return out
