--[[
  list-failed: listFailedTurnInputs (SPEC 3.8). Read-only.

  KEYS[1] inputs
  KEYS[2] states
  KEYS[3] failures  input id -> {"attempts":n,"lastError":...}; holds every row with a count

  ARGV[1] encoded session id

  Reply:
    { 0, inputId1, record1, stateEntry1, failure1, ... }  the failed rows, ascending enqueueSeq,
                                                          each with its K.failures entry
  Every failed row has a K.failures entry (only a failure abandon makes one failed), so the walk
  reads K.failures, not the tomb list.
]]
-- @include row-format

local flat = redis.call('HGETALL', K.failures)
local rows, failure = {}, {}
for i = 1, #flat, 1000 do
  local ids = {}
  for j = i, math.min(i + 999, #flat), 2 do
    ids[#ids + 1] = flat[j]
    failure[flat[j]] = flat[j + 1]
  end
  local entries = redis.call('HMGET', K.states, unpack(ids))
  for k, id in ipairs(ids) do
    local row = entries[k] and row_parse(id, entries[k])
    if row and row.state == 'failed' then rows[#rows + 1] = row end
  end
end
table.sort(rows, function(a, b) return tonumber(a.seq) < tonumber(b.seq) end)

local out = { 0 }
for i = 1, #rows, 500 do
  local ids = {}
  for j = i, math.min(i + 499, #rows) do ids[#ids + 1] = rows[j].id end
  local records = redis.call('HMGET', K.inputs, unpack(ids))
  for j, id in ipairs(ids) do
    out[#out + 1] = id
    out[#out + 1] = records[j]
    out[#out + 1] = row_entry(rows[i + j - 1])
    out[#out + 1] = failure[id]
  end
end
return out
