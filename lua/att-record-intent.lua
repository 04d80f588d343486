-- recordIntent (SPEC 7): upserts one manifest entry of the session, keeping any commit stamp (a
-- retried upload keeps its blob from being reaped; a repeated put cannot erase a commit).
--
-- KEYS: the standard per-session block (docs/KEYS.md); touches att, att-uncommitted, att-byid.
-- ARGV[1] encoded session id
-- ARGV[2] pct(attachmentId)
-- ARGV[3] the entry JSON without a stamp, made by the client (fixed field order, lua/include/att.lua)
-- ARGV[4] intentAtEpochMs
-- Returns { 0 }
-- @include keys
-- @include common
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
redis.call('ZADD', K.att_byid, 0, encAtt .. ':' .. ENC_SESSION)
return { 0 }
