-- Generated from lua/att-commit-refs.lua (npm run build); edit that file, not this one.
local K = { att = KEYS[1], att_uncommitted = KEYS[2] }
--[[
  att-commit-refs: commitRefs (SPEC 7): stamps existing manifest entries of the session; missing
  ones are skipped, never re-created, and an earlier stamp is kept (committedAtEpochMs = existing ?? now).

  KEYS[1] att               (shard)
  KEYS[2] att-uncommitted   (shard)

  ARGV[1]    encoded session id
  ARGV[2..n] pct(attachmentId) of each id

  Reply:
    { 0 }
]]
-- >>> include att
-- Shared: attachment manifest entries of the calling session (docs/KEYS.md, shard keys).
--
-- An entry lives in K.att under `<pct(sessionId)>:<pct(attachmentId)>` as JSON built by the
-- client: {"sessionId":…,"attachmentId":…,"canonicalUri":…,"intentAtEpochMs":N} and, once
-- committed, with `,"committedAtEpochMs":N` appended as the LAST field. Lua never decodes an
-- entry: the stamp is found and added by string operations on that fixed tail. An entry without
-- a stamp is also in K.att_uncommitted (score = intentAtEpochMs); every entry is in K.att_byid as
-- `<pct(attachmentId)>:<pct(sessionId)>` (lex, score 0).
-- >>> include common
-- Shared by every script: the store clock, integer text, error replies and id encoding.
--
-- Every script replies { 0, ... } on success or { E.<code>, detailsJson } on a domain error. The
-- E table is generated into each script's prelude from src/redis/script-errors.ts (the one
-- table of codes), and so is K, from the KEYS list of the script's header.

-- A domain error reply: `code` is an E.<name>, `details` a table encoded as the error's details.

-- The inverse of pct() below.

-- The raw session id, for error details: ARGV[1] of a per-session script is its encoding (every
-- byte outside A-Z a-z 0-9 . _ ~ - as %XX, docs/KEYS.md).

-- The store clock: server TIME in whole milliseconds.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Integers written from Lua as decimal text, never in exponent notation.
local function fmt(n)
  return string.format('%d', n)
end

-- The same injective encoding as src/redis/key-encoding.ts, for ids inside composite members.

-- One variadic command over many items (none for no items), in chunks small enough for Lua's C
-- stack.
-- <<< include common

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
-- <<< include att

local now = now_ms()
for i = 2, #ARGV do att_stamp(ARGV[i], now) end
return { 0 }
