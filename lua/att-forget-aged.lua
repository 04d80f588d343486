--[[
  att-forget-aged: forgetAgedUncommittedIntents (SPEC 7), one shard, one atomic conditional
  delete of every entry with no commit stamp and intentAtEpochMs <= ARGV[1]. A concurrent
  recordIntent either ran before (its new intent decides) or runs after and re-creates the entry.

  KEYS[1] att               (shard)
  KEYS[2] att-uncommitted   (shard)
  KEYS[3] att-byid          (shard)
  KEYS[4] att-bysession     (shard)

  ARGV[1] the cutoff, epoch ms

  Reply:
    { 0, removed }
]]
local members = redis.call('ZRANGEBYSCORE', K.att_uncommitted, '-inf', ARGV[1])
local removed = 0
for _, m in ipairs(members) do
  removed = removed + redis.call('HDEL', K.att, m)
  redis.call('ZREM', K.att_uncommitted, m)
  redis.call('ZREM', K.att_bysession, m)
  -- m is `<pct(session)>:<pct(attachment)>`; encoded ids never contain ':'.
  local s, a = string.match(m, '^([^:]*):([^:]*)$')
  if s then redis.call('ZREM', K.att_byid, a .. ':' .. s) end
end
return { 0, removed }
