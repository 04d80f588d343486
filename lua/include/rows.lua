-- Shared: input rows and their indexes (docs/KEYS.md).
--
-- A row lives in K.inputs under its enqueueSeq (decimal) as JSON:
--   inputId, seq, state, ingress (current), origIngress (only once rewritten), sourceKey?,
--   enqueuedAtMs, enqueueGen? (generation live at enqueue), claimFencingToken? (counter, absent = 0),
--   claimId?, claimToken?, claimOwner?, claimGen?, claimedAtMs?, claimExpiresAtMs?, terminalAtMs?
-- Its payload lives in K.payloads under the same seq, written once, never decoded here.
--
-- Index invariant, by state (maintained only through row_set_state / row_index_*):
--   pending_active      -> K.active (lex member "<pct(turnId)>:<seq 16 digits>:<a|b>")
--                          and K.genactive (score seq) when the row has enqueueGen
--   deferred_next_turn  -> K.next (score seq)
--   accepted            -> K.accepted (score seq)
--   cancelled/completed -> K.tomb (score terminalAtMs), and the session in the shard K.tombs
-- A session is added to the shard dispatch index whenever a row enters deferred_next_turn or
-- accepted, so the sweeper can never miss dispatchable input.

local function row_get(seq)
  local raw = redis.call('HGET', K.inputs, seq)
  if not raw then return nil end
  return cjson.decode(raw)
end

-- Reads the rows of a list of seqs into a cache (seq -> row, or false when missing), so every
-- decode happens before the first write and a repeated target sees earlier effects.
local function row_cached(cache, seq)
  if not seq then return false end
  local hit = cache[seq]
  if hit == nil then
    hit = row_get(seq) or false
    cache[seq] = hit
  end
  return hit
end

-- Stores the row and returns the JSON it stored (callers reply with it instead of encoding twice).
local function row_put(row)
  local json = cjson.encode(row)
  redis.call('HSET', K.inputs, fmt(row.seq), json)
  return json
end

local function row_active_member(row)
  local b = 'a'
  if row.ingress.minBoundary == 'before_completion' then b = 'b' end
  return pct(row.ingress.turnId) .. ':' .. string.format('%016d', row.seq) .. ':' .. b
end

local function row_index_remove(row)
  local s = row.state
  local m = fmt(row.seq)
  if s == 'pending_active' then
    redis.call('ZREM', K.active, row_active_member(row))
    redis.call('ZREM', K.genactive, m)
  elseif s == 'deferred_next_turn' then
    redis.call('ZREM', K.next, m)
  elseif s == 'accepted' then
    redis.call('ZREM', K.accepted, m)
  else
    redis.call('ZREM', K.tomb, m)
  end
end

local function row_index_add(row, now)
  local s = row.state
  local m = fmt(row.seq)
  if s == 'pending_active' then
    redis.call('ZADD', K.active, 0, row_active_member(row))
    if row.enqueueGen then redis.call('ZADD', K.genactive, row.seq, m) end
  elseif s == 'deferred_next_turn' then
    redis.call('ZADD', K.next, row.seq, m)
    redis.call('ZADD', K.dispatch, 'NX', now, ENC_SESSION)
  elseif s == 'accepted' then
    redis.call('ZADD', K.accepted, row.seq, m)
    redis.call('ZADD', K.dispatch, 'NX', now, ENC_SESSION)
  else
    redis.call('ZADD', K.tomb, row.terminalAtMs, m)
    -- NX keeps the oldest tombstone time: vacuum visits the session once its oldest is due.
    redis.call('ZADD', K.tombs, 'NX', row.terminalAtMs, ENC_SESSION)
  end
end

local function row_has_claim(row)
  return row.claimId ~= nil and row.claimToken ~= nil
end

-- K.claims holds, per claim id, how many rows still carry it: set by the claim that mints the id
-- (ids are never minted twice: they embed the first row's seq and its never-reset counter) and
-- decremented here, the only place a claim is ever removed from a row. A commit can then prove
-- "no unlisted row carries C" in O(1) instead of walking the claim's index.
local function claim_register(claimId, rowCount)
  redis.call('HSET', K.claims, claimId, rowCount)
end

local function claim_carriers(claimId)
  return tonumber(redis.call('HGET', K.claims, claimId) or '0')
end

-- Clearing a claim removes every claim field except the counter. Call it in the write phase only.
local function row_clear_claim(row)
  if row.claimId ~= nil then
    if redis.call('HINCRBY', K.claims, row.claimId, -1) <= 0 then
      redis.call('HDEL', K.claims, row.claimId)
    end
  end
  row.claimId = nil
  row.claimToken = nil
  row.claimOwner = nil
  row.claimGen = nil
  row.claimedAtMs = nil
  row.claimExpiresAtMs = nil
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
  end
end

-- Moves a row to a new state, keeping every index true. Tombstones get terminalAtMs = now.
-- Returns the stored JSON (row_put).
local function row_set_state(row, state, now)
  row_index_remove(row)
  row.state = state
  if state == 'cancelled' or state == 'completed' then
    row.terminalAtMs = now
    row_clear_claim(row)
  elseif state == 'deferred_next_turn' then
    row_defer_ingress(row)
  end
  row_index_add(row, now)
  return row_put(row)
end

-- The seq of an input id or source key, or nil.
local function row_seq_by_id(inputId)
  return redis.call('HGET', K.ids, inputId)
end
local function row_seq_by_source(sourceKey)
  return redis.call('HGET', K.src, sourceKey)
end

-- The reply form of a row: its JSON (as stored; `json` when the caller has just stored it) and
-- its payload, for the client to assemble.
local function row_reply(row, out, json)
  out[#out + 1] = json or cjson.encode(row)
  out[#out + 1] = redis.call('HGET', K.payloads, fmt(row.seq)) or 'null'
end

-- T9: a fresh generation requeues accepted rows and pending_active rows enqueued under a
-- generation (every earlier generation is dead now). Returns how many rows moved.
local function requeue_stranded(now)
  local moved = 0
  for _, idx in ipairs({ K.accepted, K.genactive }) do
    local seqs = redis.call('ZRANGE', idx, 0, -1)
    for _, m in ipairs(seqs) do
      local row = row_get(m)
      if row then
        row_clear_claim(row)
        row_set_state(row, 'deferred_next_turn', now)
        moved = moved + 1
      end
    end
  end
  return moved
end

-- Dispatchable (SPEC 11): no live lease and next-turn input, or (requeue) rows T9 would move.
-- `unleased` when the caller has just released the lease in this script (no lease to read).
local function dispatchable(now, requeue, unleased)
  if not unleased and live_generation(now) ~= nil then return false end
  if redis.call('ZCARD', K.next) > 0 then return true end
  if requeue then
    return redis.call('ZCARD', K.accepted) > 0 or redis.call('ZCARD', K.genactive) > 0
  end
  return false
end
