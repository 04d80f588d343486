-- forgetAgedUncommittedIntents (SPEC 7), one shard, one atomic conditional delete: every entry
-- with no commit stamp and intentAtEpochMs <= ARGV[1]. A concurrent recordIntent either ran
-- before (its new intent decides) or runs after and re-creates the entry. Returns the count.
-- KEYS = the shard's att, att-uncommitted, att-byid.
local att, uncommitted, byid = KEYS[1], KEYS[2], KEYS[3]
local members = redis.call('ZRANGEBYSCORE', uncommitted, '-inf', ARGV[1])
local removed = 0
for _, m in ipairs(members) do
  removed = removed + redis.call('HDEL', att, m)
  redis.call('ZREM', uncommitted, m)
  -- m is `<pct(session)>:<pct(attachment)>`; encoded ids never contain ':'.
  local s, a = string.match(m, '^([^:]*):([^:]*)$')
  if s then redis.call('ZREM', byid, a .. ':' .. s) end
end
return { 0, removed }
