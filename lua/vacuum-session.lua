--[[
  vacuum-session: delete one session's tombstones that are at least olderThanMs old (SPEC 3.6,
  8.3; transition T13), in one atomic step. Never touches non-terminal rows, the enqueueSeq
  counter (in K.lease) or settled state.

  KEYS[1] inputs
  KEYS[2] states
  KEYS[3] src
  KEYS[4] tomb    list of '<terminalAtMs>|<inputId>', oldest first
  KEYS[5] tombs   (shard) rescored to the oldest remaining tombstone, or the session removed
  KEYS[6] failures the attempt counts of the removed rows
  KEYS[7] expired the vacuumed rows' members (pendingTtlMs; issue 18)

  ARGV[1] encoded session id
  ARGV[2] olderThanMs (safe integer >= 0; 0 removes every tombstone)

  Reply:
    { 0, removed }  the number of rows deleted (due: now - terminalAtMs >= olderThanMs)
]]
-- @include row-format

local cutoff = now_ms() - tonumber(ARGV[2])

-- Tombstones arrive in time order, so the due ones are at the head of the list.
local due, due_at = {}, {}
local oldest = nil
local batch = 0
repeat
  local entries = redis.call('LRANGE', K.tomb, batch, batch + 255)
  for _, e in ipairs(entries) do
    local at, id = string.match(e, '^(%d+)|(.*)$')
    if at and tonumber(at) > cutoff then
      oldest = at
      break
    end
    due[#due + 1] = id or false
    due_at[#due] = at
  end
  batch = batch + 256
until oldest or #entries < 256

local rows = {}
for i, id in ipairs(due) do
  local entry = id and redis.call('HGET', K.states, id)
  rows[i] = entry and row_parse(id, entry) or false
end
local has_failures = redis.call('EXISTS', K.failures) == 1

local removed = 0
for i, id in ipairs(due) do
  local row = rows[i]
  -- A row that left the tomb list's state since this entry (a failed row retried, maybe a
  -- tombstone again since) is kept: only its current entry, the one with its terminalAtMs, removes it.
  local terminal = row and (row.state == 'cancelled' or row.state == 'completed' or row.state == 'failed')
  if terminal and row.terminalAt == due_at[i] then
    if has_failures then redis.call('HDEL', K.failures, id) end
    redis.call('HDEL', K.inputs, id)
    redis.call('HDEL', K.states, id)
    if row.state == 'cancelled' then redis.call('ZREM', K.expired, id) end
    -- Only a source-key mapping that still names this row.
    if row.sourceKey ~= '' and redis.call('HGET', K.src, row.sourceKey) == id then
      redis.call('HDEL', K.src, row.sourceKey)
    end
    removed = removed + 1
  end
end
if #due > 0 then redis.call('LTRIM', K.tomb, #due, -1) end
if oldest then
  redis.call('ZADD', K.tombs, oldest, ARGV[1])
else
  redis.call('ZREM', K.tombs, ARGV[1])
end
return { 0, removed }
