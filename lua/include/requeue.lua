-- Shared: T9, the requeue of stranded rows when a fresh lease generation starts.
-- @include common

-- Requeues accepted rows and pending_active rows enqueued under a generation (every earlier
-- generation is dead now), claims cleared. Returns how many rows moved.
local function requeue_stranded(now)
  if redis.call('EXISTS', K.accepted, K.genactive) == 0 then return 0 end
  -- The row helpers are defined here, so that an acquisition with nothing to requeue, the usual
  -- one, creates none of them (Lua makes a closure per helper on every run of the code that
  -- defines it: docs/DECISIONS.md).
  -- @include row-index
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
