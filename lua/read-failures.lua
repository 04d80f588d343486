--[[
  read-failures: the attempt counts of some rows (SPEC 3.8), for a claim reply whose rows carry the
  'f' flag (src/redis/turn-input-ops.ts). Read-only.

  KEYS[1] failures  input id -> {"attempts":n,"lastError":...}

  ARGV[1]   encoded session id
  ARGV[2..] input ids

  Reply:
    { 0, entry1, entry2, ... }  each id's K.failures entry, '' for none
]]

local ids = {}
for i = 2, #ARGV do ids[#ids + 1] = ARGV[i] end
local found = redis.call('HMGET', K.failures, unpack(ids))
local out = { 0 }
for i = 1, #ids do out[#out + 1] = found[i] or '' end
return out
