-- Shared: the clock, integer formatting, error replies, percent-encoding and the lease fence.

-- Return codes: every script replies { 0, ... } on success or { code, detailsJson } on a domain
-- error. src/redis/error-map.ts maps the codes to StoreError codes; keep the two tables in step.
local E = {
  SessionExecutionLeaseExpired = -1,
  TurnInputClaimSuperseded = -2,
  HeadRevisionConflict = -3,
  RuntimeTurnCommitConflict = -4,
  PendingTurnInputSourceKeyConflict = -5,
  PendingTurnInputIdConflict = -6,
  QueuedWorkClaimSuperseded = -7,
  InvalidInput = -8,
  MissingRecordSchemaVersion = -9,
  InvalidRecordSchemaVersion = -10,
  UnsupportedRecordSchemaVersion = -11,
  Backend = -12,
}

-- `code` is an E.<name>; the script loader turns every E.<name> into its number, so no script
-- builds this table per call.
local function fail(code, details)
  return { code, cjson.encode(details or {}) }
end

-- The raw session id, for error details. ARGV[1] holds its encoding (docs/KEYS.md: every byte
-- outside A-Z a-z 0-9 . _ ~ - as %XX), which is reversible, so no script is also sent the raw id:
-- an argument costs every call about 1k Redis instructions, and this runs on error paths only.
local function session_raw()
  return (string.gsub(ENC_SESSION, '%%(%x%x)', function(h) return string.char(tonumber(h, 16)) end))
end

-- The store clock: server TIME in integer milliseconds.
local function now_ms()
  local t = redis.call('TIME')
  local us = tonumber(t[2])
  -- Whole milliseconds without math.floor (a global lookup and a C call on every script).
  return tonumber(t[1]) * 1000 + (us - us % 1000) / 1000
end

-- Integers written from Lua must never use exponent notation.
local function fmt(n)
  return string.format('%d', n)
end

-- The same injective encoding as src/redis/key-encoding.ts, for composite members.
local function pct(s)
  return (string.gsub(s, '[^A-Za-z0-9._~-]', function(c)
    return string.format('%%%02X', string.byte(c))
  end))
end

-- The lease record, or nil when the session never had one. fencingToken survives release.
-- Numbers are converted only where a script computes with them (a string-to-number conversion
-- costs Redis about 1.5k instructions): claimedAt stays the stored text, and fencingText keeps the
-- generation's text for fence comparisons.
local function lease_read()
  local v = redis.call('HMGET', K.lease, 'ownerId', 'incarnationId', 'liveness', 'leaseToken',
    'fencingToken', 'claimedAtEpochMs', 'expiresAtEpochMs')
  if not v[5] then return nil end
  return {
    ownerId = v[1] or '', incarnationId = v[2] or '', liveness = v[3] or '', leaseToken = v[4] or '',
    fencingToken = tonumber(v[5]), fencingText = v[5], claimedAt = v[6] or '0', expiresAt = tonumber(v[7] or '0'),
  }
end

-- What a fence check (fence_ok) and a fenced release (lease_release) read: lease_read without the
-- liveness and claimedAt, and the generation as text only (fencingText). The claim and the commit
-- of every turn call it; each reply field and number conversion left out is about 1k instructions.
local function lease_read_fence()
  local v = redis.call('HMGET', K.lease, 'ownerId', 'incarnationId', 'leaseToken', 'fencingToken', 'expiresAtEpochMs')
  if not v[4] then return nil end
  return { ownerId = v[1] or '', incarnationId = v[2] or '', leaseToken = v[3] or '', fencingText = v[4],
    expiresAt = tonumber(v[5] or '0') }
end

-- Live means a token is set and the expiry is strictly in the future. `token` is a stored field as
-- HMGET gives it (false when absent), `expiresAt` a number.
local function lease_fields_live(token, expiresAt, now)
  return token and token ~= '' and expiresAt > now
end

local function lease_live(lease, now)
  return lease ~= nil and lease_fields_live(lease.leaseToken, lease.expiresAt, now)
end

-- The generation whose claims are live now, or nil when no lease is live.
local function live_generation(now)
  local lease = lease_read()
  if lease_live(lease, now) then return lease.fencingToken end
  return nil
end

-- SPEC 3.3: same incarnation, same token, same generation, and live, checked atomically.
local function fence_ok(lease, now, ownerId, incarnationId, leaseToken, fencingToken)
  return lease ~= nil and lease_live(lease, now) and lease.ownerId == ownerId
    and lease.incarnationId == incarnationId and lease.leaseToken == leaseToken
    and lease.fencingText == fencingToken
end

-- The fenced release of SPEC 4.4: applies only on an exact match, never checks expiry, keeps
-- the generation. Returns true when it released. `current` is the lease record when the caller
-- has already read it in this script (and written nothing to it since); else it is read here.
local function lease_release(ownerId, incarnationId, leaseToken, fencingToken, current)
  local lease = current or lease_read()
  if lease == nil or lease.leaseToken == '' then return false end
  if lease.ownerId ~= ownerId or lease.incarnationId ~= incarnationId or lease.leaseToken ~= leaseToken
    or lease.fencingText ~= fencingToken then
    return false
  end
  redis.call('HSET', K.lease, 'ownerId', '', 'incarnationId', '', 'liveness', '', 'leaseToken', '',
    'claimedAtEpochMs', '0', 'expiresAtEpochMs', '0')
  return true
end

-- The lease as the reply fields the client decodes (src/redis/lease-ops.ts, decodeLease):
-- { ownerId, incarnationId, livenessJson, leaseToken, fencingToken, claimedAt, expiresAt }, the
-- numbers as integer replies. Fields, not JSON: encoding costs Redis CPU on every lease call.
local function lease_reply(head, lease)
  head[#head + 1] = lease.ownerId
  head[#head + 1] = lease.incarnationId
  head[#head + 1] = lease.liveness ~= '' and lease.liveness or '{"kind":"opaque"}'
  head[#head + 1] = lease.leaseToken
  head[#head + 1] = lease.fencingToken
  head[#head + 1] = tonumber(lease.claimedAt)
  head[#head + 1] = lease.expiresAt
  return head
end

-- The lease as JSON (SessionExecutionLease minus sessionId), for the operator view.
local function lease_json(lease)
  return '{"ownerId":' .. cjson.encode(lease.ownerId) .. ',"incarnationId":' .. cjson.encode(lease.incarnationId)
    .. ',"liveness":' .. (lease.liveness ~= '' and lease.liveness or '{"kind":"opaque"}')
    .. ',"leaseToken":' .. cjson.encode(lease.leaseToken) .. ',"fencingToken":' .. fmt(lease.fencingToken)
    .. ',"claimedAtEpochMs":' .. fmt(lease.claimedAt) .. ',"expiresAtEpochMs":' .. fmt(lease.expiresAt) .. '}'
end
