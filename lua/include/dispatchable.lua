-- Shared: whether a session is dispatchable (SPEC 11): no live lease, and rows a turn would take.
-- @include lease

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
