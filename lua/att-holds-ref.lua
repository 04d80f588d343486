-- holdsRef (SPEC 7): whether an entry exists for exactly this (session, attachment) pair; another
-- session's entry for the same attachment id does not count.
--
-- KEYS: the standard per-session block (docs/KEYS.md); reads att.
-- ARGV[1] encoded session id
-- ARGV[2] pct(attachmentId)
-- Returns { 0, 1 | 0 }
-- @include keys
-- @include common
-- @include att

return { 0, redis.call('HEXISTS', K.att, att_member(ARGV[2])) }
