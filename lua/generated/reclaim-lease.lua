-- Generated from lua/reclaim-lease.lua (npm run build); edit that file, not this one.
local K = { lease = KEYS[1], states = KEYS[2], claims = KEYS[3], next = KEYS[4], active = KEYS[5], accepted = KEYS[6], genactive = KEYS[7], tomb = KEYS[8], dispatch = KEYS[9], tombs = KEYS[10] }
--[[
  reclaim-lease: reclaimSessionExecutionLease (SPEC 4.2): take a lease over early from a holder
  that is provably dead.

  KEYS[1]  lease
  KEYS[2]  states     T9 (a fresh acquisition in requeue mode)
  KEYS[3]  claims     T9
  KEYS[4]  next       T9
  KEYS[5]  active     T9
  KEYS[6]  accepted   T9
  KEYS[7]  genactive  T9
  KEYS[8]  tomb       named by the shared index code; never written here
  KEYS[9]  dispatch   (shard) T9
  KEYS[10] tombs      (shard) named by the shared index code; never written here

  ARGV[1]  encoded session id
  ARGV[2]  owner.ownerId (the claimant)
  ARGV[3]  owner.incarnationId
  ARGV[4]  owner.liveness as canonical JSON ({"kind":"opaque"} when omitted), stored as sent
  ARGV[5]  a new random lease token (made by the client)
  ARGV[6]  leaseTtlMs (0..86400000)
  ARGV[7]  '1' when strandedTurnInputs is 'requeue' (T9 on an acquisition), else '0'
  ARGV[8]  observedHolder.sessionId, encoded like ARGV[1]
  ARGV[9]  observedHolder.owner.ownerId
  ARGV[10] observedHolder.owner.incarnationId
  ARGV[11] observedHolder.owner.liveness as canonical JSON, compared byte for byte
  ARGV[12] observedHolder.leaseToken
  ARGV[13] observedHolder.fencingToken (decimal)
  ARGV[14] '1' when the claimant's process judged the observed holder definitely dead
           (isDefinitelyDead in src/core/liveness.ts), else '0'

  Reply:
    { 0, 'acquired', lease... }  the lease was not live, or it was live, matched the observation
                                 exactly and its holder is dead: a fresh acquisition (T9 applies)
    { 0, 'busy', lease... }      a live lease that differs from the observation, or whose holder
                                 is not definitely dead; nothing written
]]
-- >>> include lease-acquire
-- Shared by try-claim-lease and reclaim-lease: the fresh acquisition of SPEC 4.1.
-- >>> include requeue
-- Shared: T9, the requeue of stranded rows when a fresh lease generation starts.
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
local function call_chunked(command, key, items)
  for i = 1, #items, 500 do
    redis.call(command, key, unpack(items, i, math.min(i + 499, #items)))
  end
end
-- <<< include common

-- Requeues accepted rows and pending_active rows enqueued under a generation (every earlier
-- generation is dead now), claims cleared. Returns how many rows moved.
local function requeue_stranded(now)
  if redis.call('EXISTS', K.accepted, K.genactive) == 0 then return 0 end
  -- The row helpers are defined here, so that an acquisition with nothing to requeue, the usual
  -- one, creates none of them (Lua makes a closure per helper on every run of the code that
  -- defines it: docs/DECISIONS.md).
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
local function row_add(row, now)
  local added = {}
  index_write(added, index_entries(added, row), fmt(now))
end

local function row_move(row, state, now)
  rows_move({ row }, state, now)
end
-- <<< include row-index
  local rows = {}
  for _, index in ipairs({ K.accepted, K.genactive }) do
    for _, id in ipairs(redis.call('ZRANGE', index, 0, -1)) do
      local row = row_get(id)
      if row and (row.state == 'accepted' or row.state == 'pending_active') then rows[#rows + 1] = row end
    end
  end
  for _, row in ipairs(rows) do row_clear_claim(row) end
  rows_move(rows, 'deferred_next_turn', now)
  return #rows
end
-- <<< include requeue
-- >>> include lease
-- Shared: the session execution lease in K.lease (SPEC 3.2, 3.3, 4). fencingToken, the
-- generation, survives release; a released lease has empty owner and token and both times 0.
-- (include common: already above)

-- The lease record, or nil when the session never had one. The generation is kept as stored
-- text (fencingText) for exact comparison with a fence, and as a number.
local function lease_read()
  local v = redis.call('HMGET', K.lease, 'ownerId', 'incarnationId', 'liveness', 'leaseToken',
    'fencingToken', 'claimedAtEpochMs', 'expiresAtEpochMs')
  if not v[5] then return nil end
  return {
    ownerId = v[1] or '', incarnationId = v[2] or '', liveness = v[3] or '', leaseToken = v[4] or '',
    fencingText = v[5], fencingToken = tonumber(v[5]), claimedAt = tonumber(v[6] or '0'),
    expiresAt = tonumber(v[7] or '0'),
  }
end

-- What a fence check and a fenced release compare: lease_read without the liveness JSON and
-- claimedAt (a field read costs a script about as much as a small command; docs/DECISIONS.md).

-- Live: a token is set and the expiry is strictly in the future.
local function lease_live(lease, now)
  return lease ~= nil and lease.leaseToken ~= '' and lease.expiresAt > now
end

-- The generation text of the live lease, or nil when none is live.

-- SPEC 3.3: same owner, incarnation, token and generation, and live.

-- Same incarnation (SPEC 4.1): ownerId and incarnationId equal; liveness is ignored.

-- The fenced release of SPEC 4.4: only on an exact match, expiry not checked, generation kept.
-- Returns true when it released. `lease` is the record as read in this script (lease_read or
-- lease_read_fence), before any write to K.lease.

-- Appends the lease's reply fields to `out`: ownerId, incarnationId, liveness JSON, leaseToken,
-- then fencingToken, claimedAt and expiresAt as integers (decodeLease in src/redis/lease-ops.ts).
local function lease_reply(out, lease)
  out[#out + 1] = lease.ownerId
  out[#out + 1] = lease.incarnationId
  out[#out + 1] = lease.liveness ~= '' and lease.liveness or '{"kind":"opaque"}'
  out[#out + 1] = lease.leaseToken
  out[#out + 1] = lease.fencingToken
  out[#out + 1] = lease.claimedAt
  out[#out + 1] = lease.expiresAt
  return out
end
-- <<< include lease

-- Fresh acquisition: generation = previous + 1 (1 when the session never had a lease), the
-- caller's new token, claimedAt = now, expiresAt = now + ttl (ttl 0 gives a lease that is already
-- over), the owner's liveness JSON stored as sent. With requeue on, T9 runs in the same step.
-- Returns the new lease record.
local function lease_acquire_fresh(previous, now, ownerId, incarnationId, livenessJson, leaseToken, ttl, requeue)
  local gen = previous and previous.fencingToken + 1 or 1
  local lease = { ownerId = ownerId, incarnationId = incarnationId, liveness = livenessJson, leaseToken = leaseToken,
    fencingToken = gen, fencingText = fmt(gen), claimedAt = now, expiresAt = now + ttl }
  redis.call('HSET', K.lease, 'ownerId', ownerId, 'incarnationId', incarnationId, 'liveness', livenessJson,
    'leaseToken', leaseToken, 'fencingToken', lease.fencingText, 'claimedAtEpochMs', fmt(now),
    'expiresAtEpochMs', fmt(lease.expiresAt))
  if requeue then requeue_stranded(now) end
  return lease
end
-- <<< include lease-acquire

local now = now_ms()
local lease = lease_read()
if lease_live(lease, now) then
  -- The record is exactly what the claimant observed, liveness included (so the verdict was
  -- reached on the identity that is stored), and that holder is dead.
  local storedLiveness = lease.liveness ~= '' and lease.liveness or '{"kind":"opaque"}'
  local matches = ARGV[8] == ARGV[1] and lease.ownerId == ARGV[9] and lease.incarnationId == ARGV[10]
    and storedLiveness == ARGV[11] and lease.leaseToken == ARGV[12] and lease.fencingText == ARGV[13]
  if not (matches and ARGV[14] == '1') then return lease_reply({ 0, 'busy' }, lease) end
end
lease = lease_acquire_fresh(lease, now, ARGV[2], ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6]), ARGV[7] == '1')
return lease_reply({ 0, 'acquired' }, lease)
