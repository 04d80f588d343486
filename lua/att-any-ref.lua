--[[
  att-any-ref: one shard's answer to "does any session still hold an entry for these attachment
  ids" (deleteSession on Cluster, SPEC 8.4: the ids whose last reference went).

  KEYS[1] att-byid  (shard)

  ARGV[1..n] pct(attachmentId)

  Reply:
    { 0, flag1, ..., flagn }  1 when some session of the shard has an entry for that id
]]
local out = { 0 }
for _, encAtt in ipairs(ARGV) do
  local hit = redis.call('ZRANGEBYLEX', K.att_byid, '[' .. encAtt .. ':', '(' .. encAtt .. ';', 'LIMIT', 0, 1)
  out[#out + 1] = #hit > 0 and 1 or 0
end
return out
