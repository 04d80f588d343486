-- Shared: input rows and their indexes (docs/KEYS.md).
--
-- A row lives in K.inputs under its input id, as one JSON object whose last member is the input
-- exactly as the client serialised it: {<static>[<dynamic>],"input":<payload>}. Lua splits at the
-- first `,"input":` (no other key is named input, and a quote inside a JSON string is always
-- escaped, so the split is exact) and never decodes the payload (SPEC 10.6). Keeping the payload
-- in the row saves a second hash entry per input; a rewrite copies it as an opaque string.
--
-- The static part, written at enqueue: seq, at (enqueuedAtMs), scope, turnId?, minBoundary? (the
-- current ingress, flattened), orig? (the original ingress once rewritten), sourceKey?,
-- inputHash?, enqueueGen?. Only a deferral rewrites it (the ingress); every other write copies it
-- verbatim, so it is decoded but never re-encoded on the hot paths.
--
-- The dynamic part, absent until the row's first transition and always in this order, starting
-- with the state: ,"state":"<state>"[,"claimFencingToken":N][,"terminalAtMs":T]
-- [,"claimId":"tic:..","claimToken":"<hex>","claimOwner":"<owner JSON as a string>","claimGen":G,
-- "claimedAtMs":T,"claimExpiresAtMs":T]. It is built by concatenation (cjson.encode spends most
-- of a claim's Redis CPU on these numbers otherwise, bench/RESULTS.md). Without it the state is
-- the one the scope implies (next_turn -> deferred_next_turn, active_turn -> pending_active).
--
-- row_get turns that into the table the scripts use: inputId, seq, state, ingress, origIngress,
-- enqueuedAtMs, the other fields under their stored names, static (the static part's text, while
-- still valid) and tail (`,"input":<payload>}` as stored). A claim sets claimOwnerJson, the owner's string literal.
--
-- Index invariant, by state (maintained only through row_set_state / row_index_*); members are
-- input ids:
--   pending_active      -> K.active (lex member "<pct(turnId)>:<seq 16 digits>:<a|b>:<inputId>"),
--                          K.genactive (score seq) when the row has enqueueGen, and K.byseq
--   deferred_next_turn  -> K.next (score seq)
--   accepted            -> K.accepted (score seq) and K.byseq
--   cancelled/completed -> K.tomb (score terminalAtMs), the session in the shard K.tombs, K.byseq
-- so every row is in exactly one of K.next and K.byseq (both scored by seq: suffix cancel merges
-- them). A session is added to the shard dispatch index whenever a row enters deferred_next_turn
-- or accepted, so the sweeper can never miss dispatchable input.

-- K.tomb and K.byseq hold PIN, at score -inf, once their session has had 32 inputs (seq_pins):
-- below every time and seq the scripts read (their ranges start at '(-inf' or at a seq), and no
-- input id can equal it (ids are UTF-8 text, which never holds a 0xFF byte). Why: a member longer
-- than zset-max-listpack-value (64 bytes by default) keeps a sorted set in its skiplist encoding.
-- In a listpack each insert scans the whole set twice (to find the member, then its place), and
-- tombstones and seqs arrive in ascending order, so every one lands at the end: at 50-100
-- tombstones that was about a third of a 10-row commit's Redis instructions (bench/RESULTS.md).
-- Below 32 inputs a session has fewer than 32 tombstones, the scan is cheap and the listpack's
-- smaller memory is kept. A ZADD that may add a row of seq 32 or more sends PIN along (a no-op once
-- it is there); vacuum and a deferral delete a set left holding PIN alone.
local PIN = '\255 pin: keeps this sorted set skiplist-encoded, see docs/KEYS.md; never an input id'

-- Whether a row's seq (decimal text, no leading zeros) is 32 or more: its ZADDs send PIN.
local function seq_pins(seq)
  return #seq > 2 or (#seq == 2 and seq >= '32')
end

-- Adds one row (`seq` its seq as text) to K.tomb or K.byseq, with PIN when seq_pins says so.
local function pinned_zadd(key, seq, score, member)
  if seq_pins(seq) then
    redis.call('ZADD', key, '-inf', PIN, score, member)
  else
    redis.call('ZADD', key, score, member)
  end
end

local function row_implied_state(scope)
  if scope == 'next_turn' then return 'deferred_next_turn' end
  return 'pending_active'
end

-- An integer for the dynamic part: numbers read back by patterns stay the strings they were.
local function row_int(n)
  if type(n) == 'string' then return n end
  return string.format('%d', n)
end

-- The parts of a stored value: the position of `,"input":`, the meta text before it, and the
-- position in the meta where the dynamic part starts (nil when there is none). The state marker is
-- searched in the meta only, never in the payload. nil when the value is not in that form.
local function row_parts(raw)
  local at = string.find(raw, ',"input":', 1, true)
  if not at then return nil end
  local meta = string.sub(raw, 1, at - 1)
  return at, meta, string.find(meta, ',"state":"', 1, true)
end

-- The static part as text, seq first (row_text reads it there); the one writer of it, for the
-- enqueue and for a row whose ingress a deferral rewrote. `orig` is an ingress table or nil.
local function row_static_text(seq, at, scope, turnId, minBoundary, orig, sourceKey, inputHash, enqueueGen)
  local out = '{"seq":' .. row_int(seq) .. ',"at":' .. row_int(at) .. ',"scope":"' .. scope .. '"'
  if scope == 'active_turn' then
    out = out .. ',"turnId":' .. cjson.encode(turnId) .. ',"minBoundary":"' .. minBoundary .. '"'
  end
  if orig then
    out = out .. ',"orig":{"scope":"' .. orig.scope .. '"'
    if orig.scope == 'active_turn' then
      out = out .. ',"turnId":' .. cjson.encode(orig.turnId) .. ',"minBoundary":"' .. orig.minBoundary .. '"'
    end
    out = out .. '}'
  end
  if sourceKey then out = out .. ',"sourceKey":' .. cjson.encode(sourceKey) .. ',"inputHash":"' .. inputHash .. '"' end
  if enqueueGen then out = out .. ',"enqueueGen":' .. row_int(enqueueGen) end
  return out
end

-- A claim's fields as text, in the dynamic part's order. claimId (tic:<n>:<n>) and the token (hex,
-- made by the store) need no escaping; `ownerJson` is the owner's JSON string literal.
local function row_claim_text(claimId, token, ownerJson, gen, claimedAt, expiresAt)
  return ',"claimId":"' .. claimId .. '","claimToken":"' .. token .. '","claimOwner":' .. ownerJson
    .. ',"claimGen":' .. row_int(gen) .. ',"claimedAtMs":' .. row_int(claimedAt) .. ',"claimExpiresAtMs":'
    .. row_int(expiresAt)
end

-- A whole stored value: the static part, the dynamic part (see the top of this file; `claimText`
-- from row_claim_text, or nil) and the tail (`,"input":<payload>}`), in one concatenation: this
-- runs for every row a claim or a commit writes, and each intermediate string is a copy.
local function row_value_text(static, state, counter, terminalAt, claimText, tail)
  return static .. ',"state":"' .. state .. '"' .. (counter and ',"claimFencingToken":' .. row_int(counter) or '')
    .. (terminalAt and ',"terminalAtMs":' .. row_int(terminalAt) or '') .. (claimText or '') .. tail
end

-- A stored value as a row table, or nil when it is not in the documented form.
local function row_decode(inputId, raw)
  local at, meta, d = row_parts(raw)
  if not at then return nil end
  local row = cjson.decode(meta .. '}')
  -- The static part is kept as text so writes can copy it instead of encoding it again.
  row.static = d and string.sub(meta, 1, d - 1) or meta
  row.inputId = inputId
  row.tail = string.sub(raw, at)
  local ingress = { scope = row.scope }
  if row.scope == 'active_turn' then
    ingress.turnId = row.turnId
    ingress.minBoundary = row.minBoundary
  end
  row.ingress = ingress
  row.origIngress = row.orig
  row.enqueuedAtMs = row.at
  row.scope, row.turnId, row.minBoundary, row.orig, row.at = nil, nil, nil, nil, nil
  if not row.state then row.state = row_implied_state(ingress.scope) end
  return row
end

-- The hot paths (a next-turn claim of rows that carry no claim, the completion of claimed rows)
-- work on a stored value as text, with no JSON decoding and no row table: a text row (`text` set)
-- holds the stored value (raw), the position of `,"input":` in it (at) and of the dynamic part (d,
-- nil when none), the static part, the tail from `,"input":` to the end, the seq, and the state and
-- counter read from the dynamic part's fixed head. nil when the value is not in that form; callers
-- then take the general path (row_decode). Searches run on raw and count only below `at`, so no
-- meta or dynamic substring is made (each new string costs Redis a hash of all its bytes).
local function row_text(raw)
  local at = string.find(raw, ',"input":', 1, true)
  if not at then return nil end
  local seq = string.match(raw, '^{"seq":(%d+),')
  if not seq then return nil end
  -- The state marker is never in the static part (its strings are JSON-encoded), so its first
  -- occurrence is the dynamic part's when that exists, else in the payload or nowhere.
  local d = string.find(raw, ',"state":"', 1, true)
  if not d or d > at then
    return { text = true, raw = raw, at = at, static = string.sub(raw, 1, at - 1), tail = string.sub(raw, at), seq = seq }
  end
  local state, counter = string.match(raw, '^,"state":"([%a_]+)","claimFencingToken":(%d+)', d)
  if not state then return nil end
  return { text = true, raw = raw, at = at, d = d, static = string.sub(raw, 1, d - 1), tail = string.sub(raw, at),
    state = state, counter = counter, seq = seq }
end

-- Whether `needle` occurs in a text row's dynamic part: wholly before the payload (a caller's
-- token could otherwise run on into it).
local function row_text_dynamic_has(t, needle)
  if not t.d then return false end
  local p = string.find(t.raw, needle, t.d, true)
  return p ~= nil and p + #needle <= t.at
end

-- Whether a row read by row_text carries exactly this claim id and token (a claim's fields are
-- written in one fixed run; tokens are hex and claim ids tic:<n>:<n>, so a plain find is exact).
local function row_text_carries(t, claimId, token)
  return row_text_dynamic_has(t, ',"claimId":"' .. claimId .. '","claimToken":"' .. token .. '","')
end

-- Whether a row read by row_text is a next-turn row that carries no claim (so any claim may take
-- it): untouched and of next_turn scope, or deferred_next_turn with no claim fields.
local function row_text_unclaimed_next(t)
  if not t.d then return string.find(t.static, ',"scope":"next_turn"', 1, true) ~= nil end
  return t.state == 'deferred_next_turn' and not row_text_dynamic_has(t, ',"claimId":"')
end

local function row_get(inputId)
  local raw = redis.call('HGET', K.inputs, inputId)
  if not raw then return nil end
  return row_decode(inputId, raw)
end

-- Reads the rows of a list of ids into a cache (id -> row, or false when missing), so every
-- decode happens before the first write and a repeated target sees earlier effects.
local function row_cached(cache, inputId)
  if not inputId then return false end
  local hit = cache[inputId]
  if hit == nil then
    hit = row_get(inputId) or false
    cache[inputId] = hit
  end
  return hit
end

-- The stored form of a row (see the top of this file): the static part as read unless a deferral
-- changed it, then the dynamic part.
local function row_encode(row)
  if not row.static then
    local ingress = row.ingress
    row.static = row_static_text(row.seq, row.enqueuedAtMs, ingress.scope, ingress.turnId, ingress.minBoundary,
      row.origIngress, row.sourceKey, row.inputHash, row.enqueueGen)
  end
  local claim
  if row.claimId then
    claim = row_claim_text(row.claimId, row.claimToken, row.claimOwnerJson or cjson.encode(row.claimOwner),
      row.claimGen, row.claimedAtMs, row.claimExpiresAtMs)
  end
  return row_value_text(row.static, row.state, row.claimFencingToken, row.terminalAtMs, claim, row.tail)
end

-- Stores the row and returns the value it stored (callers reply with it instead of encoding twice).
local function row_put(row)
  local value = row_encode(row)
  redis.call('HSET', K.inputs, row.inputId, value)
  return value
end

-- The `active` member of a pending_active row (docs/KEYS.md).
local function active_member(turnId, minBoundary, seq, inputId)
  local b = 'a'
  if minBoundary == 'before_completion' then b = 'b' end
  return pct(turnId) .. ':' .. string.format('%016d', seq) .. ':' .. b .. ':' .. inputId
end

local function row_active_member(row)
  return active_member(row.ingress.turnId, row.ingress.minBoundary, row.seq, row.inputId)
end

-- The seq and input id of an `active` member (pct() never emits ':').
local ACTIVE_MEMBER = '^[^:]*:(%d+):[ab]:(.*)$'

-- The input id at the end of an `active` member.
local function active_member_id(member)
  local _, id = string.match(member, ACTIVE_MEMBER)
  return id
end

-- Ordered id lists merged from index reads, each id once: `acc` is { ids = {}, seq = {} }.
-- ids_add_scored takes a WITHSCORES reply of a seq-scored index (next, accepted, byseq);
-- ids_add_active takes `active` members, which embed the seq.
local function ids_add_scored(acc, flat)
  for i = 1, #flat, 2 do
    local id = flat[i]
    if not acc.seq[id] then
      acc.seq[id] = tonumber(flat[i + 1])
      acc.ids[#acc.ids + 1] = id
    end
  end
end

local function ids_add_active(acc, members)
  for _, m in ipairs(members) do
    local seq, id = string.match(m, ACTIVE_MEMBER)
    if id and not acc.seq[id] then
      acc.seq[id] = tonumber(seq)
      acc.ids[#acc.ids + 1] = id
    end
  end
end

local function ids_in_seq_order(acc)
  local seq = acc.seq
  table.sort(acc.ids, function(a, b) return seq[a] < seq[b] end)
  return acc.ids
end

local function row_index_remove(row)
  local s = row.state
  local id = row.inputId
  if s == 'pending_active' then
    redis.call('ZREM', K.active, row_active_member(row))
    if row.enqueueGen then redis.call('ZREM', K.genactive, id) end
  elseif s == 'deferred_next_turn' then
    redis.call('ZREM', K.next, id)
  elseif s == 'accepted' then
    redis.call('ZREM', K.accepted, id)
  else
    redis.call('ZREM', K.tomb, id)
  end
end

-- Scores and times go to redis.call as text: a number argument costs Redis a "%.17g" print (a
-- few thousand instructions each, bench/RESULTS.md).
local function row_index_add(row, now)
  local s = row.state
  local id = row.inputId
  if s == 'pending_active' then
    redis.call('ZADD', K.active, '0', row_active_member(row))
    if row.enqueueGen then redis.call('ZADD', K.genactive, row_int(row.seq), id) end
  elseif s == 'deferred_next_turn' then
    redis.call('ZADD', K.next, row_int(row.seq), id)
    redis.call('ZADD', K.dispatch, 'NX', row_int(now), ENC_SESSION)
  elseif s == 'accepted' then
    redis.call('ZADD', K.accepted, row_int(row.seq), id)
    redis.call('ZADD', K.dispatch, 'NX', row_int(now), ENC_SESSION)
  else
    local at = row_int(row.terminalAtMs)
    pinned_zadd(K.tomb, row_int(row.seq), at, id)
    -- NX keeps the oldest tombstone time: vacuum visits the session once its oldest is due.
    redis.call('ZADD', K.tombs, 'NX', at, ENC_SESSION)
  end
end

local function row_has_claim(row)
  return row.claimId ~= nil and row.claimToken ~= nil
end

-- K.claims holds, per claim id, how many rows still carry it: set by the claim that mints the id
-- (ids are never minted twice: they embed the first row's seq and its never-reset counter) and
-- decremented whenever a row loses it (row_clear_claim; a commit that completes every carrier
-- deletes the entry at once). A commit can then prove "no unlisted row carries C" in O(1).
-- A carrier count as K.claims stores it (an integer's text; HINCRBY writes no other form). Most
-- claims carry one row, whose text needs no formatting.
local function claim_count_text(n)
  if n == 1 then return '1' end
  return string.format('%d', n)
end

local function claim_register(claimId, rowCount)
  redis.call('HSET', K.claims, claimId, claim_count_text(rowCount))
end

-- Whether exactly n rows carry the claim, compared as text (no number conversion).
local function claim_carried_by(claimId, n)
  return (redis.call('HGET', K.claims, claimId) or '0') == claim_count_text(n)
end

-- Sets a decoded row's claim fields, every one but the counter, without touching K.claims; with
-- no arguments it removes them. `ownerJson` is the owner's JSON string literal (row_claim_text).
local function row_set_claim_fields(row, claimId, token, ownerJson, gen, claimedAt, expiresAt)
  row.claimId = claimId
  row.claimToken = token
  row.claimOwner = nil
  row.claimOwnerJson = ownerJson
  row.claimGen = gen
  row.claimedAtMs = claimedAt
  row.claimExpiresAtMs = expiresAt
end

-- Clearing a claim removes every claim field except the counter. Call it in the write phase only.
local function row_clear_claim(row)
  if row.claimId ~= nil then
    if redis.call('HINCRBY', K.claims, row.claimId, -1) <= 0 then
      redis.call('HDEL', K.claims, row.claimId)
    end
  end
  row_set_claim_fields(row)
end

-- A claim is live when the row carries it and its generation holds a live lease (SPEC 3.4).
local function row_claim_live(row, liveGen)
  return row_has_claim(row) and liveGen ~= nil and row.claimGen == liveGen
end

-- Rewrites the stored ingress to next_turn, keeping the original for source-key replays.
local function row_defer_ingress(row)
  if row.ingress.scope ~= 'next_turn' then
    if not row.origIngress then row.origIngress = row.ingress end
    row.ingress = { scope = 'next_turn' }
    row.static = nil -- re-encoded by row_encode
  end
end

-- Moves a row to a new state, keeping every index true. Tombstones get terminalAtMs = now and
-- lose their claim (`keepClaimCount`: the caller settles K.claims itself, as a commit that
-- completes every carrier of a claim does). Returns the stored value (row_put). Lazy: the hot
-- paths (a next-turn claim, completing claimed rows) write text rows without it.
-- @lazy
local function row_set_state(row, state, now, keepClaimCount)
  local was = row.state
  row_index_remove(row)
  row.state = state
  if state == 'cancelled' or state == 'completed' then
    row.terminalAtMs = now
    if keepClaimCount then row_set_claim_fields(row) else row_clear_claim(row) end
  elseif state == 'deferred_next_turn' then
    row_defer_ingress(row)
  end
  row_index_add(row, now)
  if was == 'deferred_next_turn' and state ~= was then
    local seq = row_int(row.seq)
    pinned_zadd(K.byseq, seq, seq, row.inputId)
  elseif state == 'deferred_next_turn' and was ~= state then
    redis.call('ZREM', K.byseq, row.inputId)
    -- No row left (PIN alone, if pinned): drop the set with its PIN.
    if redis.call('ZCOUNT', K.byseq, '(-inf', '+inf') == 0 then redis.call('DEL', K.byseq) end
  end
  return row_put(row)
end

-- Variadic writes for many rows at once (one call instead of one per row; none for no items), in
-- chunks so no call carries more arguments than Lua's C stack allows.
local function call_chunked(command, key, items)
  local n = #items
  if n <= 500 then
    if n > 0 then redis.call(command, key, unpack(items)) end -- the usual case: one call, no bounds
    return
  end
  for i = 1, n, 500 do
    redis.call(command, key, unpack(items, i, math.min(i + 499, n)))
  end
end

-- T8 for claimed rows read by row_text (state deferred_next_turn or accepted, carrying the claim
-- being completed): the same indexes and stored form as row_set_state(row, 'completed', now,
-- true) gives, written as text with one call per index for all of them. The caller settles
-- K.claims.
local function rows_text_complete(rows, now)
  local nowText = fmt(now)
  if #rows == 1 then
    -- One row (the usual turn): the same moves as below without the argument tables, which cost
    -- a commit about 20k instructions (npm run bench:instructions).
    local t = rows[1]
    local id = t.inputId
    if t.state == 'deferred_next_turn' then
      redis.call('ZREM', K.next, id)
      pinned_zadd(K.byseq, t.seq, t.seq, id)
    else
      redis.call('ZREM', K.accepted, id)
    end
    pinned_zadd(K.tomb, t.seq, nowText, id)
    redis.call('ZADD', K.tombs, 'NX', nowText, ENC_SESSION)
    redis.call('HSET', K.inputs, id, row_value_text(t.static, 'completed', t.counter, nowText, nil, t.tail))
    t.state = 'completed'
    return
  end
  local pin = false
  for _, t in ipairs(rows) do
    if seq_pins(t.seq) then
      pin = true
      break
    end
  end
  local nextIds, acceptedIds, byseq, tomb, values = {}, {}, {}, {}, {}
  if pin then byseq, tomb = { '-inf', PIN }, { '-inf', PIN } end
  local first = #byseq
  for _, t in ipairs(rows) do
    if t.state ~= 'completed' then -- a row listed twice is completed once
      local id = t.inputId
      if t.state == 'deferred_next_turn' then
        nextIds[#nextIds + 1] = id
        byseq[#byseq + 1] = t.seq
        byseq[#byseq + 1] = id
      else
        acceptedIds[#acceptedIds + 1] = id
      end
      tomb[#tomb + 1] = nowText
      tomb[#tomb + 1] = id
      values[#values + 1] = id
      values[#values + 1] = row_value_text(t.static, 'completed', t.counter, nowText, nil, t.tail)
      t.state = 'completed'
    end
  end
  if #values == 0 then return end
  call_chunked('ZREM', K.next, nextIds)
  call_chunked('ZREM', K.accepted, acceptedIds)
  if #byseq > first then call_chunked('ZADD', K.byseq, byseq) end
  call_chunked('ZADD', K.tomb, tomb)
  redis.call('ZADD', K.tombs, 'NX', nowText, ENC_SESSION)
  call_chunked('HSET', K.inputs, values)
end

-- The input id a source key names, or nil.
local function row_id_by_source(sourceKey)
  return redis.call('HGET', K.src, sourceKey)
end

-- The reply form of a row: its input id and its stored value (meta and payload; `value` when the
-- caller has just stored it), for the client to decode.
local function row_reply(row, out, value)
  out[#out + 1] = row.inputId
  out[#out + 1] = value or row_encode(row)
end

-- T9: a fresh generation requeues accepted rows and pending_active rows enqueued under a
-- generation (every earlier generation is dead now). Returns how many rows moved. Lazy: every
-- fresh acquisition checks, few find rows to move.
-- @lazy
local function requeue_stranded_rows(now)
  local moved = 0
  for _, idx in ipairs({ K.accepted, K.genactive }) do
    local ids = redis.call('ZRANGE', idx, 0, -1)
    for _, id in ipairs(ids) do
      local row = row_get(id)
      if row then
        row_clear_claim(row)
        row_set_state(row, 'deferred_next_turn', now)
        moved = moved + 1
      end
    end
  end
  return moved
end

local function requeue_stranded(now)
  if redis.call('EXISTS', K.accepted, K.genactive) == 0 then return 0 end
  return requeue_stranded_rows(now)
end

-- Whether the session has rows a turn would take: next-turn input, or (requeue) rows T9 would move.
local function has_dispatchable_rows(requeue)
  if requeue then return redis.call('EXISTS', K.next, K.accepted, K.genactive) > 0 end
  return redis.call('EXISTS', K.next) > 0
end

-- Dispatchable (SPEC 11): no live lease and has_dispatchable_rows. `unleased` when the caller
-- has just released the lease in this script (no lease to read).
local function dispatchable(now, requeue, unleased)
  if not unleased and live_generation(now) ~= nil then return false end
  return has_dispatchable_rows(requeue)
end
