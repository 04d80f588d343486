-- Generated from lua/att-holds-ref.lua (npm run build); edit that file, not this one.
local K = { att = KEYS[1] }
--[[
  att-holds-ref: holdsRef (SPEC 7): whether an entry exists for exactly this (session,
  attachment) pair; another session's entry for the same attachment id does not count.

  KEYS[1] att   (shard)

  ARGV[1] encoded session id
  ARGV[2] pct(attachmentId)

  Reply:
    { 0, 1 | 0 }
]]
return { 0, redis.call('HEXISTS', K.att, ARGV[1] .. ':' .. ARGV[2]) }
