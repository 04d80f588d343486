-- cancel-suffix: cancelPendingTurnInputSuffix (SPEC 5.5). The cancel rule (SPEC 5.3) applied to the
-- anchor and to every row of the session with enqueueSeq >= the anchor's, in ascending enqueueSeq,
-- whatever its state or ingress. One atomic step.
--
-- KEYS: the standard per-session block (docs/KEYS.md, lua/include/keys.lua). Reads lease, ids,
--       src, seq, inputs, payloads; writes inputs, the state indexes, tomb and the shard tombs index.
-- ARGV[1] encoded session id
-- ARGV[2] anchor kind: 'input_id' | 'source_key'
-- ARGV[3] anchor value
--
-- Returns
--   { 0, 'anchor_not_found' }                                   nothing written
--   { 0, 'outcomes', outcome1, rowJson1, payload1, outcome2, ... }  anchor first, ascending seq
-- outcome is 'cancelled', 'already_cancelled', 'already_completed' or 'already_claimed'.
-- The walk visits every seq number from the anchor's to the `seq` counter; vacuumed gaps are
-- skipped. Every row is read and decoded before the first write.
-- @include keys
-- @include common
-- @include rows
-- @include input-rules

local anchor = target_seq(ARGV[2], ARGV[3])
if not anchor or not row_get(anchor) then
  return { 0, 'anchor_not_found' }
end

local first = tonumber(anchor)
local last = tonumber(redis.call('GET', K.seq) or '0')
local rows = {}
for s = first, last do
  local row = row_get(fmt(s))
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
