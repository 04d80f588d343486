-- Shared: attachment manifest entries of the calling session (docs/KEYS.md, shard keys).
--
-- An entry lives in K.att under `<pct(sessionId)>:<pct(attachmentId)>` as JSON built by the
-- client: {"sessionId":…,"attachmentId":…,"canonicalUri":…,"intentAtEpochMs":N} and, once
-- committed, with `,"committedAtEpochMs":N` appended as the LAST field. Lua never decodes an
-- entry: the stamp is found and added by string operations on that fixed tail. An entry without
-- a stamp is also in K.att_uncommitted (score = intentAtEpochMs); every entry is in K.att_byid as
-- `<pct(attachmentId)>:<pct(sessionId)>` (lex, score 0).
-- @include common

-- The commit stamp tail. Inside a JSON string every `"` is escaped, so this can only match the
-- real field.
local ATT_STAMP_TAIL = ',"committedAtEpochMs":(%d+)}$'

local function att_member(encAtt)
  return ARGV[1] .. ':' .. encAtt
end

-- The commit stamp of an entry's JSON, as a decimal string, or nil.
local function att_stamp_of(raw)
  return string.match(raw, ATT_STAMP_TAIL)
end

-- committedAtEpochMs = committedAtEpochMs ?? now, only when the entry exists (SPEC 6.3 step 7
-- and 7). Never inserts. Returns true when the entry exists. Lazy: most commits stamp nothing.
local function att_stamp(encAtt, now)
  local member = att_member(encAtt)
  local raw = redis.call('HGET', K.att, member)
  if not raw then return false end
  if not att_stamp_of(raw) then
    redis.call('HSET', K.att, member, string.sub(raw, 1, -2) .. ',"committedAtEpochMs":' .. fmt(now) .. '}')
  end
  redis.call('ZREM', K.att_uncommitted, member)
  return true
end
