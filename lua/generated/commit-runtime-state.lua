-- Generated from lua/commit-runtime-state.lua (npm run build); edit that file, not this one.
local K = { lease = KEYS[1], states = KEYS[2], claims = KEYS[3], next = KEYS[4], active = KEYS[5], accepted = KEYS[6], genactive = KEYS[7], tomb = KEYS[8], head = KEYS[9], nodes = KEYS[10], parents = KEYS[11], order = KEYS[12], blobs = KEYS[13], usage = KEYS[14], usageorder = KEYS[15], stamps = KEYS[16], dispatch = KEYS[17], tombs = KEYS[18], att = KEYS[19], att_uncommitted = KEYS[20] }
local E = { Backend = -12, HeadRevisionConflict = -3, InvalidInput = -8, InvalidRecordSchemaVersion = -10, MissingRecordSchemaVersion = -9, QueuedWorkClaimSuperseded = -7, RuntimeTurnCommitConflict = -4, SessionExecutionLeaseExpired = -1, TurnInputClaimSuperseded = -2, UnsupportedRecordSchemaVersion = -11 }
--[[
  commit-runtime-state: commitRuntimeState (SPEC 6.2, 6.3). Every check in the order of SPEC 6.2,
  then every write, in one atomic step: nothing is written before the last check passes, and
  nothing after the first write can fail.

  KEYS[1]  lease
  KEYS[2]  states
  KEYS[3]  claims
  KEYS[4]  next
  KEYS[5]  active      interrupt deferral (T10)
  KEYS[6]  accepted
  KEYS[7]  genactive
  KEYS[8]  tomb
  KEYS[9]  head
  KEYS[10] nodes
  KEYS[11] parents
  KEYS[12] order
  KEYS[13] blobs
  KEYS[14] usage
  KEYS[15] usageorder
  KEYS[16] stamps
  KEYS[17] dispatch        (shard)
  KEYS[18] tombs           (shard)
  KEYS[19] att             (shard)
  KEYS[20] att-uncommitted (shard)

  ARGV[1] encoded session id
  ARGV[2] the commit, one cmsgpack map made by buildCommitArgs (src/redis/commit-args.ts):
          requeue, wakes     booleans: strandedTurnInputs is 'requeue'; the store sends wake-ups
          turn               { id, hash } (hash: turnCommitHash as JSON text), absent without one
          fence, release     [ownerId, incarnationId, leaseToken, fencingToken], each absent when
                             the commit has none (a fence of another session is sent absent)
          noFence            true when the commit has no fence at all (the error says so)
          expected           expectedHeadRevision, absent when none
          queue              [sessionId, claimId] of the first completedQueueClaims element
          completions        array of { sessionId ('' = the commit's), claimId, token, inputIds }
          graphKind          'append' | 'replace_full' | 'unchanged'
          leaf               the new leafNodeId, absent when none
          nodes              array of [nodeId, parentNodeId or '', node JSON]
          refs               array of [field, ref]: checkpoint refs given without their snapshot
          config, agentFrames, currentAgentFrameId   JSON texts and the frame id
          blobs              the refs of the blobs to store, the manifest last
          usage              array of [group, five counter deltas as text]
          interrupt          interruptedTurnInputTurnId, absent when none
          attachments        array of pct(attachmentId)
  ARGV[3..] the content of each blob of `blobs`, in order (JSON text, or executionState bytes)

  Reply:
    { 0, wake, result }  result is the RuntimeCommitResult JSON of a turn commit (new, or
                         replayed from its stamp), or the new headRevision as an integer for a
                         commit without a turn stamp (the client completes that result); wake is
                         1 when the session should get an idle-dispatch wake-up
    { E.RuntimeTurnCommitConflict, {sessionId, turnId} }
    { E.SessionExecutionLeaseExpired, {sessionId, reason?} }  reason 'no_lease_fence' without a fence
    { E.MissingRecordSchemaVersion | E.InvalidRecordSchemaVersion |
      E.UnsupportedRecordSchemaVersion, {recordKind, actual?, expected} }
    { E.HeadRevisionConflict, {expected, actual} }
    { E.QueuedWorkClaimSuperseded, {sessionId, claimId} }
    { E.TurnInputClaimSuperseded, {sessionId, claimId} }
    { E.InvalidInput, {issues} }
    { E.Backend, {cause} }  an unreadable stored stamp
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
local function live_generation(now)
  local v = redis.call('HMGET', K.lease, 'leaseToken', 'fencingToken', 'expiresAtEpochMs')
  if v[2] and lease_live({ leaseToken = v[1] or '', expiresAt = tonumber(v[3] or '0') }, now) then return v[2] end
  return nil
end

-- SPEC 3.3: same owner, incarnation, token and generation, and live.
local function fence_ok(lease, now, ownerId, incarnationId, leaseToken, fencingToken)
  return lease_live(lease, now) and lease.ownerId == ownerId and lease.incarnationId == incarnationId
    and lease.leaseToken == leaseToken and lease.fencingText == fencingToken
end

-- Same incarnation (SPEC 4.1): ownerId and incarnationId equal; liveness is ignored.

-- The fenced release of SPEC 4.4: only on an exact match, expiry not checked, generation kept.
-- Returns true when it released. `lease` is the record as read in this script (lease_read or
-- lease_read_fence), before any write to K.lease.
local function lease_release(lease, ownerId, incarnationId, leaseToken, fencingToken)
  if lease == nil or lease.leaseToken == '' then return false end
  if lease.ownerId ~= ownerId or lease.incarnationId ~= incarnationId or lease.leaseToken ~= leaseToken
    or lease.fencingText ~= fencingToken then
    return false
  end
  redis.call('HSET', K.lease, 'ownerId', '', 'incarnationId', '', 'liveness', '', 'leaseToken', '',
    'claimedAtEpochMs', '0', 'expiresAtEpochMs', '0')
  return true
end

-- Appends the lease's reply fields to `out`: ownerId, incarnationId, liveness JSON, leaseToken,
-- then fencingToken, claimedAt and expiresAt as integers (decodeLease in src/redis/lease-ops.ts).
-- <<< include lease
-- >>> include dispatchable
-- Shared: whether a session is dispatchable (SPEC 11): no live lease, and rows a turn would take.
-- (include lease: already above)

-- Next-turn input, or in requeue mode also the rows T9 would move.
local function has_dispatchable_rows(requeue)
  if requeue then return redis.call('EXISTS', K.next, K.accepted, K.genactive) > 0 end
  return redis.call('EXISTS', K.next) > 0
end

-- `unleased` when the caller knows no lease is live (it has just released it in this script).
local function dispatchable(now, requeue, unleased)
  if not unleased and live_generation(now) ~= nil then return false end
  return has_dispatchable_rows(requeue)
end
-- <<< include dispatchable
-- >>> include att
-- Shared: attachment manifest entries of the calling session (docs/KEYS.md, shard keys).
--
-- An entry lives in K.att under `<pct(sessionId)>:<pct(attachmentId)>` as JSON built by the
-- client: {"sessionId":…,"attachmentId":…,"canonicalUri":…,"intentAtEpochMs":N} and, once
-- committed, with `,"committedAtEpochMs":N` appended as the LAST field. Lua never decodes an
-- entry: the stamp is found and added by string operations on that fixed tail. An entry without
-- a stamp is also in K.att_uncommitted (score = intentAtEpochMs); every entry is in K.att_byid as
-- `<pct(attachmentId)>:<pct(sessionId)>` (lex, score 0).
-- (include common: already above)

-- The commit stamp tail. Inside a JSON string every `"` is escaped, so this can only match the
-- real field.
local ATT_STAMP_TAIL = ',"committedAtEpochMs":(%d+)}$'

local function att_member(encAtt)
  return ARGV[1] .. ':' .. encAtt
end

-- The commit stamp of an entry's JSON, as a decimal string, or nil.
local function att_stamp_of(raw)
  return string.match(raw, ATT_STAMP_TAIL)
end

-- committedAtEpochMs = committedAtEpochMs ?? now, only when the entry exists (SPEC 6.3 step 7
-- and 7). Never inserts. Returns true when the entry exists. Lazy: most commits stamp nothing.
local function att_stamp(encAtt, now)
  local member = att_member(encAtt)
  local raw = redis.call('HGET', K.att, member)
  if not raw then return false end
  if not att_stamp_of(raw) then
    redis.call('HSET', K.att, member, string.sub(raw, 1, -2) .. ',"committedAtEpochMs":' .. fmt(now) .. '}')
  end
  redis.call('ZREM', K.att_uncommitted, member)
  return true
end
-- <<< include att

local c = cmsgpack.unpack(ARGV[2])
local NONE = {}
local completions = c.completions or NONE
local nodes = c.nodes or NONE
local refs = c.refs or NONE
local usage = c.usage or NONE
local attachments = c.attachments or NONE
local blobs = {}
for i, ref in ipairs(c.blobs) do blobs[i] = { ref, ARGV[2 + i] } end
local manifest = blobs[#blobs]
local now = now_ms()

-- ------------------------------------------------------------------ 2. turn-commit replay
local stampPrefix
if c.turn then
  stampPrefix = '{"turnCommitHash":' .. c.turn.hash .. ',"committedAtMs":'
  local stamp = redis.call('HGET', K.stamps, c.turn.id)
  if stamp then
    if string.sub(stamp, 1, #stampPrefix) ~= stampPrefix then
      return fail(E.RuntimeTurnCommitConflict, { sessionId = session_raw(), turnId = c.turn.id })
    end
    -- The stamp is {"turnCommitHash":…,"committedAtMs":N,"result":<result>}, written below.
    local at = string.find(stamp, ',"result":', #stampPrefix + 1, true)
    if not at then return fail(E.Backend, { cause = 'unreadable turn-commit stamp' }) end
    local released = false
    if c.release then
      local r = c.release
      released = lease_release(lease_read_fence(), r[1], r[2], r[3], r[4])
    end
    local wake = c.wakes and released and dispatchable(now, c.requeue, true)
    return { 0, wake and 1 or 0, string.sub(stamp, at + 10, -2) }
  end
end

-- ------------------------------------------------------------------ 3. fence
local lease = lease_read_fence()
local f = c.fence
if c.noFence then
  return fail(E.SessionExecutionLeaseExpired, { sessionId = session_raw(), reason = 'no_lease_fence' })
end
if not f or not fence_ok(lease, now, f[1], f[2], f[3], f[4]) then
  return fail(E.SessionExecutionLeaseExpired, { sessionId = session_raw() })
end

-- ------------------------------------------------------------------ 4. head schema and CAS
local h = redis.call('HMGET', K.head, 'schemaVersion', 'headRevision', 'nodeSeq', 'leafNodeId')
-- A head always has these fields; EXISTS only tells a head that lost them all from none.
local hasHead = h[1] or h[2] or h[3] or h[4] or redis.call('EXISTS', K.head) == 1
local actual, nodeSeq = 0, 0
if hasHead then
  local sv = h[1]
  if not sv then
    return fail(E.MissingRecordSchemaVersion, { recordKind = 'session_head', expected = 1 })
  end
  if not string.match(sv, '^%-?%d+$') then
    return fail(E.InvalidRecordSchemaVersion, { recordKind = 'session_head', actual = sv, expected = 1 })
  end
  if tonumber(sv) ~= 1 then
    return fail(E.UnsupportedRecordSchemaVersion, { recordKind = 'session_head', actual = tonumber(sv), expected = 1 })
  end
  actual = tonumber(h[2] or '0') or 0
  nodeSeq = tonumber(h[3] or '0') or 0
end
if c.expected ~= nil and c.expected ~= actual then
  return fail(E.HeadRevisionConflict, { expected = c.expected, actual = actual })
end

-- ------------------------------------------------------------------ 5. queued-work claims
if c.queue then
  return fail(E.QueuedWorkClaimSuperseded, { sessionId = c.queue[1], claimId = c.queue[2] })
end

-- ------------------------------------------------------------------ 6. turn-input completions
-- Every listed row must carry the claim, the claim's token must match, and the claim's carrier
-- count (row-format.lua) must equal the number of listed rows, or an unlisted row carries it.
local cache = {}
local completing = {}
for _, comp in ipairs(completions) do
  local superseded = {
    sessionId = comp.sessionId == '' and session_raw() or comp.sessionId, claimId = comp.claimId,
  }
  if comp.sessionId ~= '' then return fail(E.TurnInputClaimSuperseded, superseded) end
  local claim = claim_get(comp.claimId)
  if not claim or claim.token ~= comp.token or claim.carriers ~= #comp.inputIds then
    return fail(E.TurnInputClaimSuperseded, superseded)
  end
  for _, id in ipairs(comp.inputIds) do
    local row = row_cached(cache, id)
    if not row or row.claimId ~= comp.claimId then return fail(E.TurnInputClaimSuperseded, superseded) end
    completing[#completing + 1] = row
  end
end

-- ------------------------------------------------------------------ 7. content checks
local issues = {}
if c.graphKind == 'append' then
  for i, n in ipairs(nodes) do
    if redis.call('HEXISTS', K.nodes, n[1]) == 1 then
      issues[#issues + 1] = 'graph.nodes.' .. fmt(i - 1) .. '.nodeId: already exists in the session graph'
    end
  end
end
for _, r in ipairs(refs) do
  if redis.call('HEXISTS', K.blobs, r[2]) == 0 then
    issues[#issues + 1] = 'checkpoint.' .. r[1] .. ': names no blob of the session (send the snapshot, or the ref of a stored one)'
  end
end
if #issues > 0 then return fail(E.InvalidInput, { issues = issues }) end

-- The interrupt deferral (T10) reads its rows now and moves them in the write phase.
local interrupted = {}
if c.interrupt then
  local turn = pct(c.interrupt)
  for _, m in ipairs(redis.call('ZRANGEBYLEX', K.active, '[' .. turn .. ':', '(' .. turn .. ';')) do
    local _, _, id = active_member_parts(m)
    local row = id and row_cached(cache, id)
    if row and row.state == 'pending_active' then interrupted[#interrupted + 1] = row end
  end
end

-- The stored blob refs: a ref is the SHA-256 of its content, so a stored one needs no write.
local storedRefs = redis.call('HKEYS', K.blobs)

-- ================================================================== writes (SPEC 6.3)
-- 1. checkpoint blobs (snapshots, then the manifest)
local stored, live = {}, {}
for _, ref in ipairs(storedRefs) do stored[ref] = true end
for _, b in ipairs(blobs) do
  live[b[1]] = true
  if not stored[b[1]] then redis.call('HSET', K.blobs, b[1], b[2]) end
end
for _, r in ipairs(refs) do live[r[2]] = true end

-- 2. usage: five counters per (source, model) group, first-seen order in usageorder
local COUNTERS = { 'inputTokens', 'outputTokens', 'cacheReadInputTokens', 'cacheWriteInputTokens', 'reasoningOutputTokens' }
for _, u in ipairs(usage) do
  local group = u[1]
  if redis.call('ZSCORE', K.usageorder, group) == false then
    redis.call('ZADD', K.usageorder, redis.call('ZCARD', K.usageorder), group)
  end
  for i, name in ipairs(COUNTERS) do
    if u[i + 1] ~= '0' then redis.call('HINCRBY', K.usage, group .. ':' .. name, u[i + 1]) end
  end
end

-- 3. graph
if c.graphKind == 'replace_full' then redis.call('DEL', K.nodes, K.parents, K.order) end
for _, n in ipairs(nodes) do
  nodeSeq = nodeSeq + 1
  redis.call('HSET', K.nodes, n[1], n[3])
  if n[2] ~= '' then redis.call('HSET', K.parents, n[1], n[2]) end
  redis.call('ZADD', K.order, fmt(nodeSeq), n[1])
end

-- 4. head
local revision = fmt(actual + 1)
redis.call('HSET', K.head, 'schemaVersion', '1', 'headRevision', revision, 'config', c.config,
  'agentFrames', c.agentFrames, 'currentAgentFrameId', c.currentAgentFrameId, 'checkpointRef', manifest[1],
  'nodeCount', fmt(redis.call('HLEN', K.nodes)), 'nodeSeq', fmt(nodeSeq))
if c.leaf then
  redis.call('HSET', K.head, 'leafNodeId', c.leaf)
elseif h[4] then
  redis.call('HDEL', K.head, 'leafNodeId')
end

-- 5. settle claims (T8): step 6 proved the listed rows are every carrier, so each claim's entry
-- goes at once.
local settled, seen = {}, {}
for _, row in ipairs(completing) do
  if not seen[row] then -- a row listed twice is completed once
    seen[row] = true
    row.claimId = ''
    settled[#settled + 1] = row
  end
end
rows_move(settled, 'completed', now)
for _, comp in ipairs(completions) do redis.call('HDEL', K.claims, comp.claimId) end

-- 6. interrupt deferral (T10)
for _, row in ipairs(interrupted) do row_clear_claim(row) end
rows_move(interrupted, 'deferred_next_turn', now)

-- 7. attachment stamps on existing entries of this session
for _, encAtt in ipairs(attachments) do att_stamp(encAtt, now) end

-- 8. turn stamp, holding the exact result this call returns
local result
if c.turn then
  result = '{"headRevision":' .. revision .. ',"checkpointRef":"' .. manifest[1] .. '","manifest":' .. manifest[2] .. '}'
  redis.call('HSET', K.stamps, c.turn.id, stampPrefix .. fmt(now) .. ',"result":' .. result .. '}')
end

-- 9. fenced release
local released = false
if c.release then
  local r = c.release
  released = lease_release(lease, r[1], r[2], r[3], r[4])
end

-- 10. blob collection: keep exactly what the new head references
local stale = {}
for _, ref in ipairs(storedRefs) do
  if not live[ref] then stale[#stale + 1] = ref end
end
call_chunked('HDEL', K.blobs, stale)

local wake = c.wakes and (#interrupted > 0 or (released and dispatchable(now, c.requeue, true)))
return { 0, wake and 1 or 0, result or tonumber(revision) }
