-- hasLiveRefForId (SPEC 7), one shard: 1 when an entry with attachment id ARGV[1] (encoded) in
-- any session of the shard is committed or has intentAtEpochMs > ARGV[2].
-- KEYS = the shard's att, att-uncommitted, att-byid.
local att, uncommitted, byid = KEYS[1], KEYS[2], KEYS[3]
local encAtt = ARGV[1]
local cutoff = tonumber(ARGV[2])
local members = redis.call('ZRANGEBYLEX', byid, '[' .. encAtt .. ':', '(' .. encAtt .. ';')
for _, m in ipairs(members) do
  local member = string.sub(m, #encAtt + 2) .. ':' .. encAtt
  if redis.call('HEXISTS', att, member) == 1 then
    local intent = redis.call('ZSCORE', uncommitted, member)
    if not intent or tonumber(intent) > cutoff then return { 0, 1 } end
  end
end
return { 0, 0 }
