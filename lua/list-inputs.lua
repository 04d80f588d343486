--[[
  list-inputs: listPendingTurnInputs (SPEC 5.2). Read-only.

  KEYS[1] lease    the live generation (claim liveness)
  KEYS[2] inputs
  KEYS[3] states
  KEYS[4] claims
  KEYS[5] next
  KEYS[6] active

  ARGV[1] encoded session id

  Reply:
    { 0, inputId1, record1, stateEntry1, ... }  the pending_active and deferred_next_turn rows that
                                                carry no live claim, ascending enqueueSeq
]]
-- @include lease
-- @include row-reply

local now = now_ms()
local live_gen = live_generation(now)

local ids, seqs = open_rows_by_seq({ K.next })

local claim_gens = {}
local listed = {}
for _, row in ipairs(rows_of(ids, seqs)) do
  local pending = row.state == 'pending_active' or row.state == 'deferred_next_turn'
  local live = live_gen ~= nil and claim_generation(claim_gens, row.claimId) == live_gen
  if pending and not live then listed[#listed + 1] = row end
end
local out = { 0 }
rows_reply(out, listed)
return out
