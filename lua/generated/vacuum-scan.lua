-- Generated from lua/vacuum-scan.lua (npm run build); edit that file, not this one.
local K = { tombs = KEYS[1] }
--[[
  vacuum-scan: vacuum's work list, the sessions of one shard whose oldest tombstone is due
  (SPEC 8.3). Read-only; the server clock of the node holding the shard measures the age.

  KEYS[1] tombs   (shard) member: encoded session id, score: its oldest terminalAtMs

  ARGV[1] olderThanMs (safe integer >= 0)
  ARGV[2] the most members to return (positive integer)
  ARGV[3] the cutoff a previous scan of this pass returned, or '' on the first scan (which
          computes cutoff = now - olderThanMs), so a session pruned in this pass is not listed
          again

  Reply:
    { 0, cutoff, member, ... }  the cutoff as decimal text, then the encoded session ids whose
                                score <= cutoff, oldest first
]]
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

local cutoff = ARGV[3] ~= '' and tonumber(ARGV[3]) or now_ms() - tonumber(ARGV[1])
local due = redis.call('ZRANGE', K.tombs, '-inf', fmt(cutoff), 'BYSCORE', 'LIMIT', 0, tonumber(ARGV[2]))
local out = { 0, fmt(cutoff) }
for _, m in ipairs(due) do out[#out + 1] = m end
return out
