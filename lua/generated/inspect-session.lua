-- Generated from lua/inspect-session.lua (npm run build); edit that file, not this one.
local K = { lease = KEYS[1], inputs = KEYS[2], states = KEYS[3], claims = KEYS[4], next = KEYS[5], active = KEYS[6], accepted = KEYS[7], genactive = KEYS[8], tomb = KEYS[9], head = KEYS[10], nodes = KEYS[11], dispatch = KEYS[12] }
--[[
  inspect-session: the operator's read-only view of one session (`redis-turn-store inspect`,
  SPEC 11). Writes nothing; src/inspect/inspect-view.ts decodes the reply.

  KEYS[1]  lease
  KEYS[2]  inputs
  KEYS[3]  states
  KEYS[4]  claims
  KEYS[5]  next
  KEYS[6]  active
  KEYS[7]  accepted
  KEYS[8]  genactive
  KEYS[9]  tomb
  KEYS[10] head
  KEYS[11] nodes
  KEYS[12] dispatch   (shard)

  ARGV[1] encoded session id
  ARGV[2] the most non-terminal rows to return (decimal >= 0), lowest enqueueSeq first

  Reply:
    { 0, nowMs, leaseJson, headJson, countsJson, inputId, record, stateEntry, claimEntry, ... }
      nowMs       the store clock the view was read at
      leaseJson   {ownerId, incarnationId, liveness, leaseToken, fencingToken, claimedAtEpochMs,
                   expiresAtEpochMs}, or '' when the session never had a lease
      headJson    {headRevision, nodeCount, leafNodeId, schemaVersion} as stored, or ''
      countsJson  {graphNodes, nonTerminal, next, active, accepted, genactive, tombstones,
                   lastEnqueueSeq, dispatchIndexedAtMs, dispatchableRequeue, dispatchableKeep}
      then four elements per row (up to ARGV[2] non-terminal rows, ascending enqueueSeq): the row
      as list-inputs.lua returns it, and the entry of the claim it carries ('' when none)
]]
-- >>> include dispatchable
-- Shared: whether a session is dispatchable (SPEC 11): no live lease, and rows a turn would take.
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
-- <<< include lease

-- Next-turn input, or in requeue mode also the rows T9 would move.
local function has_dispatchable_rows(requeue)
  if requeue then return redis.call('EXISTS', K.next, K.accepted, K.genactive) > 0 end
  return redis.call('EXISTS', K.next) > 0
end

-- `unleased` when the caller knows no lease is live (it has just released it in this script).
-- <<< include dispatchable
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

-- The generation a claim was taken under, memoised per script in `cache`; nil for none.


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

local max_rows = tonumber(ARGV[2]) or 0
local now = now_ms()

local lease = lease_read()
local lease_json = ''
if lease then
  lease_json = cjson.encode({ ownerId = lease.ownerId, incarnationId = lease.incarnationId,
    liveness = cjson.decode(lease.liveness ~= '' and lease.liveness or '{"kind":"opaque"}'),
    leaseToken = lease.leaseToken, fencingToken = lease.fencingToken, claimedAtEpochMs = lease.claimedAt,
    expiresAtEpochMs = lease.expiresAt })
end

local head_json = ''
local h = redis.call('HMGET', K.head, 'headRevision', 'nodeCount', 'leafNodeId', 'schemaVersion')
if h[1] then
  head_json = cjson.encode({ headRevision = h[1], nodeCount = h[2] or '0', leafNodeId = h[3] or '',
    schemaVersion = h[4] or '' })
end

-- Non-terminal rows: next and accepted are scored by seq; active members embed it.
local seqs, ids = {}, {}
for _, index in ipairs({ K.next, K.accepted }) do
  local flat = redis.call('ZRANGE', index, 0, -1, 'WITHSCORES')
  for i = 1, #flat, 2 do
    seqs[flat[i]] = flat[i + 1]
    ids[#ids + 1] = flat[i]
  end
end
for _, m in ipairs(redis.call('ZRANGE', K.active, 0, -1)) do
  local seq, _, id = active_member_parts(m)
  if id and not seqs[id] then
    seqs[id] = seq
    ids[#ids + 1] = id
  end
end
table.sort(ids, function(a, b) return tonumber(seqs[a]) < tonumber(seqs[b]) end)

local indexed_at = redis.call('ZSCORE', K.dispatch, ARGV[1])
local unleased = not lease_live(lease, now)
local counts = cjson.encode({
  graphNodes = redis.call('HLEN', K.nodes), nonTerminal = #ids, next = redis.call('ZCARD', K.next),
  active = redis.call('ZCARD', K.active), accepted = redis.call('ZCARD', K.accepted),
  genactive = redis.call('ZCARD', K.genactive), tombstones = redis.call('LLEN', K.tomb),
  lastEnqueueSeq = tonumber(redis.call('HGET', K.lease, 'lastEnqueueSeq') or '0'),
  dispatchIndexedAtMs = indexed_at and tonumber(indexed_at) or cjson.null,
  dispatchableRequeue = unleased and has_dispatchable_rows(true),
  dispatchableKeep = unleased and has_dispatchable_rows(false),
})

local out = { 0, fmt(now), lease_json, head_json, counts }
for i, id in ipairs(ids) do
  if i > max_rows then break end
  local entry = redis.call('HGET', K.states, id)
  local row = entry and row_parse(id, entry) or row_fresh(id, seqs[id])
  row_reply(out, row)
  out[#out + 1] = row.claimId ~= '' and (redis.call('HGET', K.claims, row.claimId) or '') or ''
end
return out
