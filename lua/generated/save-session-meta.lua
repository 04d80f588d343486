-- Generated from lua/save-session-meta.lua (npm run build); edit that file, not this one.
local K = { meta = KEYS[1] }
--[[
  save-session-meta: saveSessionMeta (SPEC 6.7): last write wins; no effect on heads, revisions
  or leases.

  KEYS[1] meta

  ARGV[1] encoded session id
  ARGV[2] the SessionMeta JSON, made by the client

  Reply:
    { 0 }
]]
redis.call('SET', K.meta, ARGV[2])
return { 0 }
