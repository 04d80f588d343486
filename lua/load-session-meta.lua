-- loadSessionMeta (SPEC 6.7): the saved SessionMeta JSON.
--
-- KEYS: the standard per-session block (docs/KEYS.md); reads meta.
-- ARGV[1] encoded session id
-- Returns { 0, metaJson } or { 0 } when nothing was saved
-- @include keys
return { 0, redis.call('GET', K.meta) }
