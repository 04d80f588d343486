--[[
  cancel-inputs: cancelPendingTurnInputs and cancelPendingTurnInput (SPEC 5.3, 5.4; transitions
  T11, T12). The targets are applied in order in one atomic step, so a repeated target sees the
  effect of the earlier one.

  KEYS[1]  lease      the live generation (claim liveness)
  KEYS[2]  inputs     the records, for the reply
  KEYS[3]  states
  KEYS[4]  src        source-key targets
  KEYS[5]  claims
  KEYS[6]  next
  KEYS[7]  active
  KEYS[8]  accepted
  KEYS[9]  genactive
  KEYS[10] tomb
  KEYS[11] dispatch   (shard) named by the shared index code; never written here
  KEYS[12] tombs      (shard)

  ARGV[1]          encoded session id
  ARGV[2k], [2k+1] target k (k = 1..n): kind ('input_id' | 'source_key'), value

  Reply:
    { 0, outcome1, inputId1, record1, stateEntry1, claimEntry1, outcome2, ... }
      five elements per target, in target order: the outcome ('not_found', 'cancelled',
      'already_cancelled', 'already_completed', 'already_claimed'), then the row as the target
      left it and the entry of the claim it carries ('' when none; all four '' for not_found).
  Every row is read before the first write.
]]
-- @include input-rules
-- @include lease

local n = (#ARGV - 1) / 2
local cache = {}
local rows = {}
for i = 1, n do
  local id = target_id(ARGV[2 * i], ARGV[2 * i + 1])
  rows[i] = id and row_cached(cache, id) or false
end

local now = now_ms()
local live_gen = live_generation(now)
local claim_gens = {}
local out = { 0 }
for i = 1, n do
  local row = rows[i]
  if row then
    cancel_reply(out, cancel_rule(row, live_gen, claim_gens, now), row)
  else
    cancel_reply(out, 'not_found', nil)
  end
end
return out
