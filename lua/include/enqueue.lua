-- Shared by enqueue-input (next_turn drafts) and enqueue-active-input (active_turn drafts):
-- SPEC 5.1, the source-key lookup, the record and the enqueueSeq counter.
-- @include row-format

-- The reply for a source key that names a row in any state (the client compares content), or nil.
local function enqueue_existing(source_key)
  if source_key == '' then return nil end
  local id = redis.call('HGET', K.src, source_key)
  local record = id and redis.call('HGET', K.inputs, id)
  if record then return { 0, 'existing', id, record, redis.call('HGET', K.states, id) or '' } end
  return nil
end

-- The live lease generation (text; nil when no lease is live) and the new row's enqueueSeq (text).
local function enqueue_lease(now)
  local l = redis.call('HMGET', K.lease, 'leaseToken', 'expiresAtEpochMs', 'fencingToken', 'lastEnqueueSeq')
  local gen = nil
  if l[1] and l[1] ~= '' and tonumber(l[2] or '0') > now then gen = l[3] end
  return gen, fmt(tonumber(l[4] or '0') + 1)
end

-- Writes the record (HSETNX is the id check and the first write), the seq counter and the source
-- key. Returns the PendingTurnInputIdConflict reply when the id exists (nothing written), else nil.
-- ARGV[2..5]: input id, payload, record members, source key.
local function enqueue_record(seq, now, state, gen)
  local record = '{"seq":' .. seq .. ',"at":' .. fmt(now) .. ',"enqueuedAs":"' .. state .. '",' .. ARGV[4]
    .. (gen and (',"enqueueGen":' .. gen) or '') .. ',"input":' .. ARGV[3] .. '}'
  if redis.call('HSETNX', K.inputs, ARGV[2], record) == 0 then
    return fail(E.PendingTurnInputIdConflict, { sessionId = session_raw(), inputId = ARGV[2] })
  end
  redis.call('HSET', K.lease, 'lastEnqueueSeq', seq)
  if ARGV[5] ~= '' then redis.call('HSET', K.src, ARGV[5], ARGV[2]) end
  return nil
end

-- A new deferred_next_turn row (T1, T3): its `next` entry, a state entry only when source-keyed
-- (row-format.lua), and the session in the dispatch index.
local function enqueue_as_next(seq, now, gen)
  if ARGV[5] ~= '' then
    local row = row_fresh(ARGV[2], seq)
    row.gen = gen ~= nil
    row.sourceKey = ARGV[5]
    row_save(row)
  end
  redis.call('ZADD', K.next, seq, ARGV[2])
  redis.call('ZADD', K.dispatch, 'NX', fmt(now), ARGV[1])
end

-- The queue cap (issue 18): the reply refusing a new row when the session already holds `limit`
-- (decimal text, '' for none) non-terminal rows, else nil. Needs K.next, K.active, K.accepted.
local function enqueue_over_cap(limit)
  if limit == '' then return nil end
  local n = redis.call('ZCARD', K.next) + redis.call('ZCARD', K.active) + redis.call('ZCARD', K.accepted)
  if n >= tonumber(limit) then
    return fail(E.PendingTurnInputQueueFull, { sessionId = session_raw(), limit = tonumber(limit) })
  end
  return nil
end

-- pendingTtlMs (issue 18): the new row's expiry deadline in K.expiry, `ttl` decimal text ('' none).
local function enqueue_expiry(now, ttl)
  if ttl ~= '' then redis.call('ZADD', K.expiry, fmt(now + tonumber(ttl)), ARGV[2]) end
end

-- The session's last activity (idle-session expiry, SPEC 8.5), when the store tracks it.
local function enqueue_activity(now)
  if K.activity then redis.call('ZADD', K.activity, 'GT', fmt(now), ARGV[1]) end
end
