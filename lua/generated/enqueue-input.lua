-- Generated from lua/enqueue-input.lua (npm run build); edit that file, not this one.
local K = { lease = KEYS[1], inputs = KEYS[2], states = KEYS[3], src = KEYS[4], stamps = KEYS[5], next = KEYS[6], active = KEYS[7], genactive = KEYS[8], accepted = KEYS[9], tomb = KEYS[10], dispatch = KEYS[11], tombs = KEYS[12] }
local E = { PendingTurnInputIdConflict = -6 }
--[[
  enqueue-input: enqueuePendingTurnInput (SPEC 5.1; transitions T1, T2, T3), one atomic step.

  KEYS[1]  lease      reads the live generation; writes lastEnqueueSeq
  KEYS[2]  inputs     the new record (HSETNX is the id check and the first write)
  KEYS[3]  states     the state entry of an active-turn or source-keyed row
  KEYS[4]  src        source key -> input id
  KEYS[5]  stamps     whether the draft's turn is stamped (T3)
  KEYS[6]  next
  KEYS[7]  active
  KEYS[8]  genactive
  KEYS[9]  accepted   named by the shared index code; never written here
  KEYS[10] tomb       named by the shared index code; never written here
  KEYS[11] dispatch   (shard) the session, when the row is deferred_next_turn
  KEYS[12] tombs      (shard) named by the shared index code; never written here

  ARGV[1] encoded session id
  ARGV[2] input id (the draft's, or one the client generated)
  ARGV[3] the payload, JSON.stringify(draft.input), stored as the record's last member
  ARGV[4] the record's ingress and source members as JSON text made by the client:
          "scope":…[,"turnId":…,"minBoundary":…][,"sourceKey":…,"inputHash":…]
  ARGV[5] source key, '' when none
  ARGV[6] turn id of an active_turn draft, '' for next_turn
  ARGV[7] 'a' or 'b' (minBoundary after_work / before_completion) of an active_turn draft, else ''

  Reply:
    { 0, 'new', state, seq, enqueuedAtMs }          a row was made: pending_active (T2) or
                                                     deferred_next_turn (T1, T3)
    { 0, 'existing', inputId, record, stateEntry }  the source key names a row (any state); the
                                                     client compares content and answers a
                                                     replay or PendingTurnInputSourceKeyConflict
    { E.PendingTurnInputIdConflict, {sessionId, inputId} }  the id exists, in any state
  Nothing is written unless a row is made.
]]
-- >>> include row-index
-- Shared: the per-state indexes of input rows and the one function that moves a row between
-- states (SPEC 3.5). Invariant, by state (members are input ids unless said otherwise):
--   pending_active      K.active (lex member, see active_member), and K.genactive (score seq)
--                       when the row was enqueued under a live generation
--   deferred_next_turn  K.next (score seq)
--   accepted            K.accepted (score seq)
--   cancelled/completed '<terminalAtMs>|<inputId>' in the list K.tomb
-- so every row is in exactly one of K.next, K.active, K.accepted and K.tomb. The session is in the
-- shard K.dispatch whenever a row entered deferred_next_turn, accepted or genactive since the
-- sweeper last found it empty, and in the shard K.tombs (score: its oldest tombstone's time) while it holds
-- tombstones.
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

local function row_save(row)
  row.fresh = nil
  redis.call('HSET', K.states, row.id, row_entry(row))
end

-- The turn of an active ingress ('a:<pct(turnId)>'), encoded, and whether it admits only the
-- before_completion checkpoint.

-- The K.active member of a pending_active row: <pct(turnId)>:<seq, 16 digits>:<a|b>:<inputId>.
local function active_member(row)
  local turn = string.sub(row.ingress, 3)
  return turn .. ':' .. string.format('%016d', tonumber(row.seq)) .. ':' .. string.sub(row.ingress, 1, 1) .. ':' .. row.id
end

-- The seq (text, no leading zeros), boundary letter and input id of a K.active member.

-- ------------------------------------------------------------------ claims

local CLAIM_ENTRY = '^(%d+)|(%d+)|([^|]*)|(%d+)|(%d+)|(.*)$'

-- The claim table of `claimId` (carriers as a number; generation, token, times as text; owner
-- JSON), or nil when no row carries it any more.

-- The generation a claim was taken under, memoised per script in `cache`; nil for none.


-- A row loses its claim (abandon, cancel, requeue, a new claim over a dead one): the claim's
-- carrier count goes down, and the entry goes at 0. The counter is kept.
-- <<< include row-format

-- Appends `v` to the list `t[k]`, making the list on first use.
local function push(t, k, v)
  local list = t[k]
  if not list then
    list = {}
    t[k] = list
  end
  list[#list + 1] = v
end

-- Collects the index entries of `row` in its state into `added` (index key -> items). Returns
-- whether the state makes the session dispatchable (the shard dispatch index).
local function index_entries(added, row)
  local s = row.state
  if s == 'deferred_next_turn' then
    push(added, K.next, row.seq)
    push(added, K.next, row.id)
    return true
  elseif s == 'accepted' then
    push(added, K.accepted, row.seq)
    push(added, K.accepted, row.id)
    return true
  elseif s == 'pending_active' then
    push(added, K.active, '0')
    push(added, K.active, active_member(row))
    if not row.gen then return false end
    push(added, K.genactive, row.seq)
    push(added, K.genactive, row.id)
    -- Requeue mode dispatches it once its generation dies (T9), so the sweeper must see it.
    return true
  end
  push(added, K.tomb, row.terminalAt .. '|' .. row.id)
  return false
end

-- Writes what index_entries collected, one call per index; `at` is now, as text.
local function index_write(added, dispatch, at)
  for key, items in pairs(added) do call_chunked(key == K.tomb and 'RPUSH' or 'ZADD', key, items) end
  -- NX keeps the oldest time: the sweeper's and vacuum's scores say since when there is work.
  if dispatch then redis.call('ZADD', K.dispatch, 'NX', at, ARGV[1]) end
  if added[K.tomb] then redis.call('ZADD', K.tombs, 'NX', at, ARGV[1]) end
end

-- Moves rows to `state` and stores them, keeping every index true: each index is written with
-- one call for all the rows. A tombstone gets terminalAtMs = now and loses its claim; a deferred
-- row's ingress becomes next_turn. Callers clear claims where the transition says so (abandon,
-- requeue, interrupt), or settle them themselves (a commit that completes every carrier).

-- The indexes of a row the enqueue has just made (its state entry, if any, is the caller's).
local function row_add(row, now)
  local added = {}
  index_write(added, index_entries(added, row), fmt(now))
end

-- <<< include row-index

local input_id, payload, members = ARGV[2], ARGV[3], ARGV[4]
local source_key, turn_id, boundary = ARGV[5], ARGV[6], ARGV[7]

if source_key ~= '' then
  local id = redis.call('HGET', K.src, source_key)
  local record = id and redis.call('HGET', K.inputs, id)
  if record then return { 0, 'existing', id, record, redis.call('HGET', K.states, id) or '' } end
end

local now = now_ms()
local l = redis.call('HMGET', K.lease, 'leaseToken', 'expiresAtEpochMs', 'fencingToken', 'lastEnqueueSeq')
local gen = nil
if l[1] and l[1] ~= '' and tonumber(l[2] or '0') > now then gen = l[3] end
local seq = fmt(tonumber(l[4] or '0') + 1)
local state = 'deferred_next_turn'
if turn_id ~= '' and redis.call('HEXISTS', K.stamps, turn_id) == 0 then state = 'pending_active' end

local record = '{"seq":' .. seq .. ',"at":' .. fmt(now) .. ',"enqueuedAs":"' .. state .. '",' .. members
  .. (gen and (',"enqueueGen":' .. gen) or '') .. ',"input":' .. payload .. '}'
if redis.call('HSETNX', K.inputs, input_id, record) == 0 then
  return fail(E.PendingTurnInputIdConflict, { sessionId = session_raw(), inputId = input_id })
end
redis.call('HSET', K.lease, 'lastEnqueueSeq', seq)

local row = row_fresh(input_id, seq)
row.state = state
row.gen = gen ~= nil
row.sourceKey = source_key
if state == 'pending_active' then row.ingress = boundary .. ':' .. pct(turn_id) end
if source_key ~= '' then redis.call('HSET', K.src, source_key, input_id) end
-- A plain next-turn row keeps no state entry until its first transition (row-format.lua).
if state == 'pending_active' or source_key ~= '' then row_save(row) end
row_add(row, now)
return { 0, 'new', state, seq, now }
