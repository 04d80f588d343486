-- Shared: T9, the requeue of stranded rows when a fresh lease generation starts.
-- @include row-index

-- Requeues accepted rows and pending_active rows enqueued under a generation (every earlier
-- generation is dead now), claims cleared. Returns how many rows moved.
local function requeue_stranded(now)
  if redis.call('EXISTS', K.accepted, K.genactive) == 0 then return 0 end
  local moved = 0
  for _, index in ipairs({ K.accepted, K.genactive }) do
    for _, id in ipairs(redis.call('ZRANGE', index, 0, -1)) do
      local row = row_get(id)
      if row and (row.state == 'accepted' or row.state == 'pending_active') then
        row_clear_claim(row)
        row_move(row, 'deferred_next_turn', now)
        moved = moved + 1
      end
    end
  end
  return moved
end
