-- Shared: how the claims of an interrupted generation settle (SPEC 3.9), apart from the plain
-- abandon rules so both can change independently.
-- @include common

-- The lease's interrupt mark { gen (text), policy }, or nil when none was ever set.
local function interrupt_mark_read()
  local m = redis.call('HMGET', K.lease, 'interruptGen', 'interruptPolicy')
  if not m[1] then return nil end
  return { gen = m[1], policy = m[2] or 'interrupt' }
end

-- A row of an interrupted generation's claim, its claim already cleared: 'rollback' cancels it,
-- 'interrupt' leaves a next-turn row in place (T7) and sends an accepted row to the next turn
-- (its turn is over), keeping its enqueueSeq either way.
local function interrupt_settle(row, policy, to_next, to_cancel)
  if policy == 'rollback' then
    to_cancel[#to_cancel + 1] = row
  elseif row.state == 'accepted' then
    to_next[#to_next + 1] = row
  else
    row_save(row)
  end
end
