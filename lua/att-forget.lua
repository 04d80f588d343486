-- forget (SPEC 7): deletes one manifest entry of the session; a no-op when absent.
--
-- KEYS: the standard per-session block (docs/KEYS.md); touches att, att-uncommitted, att-byid.
-- ARGV[1] encoded session id
-- ARGV[2] pct(attachmentId)
-- Returns { 0 }
-- @include keys
-- @include common
-- @include att

local member = att_member(ARGV[2])
redis.call('HDEL', K.att, member)
redis.call('ZREM', K.att_uncommitted, member)
redis.call('ZREM', K.att_byid, ARGV[2] .. ':' .. ENC_SESSION)
return { 0 }
