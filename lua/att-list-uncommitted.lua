--[[
  att-list-uncommitted: listUncommitted (SPEC 7), one shard: the entry JSON of every uncommitted
  entry with intentAtEpochMs <= the cutoff. The client merges shards and sorts.

  KEYS[1] att               (shard)
  KEYS[2] att-uncommitted   (shard)

  ARGV[1] olderThanEpochMs

  Reply:
    { 0, entryJson, ... }
]]
local members = redis.call('ZRANGEBYSCORE', K.att_uncommitted, '-inf', ARGV[1])
local out = { 0 }
for i = 1, #members, 512 do
  local batch = redis.call('HMGET', K.att, unpack(members, i, math.min(i + 511, #members)))
  for j = 1, #batch do
    if batch[j] then out[#out + 1] = batch[j] end
  end
end
return out
