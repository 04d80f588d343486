-- Generated from lua/vacuum-session.lua (npm run build); edit that file, not this one.
local K = { inputs = KEYS[1], states = KEYS[2], src = KEYS[3], tomb = KEYS[4], tombs = KEYS[5] }
--[[
  vacuum-session: delete one session's tombstones that are at least olderThanMs old (SPEC 3.6,
  8.3; transition T13), in one atomic step. Never touches non-terminal rows, the enqueueSeq
  counter (in K.lease) or settled state.

  KEYS[1] inputs
  KEYS[2] states
  KEYS[3] src
  KEYS[4] tomb    list of '<terminalAtMs>|<inputId>', oldest first
  KEYS[5] tombs   (shard) rescored to the oldest remaining tombstone, or the session removed

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

-- The inverse of pct() below.

-- The raw session id, for error details: ARGV[1] of a per-session script is its encoding (every
-- byte outside A-Z a-z 0-9 . _ ~ - as %XX, docs/KEYS.md).

-- The store clock: server TIME in whole milliseconds.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Integers written from Lua as decimal text, never in exponent notation.

-- The same injective encoding as src/redis/key-encoding.ts, for ids inside composite members.

-- One variadic command over many items (none for no items), in chunks small enough for Lua's C
-- stack.
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


-- The row of `id`, or nil when there is none. A row without a state entry is in K.next.

-- Reads rows once per script into `cache` (id -> row, or false when missing), so every read
-- happens before the first write and a repeated id sees earlier effects.


-- The turn of an active ingress ('a:<pct(turnId)>'), encoded, and whether it admits only the
-- before_completion checkpoint.

-- The K.active member of a pending_active row: <pct(turnId)>:<seq, 16 digits>:<a|b>:<inputId>.

-- The seq (text, no leading zeros), boundary letter and input id of a K.active member.

-- ------------------------------------------------------------------ claims

local CLAIM_ENTRY = '^(%d+)|(%d+)|([^|]*)|(%d+)|(%d+)|(.*)$'

-- The claim table of `claimId` (carriers as a number; generation, token, times as text; owner
-- JSON), or nil when no row carries it any more.

-- The generation a claim was taken under, memoised per script in `cache`; nil for none.


-- A row loses its claim (abandon, cancel, requeue, a new claim over a dead one): the claim's
-- carrier count goes down, and the entry goes at 0. The counter is kept.
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
