--[[
  abandon-claims: abandonTurnInputClaim(s) for one session (SPEC 5.7; transitions T6, T7), every
  claim of the session in the call applied in one atomic step. No fence and no expiry: the claim
  id and token are the whole authority, and a stale claim matches no row (idempotent).

  KEYS[1]  lease      read for the dispatch verdict and the interrupt mark (SPEC 3.9)
  KEYS[2]  states
  KEYS[3]  claims
  KEYS[4]  stamps     whether an accepted row's turn is stamped (T6)
  KEYS[5]  next
  KEYS[6]  active
  KEYS[7]  accepted
  KEYS[8]  genactive
  KEYS[9]  nogen      read for the dispatch verdict (requeue mode: rows past their grace deadline)
  KEYS[10] tomb       a row that becomes failed (failure report only), or a rollback cancels
  KEYS[11] dispatch   (shard)
  KEYS[12] tombs      (shard) a row that becomes failed (failure report only), or a rollback cancels
  KEYS[13] failures   the attempt counts (failure report only)

  ARGV[1] encoded session id
  ARGV[2] '1' when strandedTurnInputs is 'requeue', else '0' (for the dispatch verdict)
  ARGV[3] the claims, as a cjson array of { claimId, token, active (boolean), inputIds }
  ARGV[4] failure report (SPEC 3.8): maxAttempts (decimal), or '' for a plain abandon
  ARGV[5] failure report: the bounded error text as a JSON string literal ('' for none)

  Reply:
    { 0, wake }  wake is 1 when the session is left dispatchable (SPEC 11), else 0

  A listed row changes only while it carries the claim and the claim's token matches:
    accepted           -> pending_active when the claim is an active-turn one and the row's turn
                          has no stamp, else deferred_next_turn (T6);
    deferred_next_turn -> unchanged (T7);
  and the row loses the claim, its counter kept. Every row is read before the first write.

  With a failure report, each such row first counts an attempt (K.failures[id] =
  {"attempts":n+1,"lastError":...}, and the 'f' flag in its state entry); when the call abandons exactly
  one row and its attempts reach maxAttempts, that row becomes failed instead (a tombstone: claim
  cleared, terminalAtMs = now, its tomb entry appended). A run of several inputs never fails one:
  claims after it take those inputs one at a time (claim-inputs.lua), which isolates the culprit.

  A claim of the generation the lease's interrupt mark names (SPEC 3.9) settles per the mark
  instead, and counts no attempt (the interrupt is not the input's fault): 'interrupt' sends
  accepted rows to the next turn too (the interrupted turn is over), 'rollback' cancels every
  listed row it carries.
]]
-- @include row-index
-- @include dispatchable
-- @include interrupt-settle

local requeue = ARGV[2] == '1'
local claims = cjson.decode(ARGV[3])
local mark = interrupt_mark_read()
local cache = {}
local work = {}
for _, c in ipairs(claims) do
  local claim = claim_get(c.claimId)
  if claim and claim.token == c.token then
    local interrupted = mark and claim.gen == mark.gen and mark.policy or nil
    for _, id in ipairs(c.inputIds) do
      local row = row_cached(cache, id)
      if row and row.claimId == c.claimId then
        work[#work + 1] = { row = row, active = c.active, interrupted = interrupted }
      end
    end
  end
end

-- A row listed twice is abandoned once.
local distinct, seen = {}, {}
local counted = {} -- the rows a failure report counts: not those of an interrupted generation
for _, w in ipairs(work) do
  if not seen[w.row] then
    seen[w.row] = true
    distinct[#distinct + 1] = w
    if not w.interrupted then counted[#counted + 1] = w end
  end
end

local max_attempts = tonumber(ARGV[4])
local failing = {}
if max_attempts and #counted > 0 then
  local ids = {}
  for i, w in ipairs(counted) do ids[i] = w.row.id end
  local old = redis.call('HMGET', K.failures, unpack(ids))
  local entries = {}
  for i, w in ipairs(counted) do
    local attempts = failure_attempts(old[i]) + 1
    entries[#entries + 1] = w.row.id
    entries[#entries + 1] = '{"attempts":' .. fmt(attempts) .. ',"lastError":' .. ARGV[5] .. '}'
    if #counted == 1 and attempts >= max_attempts then failing[w.row] = true end
    w.row.failed = true -- written with the row's move below
  end
  call_chunked('HSET', K.failures, entries)
end

local now = now_ms()
local to_active, to_next, to_failed, to_cancel = {}, {}, {}, {}
for _, w in ipairs(distinct) do
  local row = w.row
  if row.claimId ~= '' then
    row_clear_claim(row)
    if w.interrupted then
      interrupt_settle(row, w.interrupted, to_next, to_cancel)
    elseif failing[row] then
      to_failed[#to_failed + 1] = row -- SPEC 3.8: out of attempts
    elseif row.state == 'accepted' then
      local turn = ingress_turn(row.ingress)
      if w.active and row.ingress ~= 'n' and redis.call('HEXISTS', K.stamps, unpct(turn)) == 0 then
        to_active[#to_active + 1] = row -- T6, turn still open
      else
        to_next[#to_next + 1] = row -- T6
      end
    else
      row_save(row) -- T7
    end
  end
end
rows_move(to_active, 'pending_active', now)
rows_move(to_next, 'deferred_next_turn', now)
rows_move(to_failed, 'failed', now)
rows_move(to_cancel, 'cancelled', now)

if dispatchable_or_due(now, requeue) then return { 0, 1 } end
return { 0, 0 }
