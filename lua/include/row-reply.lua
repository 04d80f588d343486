-- Shared by the scripts that return rows: a row as the client decodes it (src/redis/row-codec.ts).
-- @include row-format

-- Appends a row's reply triple to `out`: input id, record, state entry ('' for a row without one).
local function row_reply(out, row)
  out[#out + 1] = row.id
  out[#out + 1] = redis.call('HGET', K.inputs, row.id)
  out[#out + 1] = row.fresh and '' or row_entry(row)
end
