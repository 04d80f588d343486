-- Generated from lua/load-session-meta.lua (npm run build); edit that file, not this one.
local K = { meta = KEYS[1] }
--[[
  load-session-meta: loadSessionMeta (SPEC 6.7): the saved SessionMeta JSON.

  KEYS[1] meta

  ARGV[1] encoded session id

  Reply:
    { 0, metaJson }, or { 0, false } when nothing was saved
]]
return { 0, redis.call('GET', K.meta) }
