-- Generated from lua/list-inputs.lua (npm run build); edit that file, not this one.
local K = { lease = KEYS[1], inputs = KEYS[2], states = KEYS[3], claims = KEYS[4], next = KEYS[5], active = KEYS[6] }
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
-- >>> include lease
-- Shared: the session execution lease in K.lease (SPEC 3.2, 3.3, 4). fencingToken, the
-- generation, survives release; a released lease has empty owner and token and both times 0.
-- >>> include common
-- Shared by every script: the store clock, integer text, error replies and id encoding.
--
-- Every script replies { 0, ... } on success or { E.<code>, detailsJson } on a domain error. The
-- E table is generated into each script's prelude from src/redis/script-errors.ts (the one
-- table of codes), and so is K, from the KEYS list of the script's header.

-- A domain error reply: `code` is an E.<name>, `details` a table encoded as the error's details.

-- The inverse of pct() below.

-- The raw session id, for error details: ARGV[1] of a per-session script is its encoding (every
-- byte outside A-Z a-z 0-9 . _ ~ - as %XX, docs/KEYS.md).

-- The store clock: server TIME in whole milliseconds.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Integers written from Lua as decimal text, never in exponent notation.
local function fmt(n)
  return string.format('%d', n)
end

-- The same injective encoding as src/redis/key-encoding.ts, for ids inside composite members.

-- One variadic command over many items (none for no items), in chunks small enough for Lua's C
-- stack.
-- <<< include common

-- The lease record, or nil when the session never had one. The generation is kept as stored
-- text (fencingText) for exact comparison with a fence, and as a number.

-- What a fence check and a fenced release compare: lease_read without the liveness JSON and
-- claimedAt (a field read costs a script about as much as a small command; docs/DECISIONS.md).

-- Live: a token is set and the expiry is strictly in the future.
local function lease_live(lease, now)
  return lease ~= nil and lease.leaseToken ~= '' and lease.expiresAt > now
end

-- The generation text of the live lease, or nil when none is live.
local function live_generation(now)
  local v = redis.call('HMGET', K.lease, 'leaseToken', 'fencingToken', 'expiresAtEpochMs')
  if v[2] and lease_live({ leaseToken = v[1] or '', expiresAt = tonumber(v[3] or '0') }, now) then return v[2] end
  return nil
end

-- SPEC 3.3: same owner, incarnation, token and generation, and live.

-- Same incarnation (SPEC 4.1): ownerId and incarnationId equal; liveness is ignored.

-- The fenced release of SPEC 4.4: only on an exact match, expiry not checked, generation kept.
-- Returns true when it released. `lease` is the record as read in this script (lease_read or
-- lease_read_fence), before any write to K.lease.

-- Appends the lease's reply fields to `out`: ownerId, incarnationId, liveness JSON, leaseToken,
-- then fencingToken, claimedAt and expiresAt as integers (decodeLease in src/redis/lease-ops.ts).
-- <<< include lease
-- >>> include row-reply
-- Shared by the scripts that return rows: a row as the client decodes it (src/redis/row-codec.ts).
-- >>> include row-format
-- Shared: the stored form of input rows and claims (docs/KEYS.md, "Input rows").
--
-- A row is two things:
--   K.inputs[id]  the record, JSON written once at enqueue and never read by Lua: seq, at,
--                 enqueuedAs, the original ingress, sourceKey/inputHash/enqueueGen when set, and
--                 the payload as `input`. Clients decode it; scripts only copy it into replies.
--   K.states[id]  the row's state entry, positional text that scripts parse and rewrite:
--                   <state>|<seq>|<counter>|<claimId>|<terminalAtMs>|<ingress>|<gen>|<sourceKey>
--                 state    in words (pending_active, deferred_next_turn, accepted, cancelled,
--                          completed)
--                 counter  the row's claim counter (claimFencingToken), +1 per claim
--                 claimId  the claim the row carries, '' when none
--                 terminalAtMs  set on tombstones, else ''
--                 ingress  the current ingress: 'n' (next_turn), or 'a:<pct(turnId)>' /
--                          'b:<pct(turnId)>' (active_turn, minBoundary after_work /
--                          before_completion)
--                 gen      '1' when a lease generation was live at enqueue, else ''
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
-- (include common: already above)

local STATE_ENTRY = '^([%a_]+)|(%d+)|(%d+)|([^|]*)|(%d*)|([^|]*)|(1?)|(.*)$'

-- A row table: id, state, seq (text), counter (number), claimId, terminalAt, ingress, gen
-- (boolean), sourceKey. nil when the entry is not in the documented form.
local function row_parse(id, entry)
  local state, seq, counter, claimId, terminalAt, ingress, gen, sourceKey = string.match(entry, STATE_ENTRY)
  if not state then return nil end
  return { id = id, state = state, seq = seq, counter = tonumber(counter), claimId = claimId,
    terminalAt = terminalAt, ingress = ingress, gen = gen == '1', sourceKey = sourceKey }
end

-- A row that has no state entry yet: an untouched next-turn row.
local function row_fresh(id, seq)
  return { id = id, state = 'deferred_next_turn', seq = seq, counter = 0, claimId = '', terminalAt = '',
    ingress = 'n', gen = false, sourceKey = '', fresh = true }
end

local function row_entry(row)
  return row.state .. '|' .. row.seq .. '|' .. fmt(row.counter) .. '|' .. row.claimId .. '|' .. row.terminalAt
    .. '|' .. row.ingress .. '|' .. (row.gen and '1' or '') .. '|' .. row.sourceKey
end

-- The row of `id`, or nil when there is none. A row without a state entry is in K.next.

-- Reads rows once per script into `cache` (id -> row, or false when missing), so every read
-- happens before the first write and a repeated id sees earlier effects.


-- The turn of an active ingress ('a:<pct(turnId)>'), encoded, and whether it admits only the
-- before_completion checkpoint.

-- The K.active member of a pending_active row: <pct(turnId)>:<seq, 16 digits>:<a|b>:<inputId>.

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


-- A row loses its claim (abandon, cancel, requeue, a new claim over a dead one): the claim's
-- carrier count goes down, and the entry goes at 0. The counter is kept.
-- <<< include row-format

-- Appends a row's reply triple to `out`: input id, record, state entry ('' for a row without one).
local function row_reply(out, row)
  out[#out + 1] = row.id
  out[#out + 1] = redis.call('HGET', K.inputs, row.id)
  out[#out + 1] = row.fresh and '' or row_entry(row)
end
-- <<< include row-reply

local now = now_ms()
local live_gen = live_generation(now)

local seqs, ids = {}, {}
local flat = redis.call('ZRANGE', K.next, 0, -1, 'WITHSCORES')
for i = 1, #flat, 2 do
  seqs[flat[i]] = flat[i + 1]
  ids[#ids + 1] = flat[i]
end
for _, m in ipairs(redis.call('ZRANGE', K.active, 0, -1)) do
  local seq, _, id = active_member_parts(m)
  if id and not seqs[id] then
    seqs[id] = seq
    ids[#ids + 1] = id
  end
end
table.sort(ids, function(a, b) return tonumber(seqs[a]) < tonumber(seqs[b]) end)

local claim_gens = {}
local out = { 0 }
for _, id in ipairs(ids) do
  local entry = redis.call('HGET', K.states, id)
  local row = entry and row_parse(id, entry) or row_fresh(id, seqs[id])
  local pending = row.state == 'pending_active' or row.state == 'deferred_next_turn'
  local live = live_gen ~= nil and claim_generation(claim_gens, row.claimId) == live_gen
  if pending and not live then row_reply(out, row) end
end
return out
