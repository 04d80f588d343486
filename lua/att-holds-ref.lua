-- holdsRef (SPEC 7): 1 when an entry exists for exactly (ARGV[1] session, ARGV[2] pct(attachmentId)).
-- @include keys
-- @include common
-- @include att

return { 0, redis.call('HEXISTS', K.att, att_member(ARGV[2])) }
