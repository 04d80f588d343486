-- listAllRefs (SPEC 7), one shard: the distinct encoded attachment ids of every entry, committed
-- or not. KEYS = the shard's att, att-uncommitted, att-byid. The client decodes and sorts.
local byid = KEYS[3]
local out = { 0 }
local last = nil
local members = redis.call('ZRANGE', byid, 0, -1)
for _, m in ipairs(members) do
  local a = string.match(m, '^([^:]*):')
  if a and a ~= last then
    out[#out + 1] = a
    last = a
  end
end
return out
