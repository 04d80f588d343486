--[[
  att-has-live-ref: hasLiveRefForId (SPEC 7), one shard: whether an entry for the attachment id
  in any session of the shard is committed or has intentAtEpochMs > the cutoff.

  KEYS[1] att               (shard)
  KEYS[2] att-uncommitted   (shard)
  KEYS[3] att-byid          (shard)

  ARGV[1] pct(attachmentId)
  ARGV[2] the cutoff, epoch ms

  Reply:
    { 0, 1 | 0 }
]]
local encAtt = ARGV[1]
local cutoff = tonumber(ARGV[2])
local members = redis.call('ZRANGEBYLEX', K.att_byid, '[' .. encAtt .. ':', '(' .. encAtt .. ';')
for _, m in ipairs(members) do
  local member = string.sub(m, #encAtt + 2) .. ':' .. encAtt
  if redis.call('HEXISTS', K.att, member) == 1 then
    local intent = redis.call('ZSCORE', K.att_uncommitted, member)
    if not intent or tonumber(intent) > cutoff then return { 0, 1 } end
  end
end
return { 0, 0 }
