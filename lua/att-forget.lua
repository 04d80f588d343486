-- forget (SPEC 7): deletes one entry of the session in ARGV[1]; a no-op when absent.
-- ARGV[2] = pct(attachmentId).
-- @include keys
-- @include common
-- @include att

local member = att_member(ARGV[2])
redis.call('HDEL', K.att, member)
redis.call('ZREM', K.att_uncommitted, member)
redis.call('ZREM', K.att_byid, ARGV[2] .. ':' .. ENC_SESSION)
return { 0 }
