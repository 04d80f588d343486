-- saveSessionMeta (SPEC 6.7): last write wins. ARGV[2] = the SessionMeta JSON made by the client.
-- @include keys
redis.call('SET', K.meta, ARGV[2])
return { 0 }
