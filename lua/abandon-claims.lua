-- abandon-claims: abandonTurnInputClaim(s) for one session (SPEC 5.7; T6, T7). Every claim of the
-- session given in one call is applied in one atomic step. No fence, no expiry: the claim id and
-- token are the whole authority, and a stale claim matches no row (idempotent, never rejects).
--
-- KEYS: the per-session block narrowed to what this script names (docs/KEYS.md). Reads lease,
--       inputs, stamps, next / accepted / genactive; writes inputs, the state indexes, byseq,
--       claims and the shard dispatch index.
-- ARGV[1] encoded session id
-- ARGV[2] '1' when strandedTurnInputs is 'requeue', else '0' (for the dispatchable test)
-- ARGV[3] number of claims c
-- then, per claim: claimId, claim token (the claim's leaseToken), mode kind ('active_turn' |
--         'next_turn'), n, then the n input ids listed in claim.inputs
--
-- Returns { 0, wake } where wake is 1 when the session is left dispatchable (SPEC 11: no live lease
-- and next-turn input, or in requeue mode rows T9 would requeue), else 0.
--
-- A listed row is changed only if it still carries both the claim id and the token:
--   accepted           -> pending_active when the mode is active_turn and the row's turn has no
--                         stamp, else deferred_next_turn with the ingress rewritten (T6);
--   deferred_next_turn -> unchanged (T7);
-- and the claim is cleared with the counter kept. Every row is decoded before the first write.
-- @include keys
-- @include common
-- @include rows
-- @include input-rules

local requeue = ARGV[2] == '1'
local claims = tonumber(ARGV[3])
local cache = {}
local work = {}
local pos = 4
for _ = 1, claims do
  local claim_id, token, kind, n = ARGV[pos], ARGV[pos + 1], ARGV[pos + 2], tonumber(ARGV[pos + 3])
  pos = pos + 4
  for i = 0, n - 1 do
    local id = ARGV[pos + i]
    if row_cached(cache, id) then
      work[#work + 1] = { id = id, claim_id = claim_id, token = token, active = kind == 'active_turn' }
    end
  end
  pos = pos + n
end

local now = now_ms()
for _, w in ipairs(work) do
  local row = cache[w.id]
  if row.claimId == w.claim_id and row.claimToken == w.token then
    row_clear_claim(row)
    if row.state == 'accepted' then
      if w.active and row.ingress.scope == 'active_turn'
        and redis.call('HEXISTS', K.stamps, row.ingress.turnId) == 0 then
        row_set_state(row, 'pending_active', now) -- T6, turn still open
      else
        row_set_state(row, 'deferred_next_turn', now) -- T6, ingress rewritten
      end
    else
      row_put(row) -- T7 (deferred_next_turn keeps its state and index)
    end
  end
end

if dispatchable(now, requeue) then return { 0, 1 } end
return { 0, 0 }
