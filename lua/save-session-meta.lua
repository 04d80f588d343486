-- saveSessionMeta (SPEC 6.7): last write wins; no effect on heads, revisions or leases.
--
-- KEYS: the standard per-session block (docs/KEYS.md); writes meta.
-- ARGV[1] encoded session id
-- ARGV[2] the SessionMeta JSON, made by the client
-- Returns { 0 }
-- @include keys
redis.call('SET', K.meta, ARGV[2])
return { 0 }
