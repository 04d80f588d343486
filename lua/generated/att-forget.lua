-- Generated from lua/att-forget.lua (npm run build); edit that file, not this one.
local K = { att = KEYS[1], att_uncommitted = KEYS[2], att_byid = KEYS[3] }
--[[
  att-forget: forget (SPEC 7): deletes one manifest entry of the session; a no-op when absent.

  KEYS[1] att               (shard)
  KEYS[2] att-uncommitted   (shard)
  KEYS[3] att-byid          (shard)

  ARGV[1] encoded session id
  ARGV[2] pct(attachmentId)

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

-- Integers written from Lua as decimal text, never in exponent notation.

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

-- committedAtEpochMs = committedAtEpochMs ?? now, only when the entry exists (SPEC 6.3 step 7
-- and 7). Never inserts. Returns true when the entry exists. Lazy: most commits stamp nothing.
-- <<< include att

local member = att_member(ARGV[2])
redis.call('HDEL', K.att, member)
redis.call('ZREM', K.att_uncommitted, member)
redis.call('ZREM', K.att_byid, ARGV[2] .. ':' .. ARGV[1])
return { 0 }
