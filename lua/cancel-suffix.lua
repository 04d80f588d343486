--[[
  cancel-suffix: cancelPendingTurnInputSuffix (SPEC 5.5). The cancel rule (SPEC 5.3) applied to
  the anchor and to every row of the session with a higher enqueueSeq, in ascending enqueueSeq,
  whatever its state or ingress, in one atomic step.

  KEYS[1]  lease
  KEYS[2]  inputs
  KEYS[3]  states
  KEYS[4]  src
  KEYS[5]  claims
  KEYS[6]  next
  KEYS[7]  active
  KEYS[8]  accepted
  KEYS[9]  genactive
  KEYS[10] byseq
  KEYS[11] tomb
  KEYS[12] dispatch   (shard) named by the shared index code; never written here
  KEYS[13] tombs      (shard)

  ARGV[1] encoded session id
  ARGV[2] anchor kind: 'input_id' | 'source_key'
  ARGV[3] anchor value

  Reply:
    { 0, 'anchor_not_found' }                          nothing written
    { 0, 'outcomes', outcome1, inputId1, record1, stateEntry1, claimEntry1, ... }
                                                       the anchor first, then ascending seq; five
                                                       elements per row as in cancel-inputs.lua
  Every row is in exactly one of K.next and K.byseq, both scored by seq: the walk merges the two
  ranges from the anchor's seq (O(log N + suffix length)). Every row is read before the first
  write.
]]
-- @include input-rules
-- @include lease

local anchor_id = target_id(ARGV[2], ARGV[3])
local anchor = anchor_id and row_get(anchor_id)
if not anchor then return { 0, 'anchor_not_found' } end

local seqs, ids = {}, {}
for _, index in ipairs({ K.next, K.byseq }) do
  local flat = redis.call('ZRANGE', index, anchor.seq, '+inf', 'BYSCORE', 'WITHSCORES')
  for i = 1, #flat, 2 do
    local id = flat[i]
    if not seqs[id] then
      seqs[id] = tonumber(flat[i + 1])
      ids[#ids + 1] = id
    end
  end
end
table.sort(ids, function(a, b) return seqs[a] < seqs[b] end)
local rows = {}
for _, id in ipairs(ids) do rows[#rows + 1] = row_get(id) end

local now = now_ms()
local live_gen = live_generation(now)
local claim_gens = {}
local out = { 0, 'outcomes' }
for _, row in ipairs(rows) do cancel_reply(out, cancel_rule(row, live_gen, claim_gens, now), row) end
return out
