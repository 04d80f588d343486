-- cancel-inputs: cancelPendingTurnInputs / cancelPendingTurnInput (SPEC 5.3, 5.4; T11, T12).
-- One atomic step for the whole list; targets are applied in the given order, so a repeated
-- target sees the effect of the earlier one.
--
-- KEYS: the per-session block narrowed to what this script names (docs/KEYS.md). Reads lease,
--       src, inputs; writes inputs, the state indexes (active / genactive / next), byseq, tomb,
--       claims and the shard tombs index.
-- ARGV[1]           encoded session id
-- ARGV[2k], [2k+1]  target k (k = 1..n): kind ('input_id' | 'source_key'), value
--
-- Returns { 0, outcome1, inputId1, value1, outcome2, ... }, three elements per target in target
-- order. outcome is 'not_found' (inputId and value are ''), 'cancelled', 'already_cancelled',
-- 'already_completed' or 'already_claimed'; value is the stored row (lua/include/rows.lua) as this
-- target left it (the client derives the claim diagnostics from its claim fields). No domain
-- errors.
-- Every row is read and decoded before the first write.
-- @include keys
-- @include common
-- @include rows
-- @include input-rules

local n = math.floor((#ARGV - 1) / 2)
local cache = {}
local ids = {}
for i = 1, n do
  local id = target_id(ARGV[2 * i], ARGV[2 * i + 1])
  if id and row_cached(cache, id) then ids[i] = id else ids[i] = false end
end

local now = now_ms()
local live_gen = live_generation(now)

local out = { 0 }
for i = 1, n do
  local id = ids[i]
  if not id then
    out[#out + 1] = 'not_found'
    out[#out + 1] = ''
    out[#out + 1] = ''
  else
    local row = cache[id]
    out[#out + 1] = cancel_rule(row, live_gen, now)
    row_reply(row, out)
  end
end
return out
