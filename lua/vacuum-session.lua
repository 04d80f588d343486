--[[
  Vacuum one session: delete its tombstones that are at least olderThanMs old (SPEC 3.6, 8.3,
  transition T13), in one atomic step.

  Input:
    KEYS: the per-session block narrowed to what this script names (docs/KEYS.md). Reads K.tomb
          and K.inputs; deletes from K.inputs, K.src, K.tomb and K.byseq; rescores or removes
          the session in the shard K.tombs. Never touches non-terminal rows, K.lease (which
          holds the enqueueSeq counter) or settled state.

    ARGV[1] encoded session id (every per-session script, the member in K.tombs)
    ARGV[2] olderThanMs (safe integer >= 0; 0 removes every tombstone)

  Output:
    { 0, removed }  the number of rows deleted. A tombstone is due when
                    now - terminalAtMs >= olderThanMs. Afterwards the session's K.tombs score is
                    the oldest remaining terminalAtMs, or the member is gone when none remain.
    No domain errors.
]]
-- @include keys
-- @include common
-- @include rows

local olderThanMs = tonumber(ARGV[2])

local now = now_ms()
local cutoff = now - olderThanMs
-- From '(-inf': PIN (rows.lua) is not a tombstone.
local due = redis.call('ZRANGEBYSCORE', K.tomb, '(-inf', fmt(cutoff))

-- Read and decode every due row first, so nothing can fail after the first write.
local rows = {}
for i, id in ipairs(due) do rows[i] = row_get(id) or false end

local removed = 0
for i, id in ipairs(due) do
  local row = rows[i]
  if row == false then
    -- A dangling index entry: drop it, there is no row to delete.
    redis.call('ZREM', K.tomb, id)
  elseif row.state == 'cancelled' or row.state == 'completed' then
    redis.call('HDEL', K.inputs, id)
    -- Only drop a source-key mapping that still points at this row.
    if type(row.sourceKey) == 'string' and redis.call('HGET', K.src, row.sourceKey) == id then
      redis.call('HDEL', K.src, row.sourceKey)
    end
    redis.call('ZREM', K.tomb, id)
    redis.call('ZREM', K.byseq, id)
    removed = removed + 1
  end
  -- A non-terminal row is never touched here (it is not a tombstone, whatever the index says).
end

local oldest = redis.call('ZRANGEBYSCORE', K.tomb, '(-inf', '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
if oldest[1] then
  redis.call('ZADD', K.tombs, oldest[2], ENC_SESSION)
else
  redis.call('DEL', K.tomb) -- PIN alone, or nothing
  redis.call('ZREM', K.tombs, ENC_SESSION)
end
-- No row left in byseq (PIN alone, if pinned): drop the set with its PIN.
if removed > 0 and redis.call('ZCOUNT', K.byseq, '(-inf', '+inf') == 0 then redis.call('DEL', K.byseq) end
return { 0, removed }
