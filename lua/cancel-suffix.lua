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
  KEYS[10] tomb
  KEYS[11] dispatch   (shard) named by the shared index code; never written here
  KEYS[12] tombs      (shard)

  ARGV[1] encoded session id
  ARGV[2] anchor kind: 'input_id' | 'source_key'
  ARGV[3] anchor value

  Reply:
    { 0, 'anchor_not_found' }                          nothing written
    { 0, 'outcomes', outcome1, inputId1, record1, stateEntry1, claimEntry1, ... }
                                                       the anchor first, then ascending seq; five
                                                       elements per row as in cancel-inputs.lua
  Every row is in exactly one of K.next, K.accepted (both scored by seq), K.active (whose members
  embed the seq) and the tomb list (whose rows' state entries hold it): the walk merges the rows
  of seq >= the anchor's from all four. It reads every pending-active row and every tombstone of
  the session (tombstones are bounded by vacuum) and the next-turn and accepted rows of the
  suffix. Every row is read before the first write.
]]
-- @include input-rules
-- @include lease

local anchor_id = target_id(ARGV[2], ARGV[3])
local anchor = anchor_id and row_get(anchor_id)
if not anchor then return { 0, 'anchor_not_found' } end

local from = tonumber(anchor.seq)
local seqs, ids = {}, {}
local function add(id, seq)
  if not seqs[id] and tonumber(seq) >= from then
    seqs[id] = tonumber(seq)
    ids[#ids + 1] = id
  end
end
for _, index in ipairs({ K.next, K.accepted }) do
  local flat = redis.call('ZRANGE', index, anchor.seq, '+inf', 'BYSCORE', 'WITHSCORES')
  for i = 1, #flat, 2 do add(flat[i], flat[i + 1]) end
end
for _, m in ipairs(redis.call('ZRANGE', K.active, 0, -1)) do
  local seq, _, id = active_member_parts(m)
  if id then add(id, seq) end
end
local tombstones = {}
for _, e in ipairs(redis.call('LRANGE', K.tomb, 0, -1)) do
  local id = string.match(e, '^%d+|(.*)$')
  if id then tombstones[#tombstones + 1] = id end
end
for i = 1, #tombstones, 500 do
  local batch = { unpack(tombstones, i, math.min(i + 499, #tombstones)) }
  local entries = redis.call('HMGET', K.states, unpack(batch))
  for j, id in ipairs(batch) do
    local row = entries[j] and row_parse(id, entries[j])
    if row then add(id, row.seq) end
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
