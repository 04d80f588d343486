-- Generated from lua/release-lease.lua (npm run build); edit that file, not this one.
local K = { lease = KEYS[1], next = KEYS[2], accepted = KEYS[3], genactive = KEYS[4] }
--[[
  release-lease: releaseSessionExecutionLease (SPEC 4.4), the fenced release.

  KEYS[1] lease
  KEYS[2] next       read for the dispatch verdict
  KEYS[3] accepted   read for the dispatch verdict
  KEYS[4] genactive  read for the dispatch verdict

  ARGV[1] encoded session id
  ARGV[2] completion.owner.ownerId
  ARGV[3] completion.owner.incarnationId
  ARGV[4] completion.leaseToken
  ARGV[5] completion.fencingToken (decimal)
  ARGV[6] '1' when strandedTurnInputs is 'requeue' (T9 rows count as dispatchable), else '0'

  Reply:
    { 0, released, wake }
      released  1 when the record matched (owner, incarnation, token, generation; expiry is not
                checked) and was cleared, 0 on a mismatch (a silent no-op that never touches a
                newer owner's lease)
      wake      1 when the session is left with no live lease and dispatchable rows
]]
-- >>> include dispatchable
-- Shared: whether a session is dispatchable (SPEC 11): no live lease, and rows a turn would take.
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

-- The inverse of pct() below.

-- The raw session id, for error details: ARGV[1] of a per-session script is its encoding (every
-- byte outside A-Z a-z 0-9 . _ ~ - as %XX, docs/KEYS.md).

-- The store clock: server TIME in whole milliseconds.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Integers written from Lua as decimal text, never in exponent notation.

-- The same injective encoding as src/redis/key-encoding.ts, for ids inside composite members.

-- One variadic command over many items (none for no items), in chunks small enough for Lua's C
-- stack.
-- <<< include common

-- The lease record, or nil when the session never had one. The generation is kept as stored
-- text (fencingText) for exact comparison with a fence, and as a number.

-- What a fence check and a fenced release compare: lease_read without the liveness JSON and
-- claimedAt (a field read costs a script about as much as a small command; docs/DECISIONS.md).
local function lease_read_fence()
  local v = redis.call('HMGET', K.lease, 'ownerId', 'incarnationId', 'leaseToken', 'fencingToken', 'expiresAtEpochMs')
  if not v[4] then return nil end
  return { ownerId = v[1] or '', incarnationId = v[2] or '', leaseToken = v[3] or '', fencingText = v[4],
    expiresAt = tonumber(v[5] or '0') }
end

-- Live: a token is set and the expiry is strictly in the future.
local function lease_live(lease, now)
  return lease ~= nil and lease.leaseToken ~= '' and lease.expiresAt > now
end

-- The generation text of the live lease, or nil when none is live.
local function live_generation(now)
  local v = redis.call('HMGET', K.lease, 'leaseToken', 'fencingToken', 'expiresAtEpochMs')
  if v[2] and lease_live({ leaseToken = v[1] or '', expiresAt = tonumber(v[3] or '0') }, now) then return v[2] end
  return nil
end

-- SPEC 3.3: same owner, incarnation, token and generation, and live.

-- Same incarnation (SPEC 4.1): ownerId and incarnationId equal; liveness is ignored.

-- The fenced release of SPEC 4.4: only on an exact match, expiry not checked, generation kept.
-- Returns true when it released. `lease` is the record as read in this script (lease_read or
-- lease_read_fence), before any write to K.lease.
local function lease_release(lease, ownerId, incarnationId, leaseToken, fencingToken)
  if lease == nil or lease.leaseToken == '' then return false end
  if lease.ownerId ~= ownerId or lease.incarnationId ~= incarnationId or lease.leaseToken ~= leaseToken
    or lease.fencingText ~= fencingToken then
    return false
  end
  redis.call('HSET', K.lease, 'ownerId', '', 'incarnationId', '', 'liveness', '', 'leaseToken', '',
    'claimedAtEpochMs', '0', 'expiresAtEpochMs', '0')
  return true
end

-- Appends the lease's reply fields to `out`: ownerId, incarnationId, liveness JSON, leaseToken,
-- then fencingToken, claimedAt and expiresAt as integers (decodeLease in src/redis/lease-ops.ts).
-- <<< include lease

-- Next-turn input, or in requeue mode also the rows T9 would move.
local function has_dispatchable_rows(requeue)
  if requeue then return redis.call('EXISTS', K.next, K.accepted, K.genactive) > 0 end
  return redis.call('EXISTS', K.next) > 0
end

-- `unleased` when the caller knows no lease is live (it has just released it in this script).
local function dispatchable(now, requeue, unleased)
  if not unleased and live_generation(now) ~= nil then return false end
  return has_dispatchable_rows(requeue)
end
-- <<< include dispatchable

local now = now_ms()
local lease = lease_read_fence()
local released = lease_release(lease, ARGV[2], ARGV[3], ARGV[4], ARGV[5])
local wake = dispatchable(now, ARGV[6] == '1', released or not lease_live(lease, now))
return { 0, released and 1 or 0, wake and 1 or 0 }
