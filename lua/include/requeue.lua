-- Shared: T9, the requeue of stranded rows when a fresh lease generation starts.
-- @include common

-- Requeues accepted rows and pending_active rows enqueued under a generation (every earlier
-- generation is dead now), claims cleared. Active input enqueued while no lease was live (K.nogen,
-- score: its grace deadline) is requeued too once its deadline has passed; before it, the new
-- generation adopts it (it may be the input of the turn this acquisition is about to run): the row
-- gets a generation and joins K.genactive, so that if this generation ends without admitting it,
-- the next acquisition requeues it. K.nogen is emptied (members whose row moved on since are
-- dropped). Returns how many rows moved.
local function requeue_stranded(now)
  if redis.call('EXISTS', K.accepted, K.genactive, K.nogen) == 0 then return 0 end
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
  local loose = redis.call('ZRANGE', K.nogen, 0, -1, 'WITHSCORES')
  local adopted = {}
  for i = 1, #loose, 2 do
    local row = row_get(loose[i])
    if row and row.state == 'pending_active' and not row.gen then
      if tonumber(loose[i + 1]) <= now then rows[#rows + 1] = row else adopted[#adopted + 1] = row end
    end
  end
  for _, row in ipairs(rows) do row_clear_claim(row) end
  rows_move(rows, 'deferred_next_turn', now)
  if #loose > 0 then
    redis.call('DEL', K.nogen)
    local entries, members = {}, {}
    for _, row in ipairs(adopted) do
      row.gen = true
      entries[#entries + 1] = row.id
      entries[#entries + 1] = row_entry(row)
      members[#members + 1] = row.seq
      members[#members + 1] = row.id
    end
    if #adopted > 0 then
      call_chunked('HSET', K.states, entries)
      call_chunked('ZADD', K.genactive, members)
      redis.call('ZADD', K.dispatch, 'NX', fmt(now), ARGV[1])
    end
  end
  return #rows
end
