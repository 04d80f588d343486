-- cancel-suffix: cancelPendingTurnInputSuffix (SPEC 5.5). The cancel rule (SPEC 5.3) applied to the
-- anchor and to every row of the session with enqueueSeq >= the anchor's, in ascending enqueueSeq,
-- whatever its state or ingress. One atomic step.
--
-- KEYS: the per-session block narrowed to what this script names (docs/KEYS.md). Reads lease,
--       src, inputs, next, byseq; writes inputs, the state indexes, byseq, tomb and the shard
--       tombs index.
-- ARGV[1] encoded session id
-- ARGV[2] anchor kind: 'input_id' | 'source_key'
-- ARGV[3] anchor value
--
-- Returns
--   { 0, 'anchor_not_found' }                                   nothing written
--   { 0, 'outcomes', outcome1, inputId1, value1, outcome2, ... }  anchor first, ascending seq
-- outcome is 'cancelled', 'already_cancelled', 'already_completed' or 'already_claimed'.
-- The walk reads K.next and K.byseq from the anchor's seq on (O(log N + suffix length)). Every
-- row is read and decoded before the first write.
-- @include keys
-- @include common
-- @include rows
-- @include input-rules

local anchor_id = target_id(ARGV[2], ARGV[3])
local anchor = anchor_id and row_get(anchor_id)
if not anchor then
  return { 0, 'anchor_not_found' }
end

-- Every row is in exactly one of K.next and K.byseq, both scored by seq: merge the two ranges.
local from = fmt(anchor.seq)
local acc = { ids = {}, seq = {} }
ids_add_scored(acc, redis.call('ZRANGEBYSCORE', K.next, from, '+inf', 'WITHSCORES'))
ids_add_scored(acc, redis.call('ZRANGEBYSCORE', K.byseq, from, '+inf', 'WITHSCORES'))
local ids = ids_in_seq_order(acc)
local rows = {}
for _, id in ipairs(ids) do
  local row = row_get(id)
  if row then rows[#rows + 1] = row end
end

local now = now_ms()
local live_gen = live_generation(now)

local out = { 0, 'outcomes' }
for _, row in ipairs(rows) do
  out[#out + 1] = cancel_rule(row, live_gen, now)
  row_reply(row, out)
end
return out
