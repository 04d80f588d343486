-- Shared by the scripts that return rows: a row as the client decodes it (src/redis/row-codec.ts).
-- @include row-format

-- Appends a row's reply triple to `out`: input id, record, state entry ('' for a row without one).
local function row_reply(out, row)
  out[#out + 1] = row.id
  out[#out + 1] = redis.call('HGET', K.inputs, row.id)
  out[#out + 1] = row.fresh and '' or row_entry(row)
end

-- The non-terminal rows of the seq-scored `indexes` (K.next, K.accepted) and of K.active, each
-- once, in enqueueSeq order: their ids, and id -> seq text.
local function open_rows_by_seq(indexes)
  local seqs, ids = {}, {}
  local function add(id, seq)
    if id and not seqs[id] then
      seqs[id] = seq
      ids[#ids + 1] = id
    end
  end
  for _, index in ipairs(indexes) do
    local flat = redis.call('ZRANGE', index, 0, -1, 'WITHSCORES')
    for i = 1, #flat, 2 do add(flat[i], flat[i + 1]) end
  end
  for _, m in ipairs(redis.call('ZRANGE', K.active, 0, -1)) do
    local seq, _, id = active_member_parts(m)
    add(id, seq)
  end
  table.sort(ids, function(a, b) return tonumber(seqs[a]) < tonumber(seqs[b]) end)
  return ids, seqs
end

-- The rows of `ids`, read with one HMGET per 500 ids; `seqs` (id -> seq text) gives the seq of a
-- row without a state entry.
local function rows_of(ids, seqs)
  local rows = {}
  for i = 1, #ids, 500 do
    local batch = { unpack(ids, i, math.min(i + 499, #ids)) }
    local entries = redis.call('HMGET', K.states, unpack(batch))
    for j, id in ipairs(batch) do
      rows[#rows + 1] = entries[j] and row_parse(id, entries[j]) or row_fresh(id, seqs[id])
    end
  end
  return rows
end

-- Appends the reply triples of many rows to `out`, their records read with one HMGET per 500.
local function rows_reply(out, rows)
  for i = 1, #rows, 500 do
    local ids = {}
    for j = i, math.min(i + 499, #rows) do ids[#ids + 1] = rows[j].id end
    local records = redis.call('HMGET', K.inputs, unpack(ids))
    for j, id in ipairs(ids) do
      local row = rows[i + j - 1]
      out[#out + 1] = id
      out[#out + 1] = records[j]
      out[#out + 1] = row.fresh and '' or row_entry(row)
    end
  end
end

