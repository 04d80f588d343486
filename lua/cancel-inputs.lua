-- cancel-inputs: cancelPendingTurnInputs / cancelPendingTurnInput (SPEC 5.3, 5.4; T11, T12).
-- One atomic step for the whole list; targets are applied in the given order, so a repeated
-- target sees the effect of the earlier one.
--
-- KEYS: the standard per-session block (docs/KEYS.md, lua/include/keys.lua). Reads lease, ids,
--       src, inputs, payloads; writes inputs, the state indexes (active / genactive / next),
--       tomb and the shard tombs index.
-- ARGV[1]           encoded session id
-- ARGV[2k], [2k+1]  target k (k = 1..n): kind ('input_id' | 'source_key'), value
--
-- Returns { 0, outcome1, rowJson1, payload1, outcome2, ... }, three elements per target in target
-- order. outcome is 'not_found' (rowJson and payload are ''), 'cancelled', 'already_cancelled',
-- 'already_completed' or 'already_claimed'; rowJson is the row as this target left it (the client
-- derives the claim diagnostics from its claim fields). No domain errors.
-- Every row is read and decoded before the first write.
-- @include keys
-- @include common
-- @include rows
-- @include input-rules

local n = math.floor((#ARGV - 1) / 2)
local cache = {}
local seqs = {}
for i = 1, n do
  local seq = target_seq(ARGV[2 * i], ARGV[2 * i + 1])
  if seq and row_cached(cache, seq) then seqs[i] = seq else seqs[i] = false end
end

local now = now_ms()
local live_gen = live_generation(now)

local out = { 0 }
for i = 1, n do
  local seq = seqs[i]
  if not seq then
    out[#out + 1] = 'not_found'
    out[#out + 1] = ''
    out[#out + 1] = ''
  else
    local row = cache[seq]
    out[#out + 1] = cancel_rule(row, live_gen, now)
    row_reply(row, out)
  end
end
return out
