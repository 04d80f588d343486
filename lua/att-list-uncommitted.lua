-- listUncommitted (SPEC 7), one shard: KEYS = the shard's att, att-uncommitted, att-byid.
-- ARGV[1] = olderThanEpochMs. Returns the entry JSON of every uncommitted entry with
-- intentAtEpochMs <= ARGV[1]; the client merges shards and sorts.
local att, uncommitted = KEYS[1], KEYS[2]
local members = redis.call('ZRANGEBYSCORE', uncommitted, '-inf', ARGV[1])
local out = { 0 }
for i = 1, #members, 512 do
  local batch = redis.call('HMGET', att, unpack(members, i, math.min(i + 511, #members)))
  for j = 1, #batch do
    if batch[j] then out[#out + 1] = batch[j] end
  end
end
return out
