--[[
  att-list-all-refs: listAllRefs (SPEC 7), one shard: the distinct encoded attachment ids of
  every entry, committed or not. The client decodes, merges shards and sorts.

  KEYS[1] att-byid   (shard)

  (none)

  Reply:
    { 0, pct(attachmentId), ... }
]]
local out = { 0 }
local last = nil
local members = redis.call('ZRANGE', K.att_byid, 0, -1)
for _, m in ipairs(members) do
  local a = string.match(m, '^([^:]*):')
  if a and a ~= last then
    out[#out + 1] = a
    last = a
  end
end
return out
