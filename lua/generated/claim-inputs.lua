-- Generated from lua/claim-inputs.lua (npm run build); edit that file, not this one.
local K = { lease = KEYS[1], inputs = KEYS[2], states = KEYS[3], claims = KEYS[4], next = KEYS[5], active = KEYS[6], accepted = KEYS[7], genactive = KEYS[8], tomb = KEYS[9], dispatch = KEYS[10], tombs = KEYS[11] }
local E = { SessionExecutionLeaseExpired = -1 }
--[[
  claim-inputs: claimActiveTurnInputs and claimNextTurnInputs (SPEC 5.6; transitions T4, T5).
  The fence check (SPEC 3.3), then the selection, then the writes, in one atomic step.

  KEYS[1]  lease      the fence check
  KEYS[2]  inputs     the claimed rows' records, for the reply
  KEYS[3]  states
  KEYS[4]  claims     the new claim; a dead claim a row loses
  KEYS[5]  next       next-turn selection
  KEYS[6]  active     active-turn selection
  KEYS[7]  accepted
  KEYS[8]  genactive
  KEYS[9]  tomb       named by the shared index code; never written here
  KEYS[10] dispatch   (shard) the session, when rows become accepted
  KEYS[11] tombs      (shard) named by the shared index code; never written here

  ARGV[1]  encoded session id
  ARGV[2]  fence.owner.ownerId
  ARGV[3]  fence.owner.incarnationId
  ARGV[4]  fence.leaseToken
  ARGV[5]  fence.fencingToken (decimal)
  ARGV[6]  maxInputs (1..1000)
  ARGV[7]  leaseTtlMs: the claim's stall deadline is now + leaseTtlMs
  ARGV[8]  the new claim token (random, made by the client)
  ARGV[9]  the claim owner as JSON (normalised: liveness present), stored as given
  ARGV[10] mode: 'next_turn' or 'active_turn'
  ARGV[11] active_turn: the turn id ('' for next_turn)
  ARGV[12] active_turn: the checkpoint, 'after_work' or 'before_completion' ('' for next_turn)

  Reply:
    { 0 }                                                   nothing claimable; nothing written
    { 0, claimId, counter, claimedAtMs, expiresAtMs, inputId1, record1, stateEntry1, ... }
                                                            the claimed rows in enqueueSeq order,
                                                            as written
    { E.SessionExecutionLeaseExpired, {sessionId} }         the fence check failed

  Selection walks the mode's index in enqueueSeq order and takes the first maxInputs claimable
  rows (no claim, or a claim of another generation), skipping, never stopping at, the others.
  Active mode walks the turn's range of K.active and skips before_completion rows at an
  after_work checkpoint. claimId = tic:<first row's seq>:<first row's counter after the claim>.
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
local function rows_move(rows, state, now)
  if #rows == 0 then return end
  local gone = {}
  for _, row in ipairs(rows) do
    local s = row.state
    if s == 'pending_active' then
      push(gone, K.active, active_member(row))
      if row.gen then push(gone, K.genactive, row.id) end
    elseif s == 'deferred_next_turn' then
      push(gone, K.next, row.id)
    elseif s == 'accepted' then
      push(gone, K.accepted, row.id)
    end
    -- Tombstones are final: only vacuum removes them, with their row.
  end
  for key, members in pairs(gone) do call_chunked('ZREM', key, members) end

  local terminal = state == 'cancelled' or state == 'completed'
  local at = fmt(now)
  local added, entries, dispatch = {}, {}, false
  for _, row in ipairs(rows) do
    row.state = state
    if terminal then
      row.terminalAt = at
      row_clear_claim(row)
    elseif state == 'deferred_next_turn' then
      row.ingress = 'n'
    end
    dispatch = index_entries(added, row) or dispatch
    row.fresh = nil
    entries[#entries + 1] = row.id
    entries[#entries + 1] = row_entry(row)
  end
  index_write(added, dispatch, at)
  call_chunked('HSET', K.states, entries)
end

-- The indexes of a row the enqueue has just made (its state entry, if any, is the caller's).

-- <<< include row-index
-- >>> include lease
-- Shared: the session execution lease in K.lease (SPEC 3.2, 3.3, 4). fencingToken, the
-- generation, survives release; a released lease has empty owner and token and both times 0.
-- (include common: already above)

-- The lease record, or nil when the session never had one. The generation is kept as stored
-- text (fencingText) for exact comparison with a fence, and as a number.

-- What a fence check and a fenced release compare: lease_read without the liveness JSON and
-- claimedAt (a field read costs a script about as much as a small command; docs/DECISIONS.md).
local function lease_read_fence()
  local v = redis.call('HMGET', K.lease, 'ownerId', 'incarnationId', 'leaseToken', 'fencingToken', 'expiresAtEpochMs')
  if not v[4] then return nil end
  return { ownerId = v[1] or '', incarnationId = v[2] or '', leaseToken = v[3] or '', fencingText = v[4],
    expiresAt = tonumber(v[5] or '0') }
end

-- Live: a token is set and the expiry is strictly in the future.
local function lease_live(lease, now)
  return lease ~= nil and lease.leaseToken ~= '' and lease.expiresAt > now
end

-- The generation text of the live lease, or nil when none is live.

-- SPEC 3.3: same owner, incarnation, token and generation, and live.
local function fence_ok(lease, now, ownerId, incarnationId, leaseToken, fencingToken)
  return lease_live(lease, now) and lease.ownerId == ownerId and lease.incarnationId == incarnationId
    and lease.leaseToken == leaseToken and lease.fencingText == fencingToken
end

-- Same incarnation (SPEC 4.1): ownerId and incarnationId equal; liveness is ignored.

-- The fenced release of SPEC 4.4: only on an exact match, expiry not checked, generation kept.
-- Returns true when it released. `lease` is the record as read in this script (lease_read or
-- lease_read_fence), before any write to K.lease.

-- Appends the lease's reply fields to `out`: ownerId, incarnationId, liveness JSON, leaseToken,
-- then fencingToken, claimedAt and expiresAt as integers (decodeLease in src/redis/lease-ops.ts).
-- <<< include lease

local max_inputs = tonumber(ARGV[6])
local ttl = tonumber(ARGV[7])
local active_mode = ARGV[10] == 'active_turn'

local now = now_ms()
local lease = lease_read_fence()
if not fence_ok(lease, now, ARGV[2], ARGV[3], ARGV[4], ARGV[5]) then
  return fail(E.SessionExecutionLeaseExpired, { sessionId = session_raw() })
end
local gen = lease.fencingText
local claim_gens = {}

-- A row is claimable when it carries no claim or one of another generation.
local function claimable(row)
  return row and claim_generation(claim_gens, row.claimId) ~= gen
end

local selected = {}

local function select_next()
  local offset = 0
  while #selected < max_inputs do
    local want = max_inputs - #selected
    local page = redis.call('ZRANGE', K.next, offset, offset + want - 1, 'WITHSCORES')
    if #page == 0 then return end
    local ids = {}
    for i = 1, #page, 2 do ids[#ids + 1] = page[i] end
    local entries = redis.call('HMGET', K.states, unpack(ids))
    for i, id in ipairs(ids) do
      local row = entries[i] and row_parse(id, entries[i]) or row_fresh(id, page[2 * i])
      if claimable(row) then selected[#selected + 1] = row end
    end
    if #ids < want then return end
    offset = offset + #ids
  end
end

local function select_active()
  local turn = pct(ARGV[11])
  local after_work = ARGV[12] == 'after_work'
  -- pct() never emits ':' or ';', so '<turn>;' bounds exactly this turn's members.
  local min, max = '[' .. turn .. ':', '(' .. turn .. ';'
  while #selected < max_inputs do
    local members = redis.call('ZRANGEBYLEX', K.active, min, max, 'LIMIT', '0', fmt(max_inputs))
    if #members == 0 then return end
    local ids = {}
    for _, m in ipairs(members) do
      local _, b, id = active_member_parts(m)
      if id and (b == 'a' or not after_work) then ids[#ids + 1] = id end
    end
    if #ids > 0 then
      local entries = redis.call('HMGET', K.states, unpack(ids))
      for i, id in ipairs(ids) do
        local row = entries[i] and row_parse(id, entries[i])
        if row and row.state == 'pending_active' and claimable(row) and #selected < max_inputs then
          selected[#selected + 1] = row
        end
      end
    end
    if #members < max_inputs then return end
    min = '(' .. members[#members]
  end
end

if active_mode then select_active() else select_next() end
if #selected == 0 then return { 0 } end

local first = selected[1]
local counter = first.counter + 1
local claim_id = 'tic:' .. first.seq .. ':' .. fmt(counter)
local expires = now + ttl
local ids = {}
for i, row in ipairs(selected) do ids[i] = row.id end
local records = redis.call('HMGET', K.inputs, unpack(ids))

local entries = {}
for _, row in ipairs(selected) do
  row_clear_claim(row) -- T5 over a claim of a dead generation
  row.counter = row.counter + 1
  row.claimId = claim_id
  entries[#entries + 1] = row.id
  entries[#entries + 1] = row_entry(row)
end
if active_mode then
  rows_move(selected, 'accepted', now) -- T4
else
  call_chunked('HSET', K.states, entries) -- T5: state and indexes unchanged
end
local out = { 0, claim_id, counter, now, expires }
for i, row in ipairs(selected) do
  out[#out + 1] = row.id
  out[#out + 1] = records[i]
  out[#out + 1] = row_entry(row)
end
claim_put({ id = claim_id, carriers = #selected, gen = gen, token = ARGV[8], claimedAt = fmt(now),
  expiresAt = fmt(expires), owner = ARGV[9] })
return out
