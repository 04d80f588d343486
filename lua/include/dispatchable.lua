-- Shared: whether a session is dispatchable (SPEC 11): no live lease, and rows a turn would take.
-- @include lease
-- @include row-format

-- Next-turn input, or in requeue mode also the rows T9 would move (K.nogen aside: nogen_due).
local function has_dispatchable_rows(requeue)
  if requeue then return redis.call('EXISTS', K.next, K.accepted, K.genactive) > 0 end
  return redis.call('EXISTS', K.next) > 0
end

-- `unleased` when the caller knows no lease is live (it has just released it in this script).
local function dispatchable(now, requeue, unleased)
  if not unleased and live_generation(now) ~= nil then return false end
  return has_dispatchable_rows(requeue)
end

-- Requeue mode: whether K.nogen holds a row past its grace deadline that is still pending_active
-- without a generation, one the next acquisition requeues (T9). Members whose row moved on since
-- (claimed, cancelled, deferred, vacuumed) are passed over, and removed when `clean`. Looks at the
-- 100 oldest deadlines; a sweep that cleans makes progress past stale ones.
local function nogen_due(now, clean)
  local stale, found = {}, false
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', K.nogen, '-inf', fmt(now), 'LIMIT', 0, 100)) do
    local entry = redis.call('HGET', K.states, id)
    local row = entry and row_parse(id, entry)
    if row and row.state == 'pending_active' and not row.gen then
      found = true
      break
    end
    stale[#stale + 1] = id
  end
  if clean and #stale > 0 then call_chunked('ZREM', K.nogen, stale) end
  return found
end

-- dispatchable, counting K.nogen rows past their deadline (release and abandon, which may run after
-- a lease expired, when such rows can exist; a commit's fence proves none do in requeue mode).
local function dispatchable_or_due(now, requeue, unleased)
  if not unleased and live_generation(now) ~= nil then return false end
  return has_dispatchable_rows(requeue) or (requeue and nogen_due(now, false))
end
