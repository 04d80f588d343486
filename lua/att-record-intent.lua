--[[
  att-record-intent: recordIntent (SPEC 7): upserts one manifest entry of the session, keeping
  any commit stamp (a retried upload keeps its blob; a repeated put cannot erase a commit).

  KEYS[1] att               (shard)
  KEYS[2] att-uncommitted   (shard)
  KEYS[3] att-byid          (shard)
  KEYS[4] att-bysession     (shard) the entry's member, so deleteSession finds the session's entries

  ARGV[1] encoded session id
  ARGV[2] pct(attachmentId)
  ARGV[3] the entry JSON without a stamp, made by the client (lua/include/att.lua)
  ARGV[4] intentAtEpochMs

  Reply:
    { 0 }
]]
-- @include att

local encAtt = ARGV[2]
local entry = ARGV[3]
local member = att_member(encAtt)
local old = redis.call('HGET', K.att, member)
local stamp = old and att_stamp_of(old)
if stamp then
  redis.call('HSET', K.att, member, string.sub(entry, 1, -2) .. ',"committedAtEpochMs":' .. stamp .. '}')
  redis.call('ZREM', K.att_uncommitted, member)
else
  redis.call('HSET', K.att, member, entry)
  redis.call('ZADD', K.att_uncommitted, ARGV[4], member)
end
redis.call('ZADD', K.att_byid, 0, encAtt .. ':' .. ARGV[1])
redis.call('ZADD', K.att_bysession, 0, member)
return { 0 }
