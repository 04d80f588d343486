-- Shared: the stored form of input rows and claims (docs/KEYS.md, "Input rows").
--
-- A row is two things:
--   K.inputs[id]  the record, JSON written once at enqueue and never read by Lua: seq, at,
--                 enqueuedAs, the original ingress, sourceKey/inputHash/enqueueGen when set, and
--                 the payload as `input`. Clients decode it; scripts only copy it into replies.
--   K.states[id]  the row's state entry, positional text that scripts parse and rewrite:
--                   <state>|<seq>|<counter>|<claimId>|<terminalAtMs>|<ingress>|<flags>|<sourceKey>
--                 state    in words (pending_active, deferred_next_turn, accepted, cancelled,
--                          completed, failed)
--                 counter  the row's claim counter (claimFencingToken), +1 per claim
--                 claimId  the claim the row carries, '' when none
--                 terminalAtMs  set on tombstones, else ''
--                 ingress  the current ingress: 'n' (next_turn), or 'a:<pct(turnId)>' /
--                          'b:<pct(turnId)>' (active_turn, minBoundary after_work /
--                          before_completion)
--                 flags    '1' when a lease generation was live at enqueue, then 'f' when a failed
--                          run counted an attempt against the row (SPEC 3.8; the count is in
--                          K.failures), e.g. '', '1', 'f', '1f'
--                 sourceKey  the row's source key as given ('' when none), last so it may hold '|'
--                 pct() never emits '|', and claim ids are tic:<n>:<n>, so the split is exact.
-- A plain next-turn row without a source key gets no state entry until its first transition: it
-- is deferred_next_turn with counter 0 and no claim, and its record says enqueuedAs
-- deferred_next_turn (this keeps a pending input's memory at its record and its `next` entry).
--
-- A claim is one K.claims entry, written when the claim is made:
--   K.claims[claimId] = <carriers>|<generation>|<claimToken>|<claimedAtMs>|<expiresAtMs>|<ownerJson>
-- carriers counts the rows that still carry the claim (rewritten when one loses it, deleted at 0
-- or by the commit that completes every carrier), so a commit proves in O(1) that no unlisted row
-- carries a claim it completes.
--
-- Failed runs (SPEC 3.8) are counted in K.failures[id] = {"attempts":<n>,"lastError":<JSON string>},
-- written only by a failure abandon (and deleted by retry-failed and vacuum), so the state entry
-- grows by one letter only: the 'f' flag, which a claim sees in the entries it reads anyway, and
-- only then reads K.failures.
-- @include common

local STATE_ENTRY = '^([%a_]+)|(%d+)|(%d+)|([^|]*)|(%d*)|([^|]*)|(1?f?)|(.*)$'

-- A row table: id, state, seq (text), counter (number), claimId, terminalAt, ingress, gen and
-- failed (booleans, the flags), sourceKey. nil when the entry is not in the documented form.
local function row_parse(id, entry)
  local state, seq, counter, claimId, terminalAt, ingress, flags, sourceKey = string.match(entry, STATE_ENTRY)
  if not state then return nil end
  local gen, failed = false, false
  if flags ~= '' then gen, failed = flags ~= 'f', flags ~= '1' end
  return { id = id, state = state, seq = seq, counter = tonumber(counter), claimId = claimId,
    terminalAt = terminalAt, ingress = ingress, gen = gen, failed = failed, sourceKey = sourceKey }
end

-- A row that has no state entry yet: an untouched next-turn row.
local function row_fresh(id, seq)
  return { id = id, state = 'deferred_next_turn', seq = seq, counter = 0, claimId = '', terminalAt = '',
    ingress = 'n', gen = false, sourceKey = '', fresh = true }
end

local function row_entry(row)
  local flags = ''
  if row.gen then flags = row.failed and '1f' or '1' elseif row.failed then flags = 'f' end
  return row.state .. '|' .. row.seq .. '|' .. fmt(row.counter) .. '|' .. row.claimId .. '|' .. row.terminalAt
    .. '|' .. row.ingress .. '|' .. flags .. '|' .. row.sourceKey
end

-- The row of `id`, or nil when there is none. A row without a state entry is in K.next.
local function row_get(id)
  local entry = redis.call('HGET', K.states, id)
  if entry then return row_parse(id, entry) end
  local seq = redis.call('ZSCORE', K.next, id)
  if seq then return row_fresh(id, seq) end
  return nil
end

-- Reads rows once per script into `cache` (id -> row, or false when missing), so every read
-- happens before the first write and a repeated id sees earlier effects.
local function row_cached(cache, id)
  local hit = cache[id]
  if hit == nil then
    hit = row_get(id) or false
    cache[id] = hit
  end
  return hit
end

local function row_save(row)
  row.fresh = nil
  redis.call('HSET', K.states, row.id, row_entry(row))
end

-- The turn of an active ingress ('a:<pct(turnId)>'), encoded, and whether it admits only the
-- before_completion checkpoint.
local function ingress_turn(ingress)
  return string.sub(ingress, 3), string.sub(ingress, 1, 1) == 'b'
end

-- The K.active member of a pending_active row: <pct(turnId)>:<seq, 16 digits>:<a|b>:<inputId>.
local function active_member(row)
  local turn = string.sub(row.ingress, 3)
  return turn .. ':' .. string.format('%016d', tonumber(row.seq)) .. ':' .. string.sub(row.ingress, 1, 1) .. ':' .. row.id
end

-- The seq (text, no leading zeros), boundary letter and input id of a K.active member.
local function active_member_parts(member)
  local seq, b, id = string.match(member, '^[^:]*:(%d+):([ab]):(.*)$')
  if not seq then return nil end
  return fmt(tonumber(seq)), b, id
end

-- ------------------------------------------------------------------ claims

local CLAIM_ENTRY = '^(%d+)|(%d+)|([^|]*)|(%d+)|(%d+)|(.*)$'

-- The claim table of `claimId` (carriers as a number; generation, token, times as text; owner
-- JSON), or nil when no row carries it any more.
local function claim_get(claimId)
  local entry = redis.call('HGET', K.claims, claimId)
  if not entry then return nil end
  local carriers, gen, token, claimedAt, expiresAt, owner = string.match(entry, CLAIM_ENTRY)
  if not carriers then return nil end
  return { id = claimId, carriers = tonumber(carriers), gen = gen, token = token, claimedAt = claimedAt,
    expiresAt = expiresAt, owner = owner }
end

-- The generation a claim was taken under, memoised per script in `cache`; nil for none.
local function claim_generation(cache, claimId)
  if claimId == '' then return nil end
  local hit = cache[claimId]
  if hit == nil then
    local claim = claim_get(claimId)
    hit = claim and claim.gen or false
    cache[claimId] = hit
  end
  return hit or nil
end

local function claim_put(claim)
  redis.call('HSET', K.claims, claim.id, fmt(claim.carriers) .. '|' .. claim.gen .. '|' .. claim.token .. '|'
    .. claim.claimedAt .. '|' .. claim.expiresAt .. '|' .. claim.owner)
end

-- A row loses its claim (abandon, cancel, requeue, a new claim over a dead one): the claim's
-- carrier count goes down, and the entry goes at 0. The counter is kept.
local function row_clear_claim(row)
  if row.claimId == '' then return end
  local claim = claim_get(row.claimId)
  if claim then
    claim.carriers = claim.carriers - 1
    if claim.carriers <= 0 then redis.call('HDEL', K.claims, claim.id) else claim_put(claim) end
  end
  row.claimId = ''
end

-- ------------------------------------------------------------------ failures

-- The attempts of a K.failures entry (0 for none).
local function failure_attempts(entry)
  if not entry then return 0 end
  return tonumber(string.match(entry, '^{"attempts":(%d+)') or '0')
end
