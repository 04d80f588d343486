-- list-inputs: listPendingTurnInputs (SPEC 5.2). Read-only.
--
-- KEYS: the standard per-session block (docs/KEYS.md, lua/include/keys.lua). Reads lease, next,
--       active, inputs, payloads.
-- ARGV[1] encoded session id
--
-- Returns { 0, rowJson1, payload1, rowJson2, payload2, ... }: the pending_active and
-- deferred_next_turn rows that do not carry a live claim (claim liveness per SPEC 3.4, store
-- clock), ascending enqueueSeq (the `next` members merged with the seqs of the `active` members).
-- @include keys
-- @include common
-- @include rows
-- @include input-rules

local now = now_ms()
local live_gen = live_generation(now)

local seqs = {}
for _, m in ipairs(redis.call('ZRANGE', K.next, 0, -1)) do
  seqs[#seqs + 1] = tonumber(m)
end
for _, m in ipairs(redis.call('ZRANGE', K.active, 0, -1)) do
  local s = active_member_seq(m)
  if s then seqs[#seqs + 1] = s end
end
table.sort(seqs)

local out = { 0 }
local last = nil
for _, s in ipairs(seqs) do
  if s ~= last then
    last = s
    local row = row_get(fmt(s))
    if row and (row.state == 'pending_active' or row.state == 'deferred_next_turn')
      and not row_claim_live(row, live_gen) then
      row_reply(row, out)
    end
  end
end
return out
