--[[
  retry-failed: retryFailedTurnInputs (SPEC 3.8). Each listed failed row goes back to
  deferred_next_turn at its original position (enqueueSeq kept, ingress next_turn, claim counter
  kept) and its attempt count is deleted; ids apply in order, in one atomic step.

  KEYS[1]  lease      read for the dispatch verdict
  KEYS[2]  inputs     the records, for the reply
  KEYS[3]  states
  KEYS[4]  failures   the retried rows' counts are deleted
  KEYS[5]  next
  KEYS[6]  active     named by the shared index code; never written here
  KEYS[7]  accepted   read for the dispatch verdict
  KEYS[8]  genactive  read for the dispatch verdict
  KEYS[9]  tomb       named by the shared index code; never written here (the old entry stays;
                      vacuum skips it, the row's terminalAtMs no longer being the entry's)
  KEYS[10] dispatch   (shard) the session, as it now has next-turn input
  KEYS[11] tombs      (shard) named by the shared index code; never written here
  KEYS[12] claims     named by the shared row code; never written here (a failed row has no claim)

  ARGV[1]   encoded session id
  ARGV[2]   '1' when strandedTurnInputs is 'requeue', else '0' (for the dispatch verdict)
  ARGV[3..] the input ids

  Reply:
    { 0, wake, outcome1, inputId1, record1, stateEntry1, ... }
      wake is 1 when the session is left dispatchable (SPEC 11); then four elements per id, in
      order: 'retried' | 'not_failed' | 'not_found', and the row as the call left it ('' x3 for
      not_found). Every row is read before the first write.
]]
-- @include row-index
-- @include row-reply
-- @include dispatchable

local cache = {}
local rows = {}
for i = 3, #ARGV do rows[#rows + 1] = row_cached(cache, ARGV[i]) end

local now = now_ms()
local outcomes = {}
for i, row in ipairs(rows) do
  if not row then
    outcomes[i] = 'not_found'
  elseif row.state == 'failed' then
    row.terminalAt = ''
    row.failed = false
    rows_move({ row }, 'deferred_next_turn', now)
    redis.call('HDEL', K.failures, row.id)
    outcomes[i] = 'retried'
  else
    outcomes[i] = 'not_failed'
  end
end

local out = { 0, dispatchable(now, ARGV[2] == '1') and 1 or 0 }
for i, row in ipairs(rows) do
  out[#out + 1] = outcomes[i]
  if row then
    row_reply(out, row)
  else
    for _ = 1, 3 do out[#out + 1] = '' end
  end
end
return out
