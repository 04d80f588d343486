-- Generated from lua/vacuum-session.lua (npm run build); edit that file, not this one.
local K = { inputs = KEYS[1], states = KEYS[2], src = KEYS[3], byseq = KEYS[4], tomb = KEYS[5], next = KEYS[6], claims = KEYS[7], tombs = KEYS[8] }
--[[
  vacuum-session: delete one session's tombstones that are at least olderThanMs old (SPEC 3.6,
  8.3; transition T13), in one atomic step. Never touches non-terminal rows, the enqueueSeq
  counter (in K.lease) or settled state.

  KEYS[1] inputs
  KEYS[2] states
  KEYS[3] src
  KEYS[4] byseq
  KEYS[5] tomb    list of '<terminalAtMs>|<inputId>', oldest first
  KEYS[6] next    named by the shared row code; never written here
  KEYS[7] claims  named by the shared row code; never written here
  KEYS[8] tombs   (shard) rescored to the oldest remaining tombstone, or the session removed

  ARGV[1] encoded session id
  ARGV[2] olderThanMs (safe integer >= 0; 0 removes every tombstone)

  Reply:
    { 0, removed }  the number of rows deleted (due: now - terminalAtMs >= olderThanMs)
]]
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
-- >>> include common
-- Shared by every script: the store clock, integer text, error replies and id encoding.
--
-- Every script replies { 0, ... } on success or { E.<code>, detailsJson } on a domain error. The
-- E table is generated into each script's prelude from src/redis/script-errors.ts (the one
-- table of codes), and so is K, from the KEYS list of the script's header.

-- A domain error reply: `code` is an E.<name>, `details` a table encoded as the error's details.
local function fail(code, details)
  return { code, cjson.encode(details or {}) }
end

-- The inverse of pct() below.
local function unpct(s)
  return (string.gsub(s, '%%(%x%x)', function(h) return string.char(tonumber(h, 16)) end))
end

-- The raw session id, for error details: ARGV[1] of a per-session script is its encoding (every
-- byte outside A-Z a-z 0-9 . _ ~ - as %XX, docs/KEYS.md).
local function session_raw()
  return unpct(ARGV[1])
end

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
local function pct(s)
  return (string.gsub(s, '[^A-Za-z0-9._~-]', function(c)
    return string.format('%%%02X', string.byte(c))
  end))
end

-- One variadic command over many items (none for no items), in chunks small enough for Lua's C
-- stack.
local function call_chunked(command, key, items)
  for i = 1, #items, 500 do
    redis.call(command, key, unpack(items, i, math.min(i + 499, #items)))
  end
end
-- <<< include common

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
-- <<< include row-format

local cutoff = now_ms() - tonumber(ARGV[2])

-- Tombstones arrive in time order, so the due ones are at the head of the list.
local due = {}
local oldest = nil
local batch = 0
repeat
  local entries = redis.call('LRANGE', K.tomb, batch, batch + 255)
  for _, e in ipairs(entries) do
    local at, id = string.match(e, '^(%d+)|(.*)$')
    if at and tonumber(at) > cutoff then
      oldest = at
      break
    end
    due[#due + 1] = id or false
  end
  batch = batch + 256
until oldest or #entries < 256

local rows = {}
for i, id in ipairs(due) do
  local entry = id and redis.call('HGET', K.states, id)
  rows[i] = entry and row_parse(id, entry) or false
end

local removed = 0
for i, id in ipairs(due) do
  local row = rows[i]
  if row and (row.state == 'cancelled' or row.state == 'completed') then
    redis.call('HDEL', K.inputs, id)
    redis.call('HDEL', K.states, id)
    redis.call('ZREM', K.byseq, id)
    -- Only a source-key mapping that still names this row.
    if row.sourceKey ~= '' and redis.call('HGET', K.src, row.sourceKey) == id then
      redis.call('HDEL', K.src, row.sourceKey)
    end
    removed = removed + 1
  end
end
if #due > 0 then redis.call('LTRIM', K.tomb, #due, -1) end
if oldest then
  redis.call('ZADD', K.tombs, oldest, ARGV[1])
else
  redis.call('ZREM', K.tombs, ARGV[1])
end
return { 0, removed }
