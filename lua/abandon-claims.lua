--[[
  abandon-claims: abandonTurnInputClaim(s) for one session (SPEC 5.7; transitions T6, T7), every
  claim of the session in the call applied in one atomic step. No fence and no expiry: the claim
  id and token are the whole authority, and a stale claim matches no row (idempotent).

  KEYS[1]  lease      read for the dispatch verdict
  KEYS[2]  states
  KEYS[3]  claims
  KEYS[4]  stamps     whether an accepted row's turn is stamped (T6)
  KEYS[5]  next
  KEYS[6]  active
  KEYS[7]  accepted
  KEYS[8]  genactive
  KEYS[9]  nogen      read for the dispatch verdict (requeue mode: rows past their grace deadline)
  KEYS[10] tomb       named by the shared index code; never written here
  KEYS[11] dispatch   (shard)
  KEYS[12] tombs      (shard) named by the shared index code; never written here

  ARGV[1] encoded session id
  ARGV[2] '1' when strandedTurnInputs is 'requeue', else '0' (for the dispatch verdict)
  ARGV[3] the claims, as a cjson array of { claimId, token, active (boolean), inputIds }

  Reply:
    { 0, wake }  wake is 1 when the session is left dispatchable (SPEC 11), else 0

  A listed row changes only while it carries the claim and the claim's token matches:
    accepted           -> pending_active when the claim is an active-turn one and the row's turn
                          has no stamp, else deferred_next_turn (T6);
    deferred_next_turn -> unchanged (T7);
  and the row loses the claim, its counter kept. Every row is read before the first write.
]]
-- @include row-index
-- @include dispatchable

local requeue = ARGV[2] == '1'
local claims = cjson.decode(ARGV[3])
local cache = {}
local work = {}
for _, c in ipairs(claims) do
  local claim = claim_get(c.claimId)
  if claim and claim.token == c.token then
    for _, id in ipairs(c.inputIds) do
      local row = row_cached(cache, id)
      if row and row.claimId == c.claimId then work[#work + 1] = { row = row, active = c.active } end
    end
  end
end

local now = now_ms()
local to_active, to_next = {}, {}
for _, w in ipairs(work) do
  local row = w.row
  if row.claimId ~= '' then -- a row listed twice is abandoned once
    row_clear_claim(row)
    if row.state == 'accepted' then
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

if dispatchable_or_due(now, requeue) then return { 0, 1 } end
return { 0, 0 }
