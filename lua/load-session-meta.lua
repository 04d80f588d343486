-- loadSessionMeta (SPEC 6.7): the saved JSON, or nil.
-- @include keys
return { 0, redis.call('GET', K.meta) }
