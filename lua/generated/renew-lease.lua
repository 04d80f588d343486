-- Generated from lua/renew-lease.lua (npm run build); edit that file, not this one.
local K = { lease = KEYS[1] }
local E = { SessionExecutionLeaseExpired = -1 }
--[[
  renew-lease: renewSessionExecutionLease (SPEC 4.3): extend a live lease under a full fence check.

  KEYS[1] lease

  ARGV[1] encoded session id
  ARGV[2] fence.owner.ownerId
  ARGV[3] fence.owner.incarnationId
  ARGV[4] fence.leaseToken
  ARGV[5] fence.fencingToken (decimal)
  ARGV[6] leaseTtlMs (0..86400000)

  Reply:
    { 0, lease... }  renewed: expiresAt = now + ttl; everything else unchanged
    { E.SessionExecutionLeaseExpired, {sessionId} }  no record, another incarnation, token or
                     generation, or the lease is not live (an expired lease cannot be renewed,
                     even if nobody took it); nothing written
]]
-- >>> include lease
-- Shared: the session execution lease in K.lease (SPEC 3.2, 3.3, 4). fencingToken, the
-- generation, survives release; a released lease has empty owner and token and both times 0.
-- >>> include common
-- Shared by every script: the store clock, integer text, error replies and id encoding.
--
-- Every script replies { 0, ... } on success or { E.<code>, detailsJson } on a domain error. The
-- E table is generated into each script's prelude from src/redis/script-errors.ts (the one
-- table of codes), and so is K, from the KEYS list of the script's header.

-- A domain error reply: `code` is an E.<name>, `details` a table encoded as the error's details.
local function fail(code, details)
  return { code, cjson.encode(details or {}) }
end

-- The inverse of pct() below.
local function unpct(s)
  return (string.gsub(s, '%%(%x%x)', function(h) return string.char(tonumber(h, 16)) end))
end

-- The raw session id, for error details: ARGV[1] of a per-session script is its encoding (every
-- byte outside A-Z a-z 0-9 . _ ~ - as %XX, docs/KEYS.md).
local function session_raw()
  return unpct(ARGV[1])
end

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

-- The lease record, or nil when the session never had one. The generation is kept as stored
-- text (fencingText) for exact comparison with a fence, and as a number.
local function lease_read()
  local v = redis.call('HMGET', K.lease, 'ownerId', 'incarnationId', 'liveness', 'leaseToken',
    'fencingToken', 'claimedAtEpochMs', 'expiresAtEpochMs')
  if not v[5] then return nil end
  return {
    ownerId = v[1] or '', incarnationId = v[2] or '', liveness = v[3] or '', leaseToken = v[4] or '',
    fencingText = v[5], fencingToken = tonumber(v[5]), claimedAt = tonumber(v[6] or '0'),
    expiresAt = tonumber(v[7] or '0'),
  }
end

-- What a fence check and a fenced release compare: lease_read without the liveness JSON and
-- claimedAt (a field read costs a script about as much as a small command; docs/DECISIONS.md).

-- Live: a token is set and the expiry is strictly in the future.
local function lease_live(lease, now)
  return lease ~= nil and lease.leaseToken ~= '' and lease.expiresAt > now
end

-- The generation text of the live lease, or nil when none is live.

-- SPEC 3.3: same owner, incarnation, token and generation, and live.
local function fence_ok(lease, now, ownerId, incarnationId, leaseToken, fencingToken)
  return lease_live(lease, now) and lease.ownerId == ownerId and lease.incarnationId == incarnationId
    and lease.leaseToken == leaseToken and lease.fencingText == fencingToken
end

-- Same incarnation (SPEC 4.1): ownerId and incarnationId equal; liveness is ignored.

-- The fenced release of SPEC 4.4: only on an exact match, expiry not checked, generation kept.
-- Returns true when it released. `lease` is the record as read in this script (lease_read or
-- lease_read_fence), before any write to K.lease.

-- Appends the lease's reply fields to `out`: ownerId, incarnationId, liveness JSON, leaseToken,
-- then fencingToken, claimedAt and expiresAt as integers (decodeLease in src/redis/lease-ops.ts).
local function lease_reply(out, lease)
  out[#out + 1] = lease.ownerId
  out[#out + 1] = lease.incarnationId
  out[#out + 1] = lease.liveness ~= '' and lease.liveness or '{"kind":"opaque"}'
  out[#out + 1] = lease.leaseToken
  out[#out + 1] = lease.fencingToken
  out[#out + 1] = lease.claimedAt
  out[#out + 1] = lease.expiresAt
  return out
end
-- <<< include lease

local now = now_ms()
local lease = lease_read()
if not fence_ok(lease, now, ARGV[2], ARGV[3], ARGV[4], ARGV[5]) then
  return fail(E.SessionExecutionLeaseExpired, { sessionId = session_raw() })
end
lease.expiresAt = now + tonumber(ARGV[6])
redis.call('HSET', K.lease, 'expiresAtEpochMs', fmt(lease.expiresAt))
return lease_reply({ 0 }, lease)
