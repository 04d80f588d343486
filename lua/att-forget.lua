--[[
  att-forget: forget (SPEC 7): deletes one manifest entry of the session; a no-op when absent.

  KEYS[1] att               (shard)
  KEYS[2] att-uncommitted   (shard)
  KEYS[3] att-byid          (shard)
  KEYS[4] att-bysession     (shard)

  ARGV[1] encoded session id
  ARGV[2] pct(attachmentId)

  Reply:
    { 0 }
]]
-- @include att

local member = att_member(ARGV[2])
redis.call('HDEL', K.att, member)
redis.call('ZREM', K.att_uncommitted, member)
redis.call('ZREM', K.att_byid, ARGV[2] .. ':' .. ARGV[1])
redis.call('ZREM', K.att_bysession, member)
return { 0 }
