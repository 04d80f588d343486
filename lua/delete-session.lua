--[[
  delete-session: deleteSession (SPEC 8.4) and the idle expiry of vacuum (SPEC 8.5): removes every
  key of the session and its members in the shard indexes, in one atomic step. Every check comes
  before the first write.

  KEYS[1]  lease      the generation survives as a fence while a fenced lease could still be live
  KEYS[2]  inputs
  KEYS[3]  states
  KEYS[4]  src
  KEYS[5]  next
  KEYS[6]  active
  KEYS[7]  accepted
  KEYS[8]  genactive
  KEYS[9]  tomb
  KEYS[10] head
  KEYS[11] nodes
  KEYS[12] order
  KEYS[13] blobs
  KEYS[14] usage
  KEYS[15] usageorder
  KEYS[16] stamps
  KEYS[17] meta
  KEYS[18] claims
  KEYS[19] nogen
  KEYS[20] failures
  KEYS[21] expiry
  KEYS[22] expired
  KEYS[23] dispatch         (shard) the session's member
  KEYS[24] tombs            (shard) the session's member
  KEYS[25] att              (shard) the session's manifest entries
  KEYS[26] att-uncommitted  (shard)
  KEYS[27] att-byid         (shard) also read: whether another session of the shard holds an id
  KEYS[28] att-bysession    (shard) lists the session's entries
  KEYS[29] activity         (shard) the session's member (idle mode: its last activity)

  ARGV[1] encoded session id
  ARGV[2] '1' for force: a live lease is fenced out instead of refusing
  ARGV[3] '' for deleteSession; sessionRetentionMs for vacuum's idle expiry, which deletes only a
          session idle that long: no live lease and
          now - max(activity score, lease expiresAtEpochMs, fencedUntilEpochMs) >= ARGV[3]
  ARGV[4] '1' when the store tracks activity (a fence left behind is then indexed for expiry)

  The fence: when a lease is live (force), or a fence of an earlier forced delete has not run
  out, K.lease is rewritten to hold only `fencingToken` (the last generation), `fencedUntilEpochMs`
  (when the fenced lease would have expired) and `lastEnqueueSeq`. No holder token is left, so every
  fence check, renewal and release of the old holder fails, and the next acquisition continues
  the generation count. A delete after fencedUntilEpochMs removes the fence with everything else.

  Reply:
    { 0, 'deleted', existed, inputs, settled, fencedGeneration, encAtt..., last... }
        existed           1 when anything of the session was stored (else nothing but stale index
                          members or an expired fence was removed)
        inputs            the input rows removed (any state)
        settled           1 when the session had settled state (a head)
        fencedGeneration  the generation kept as a fence, 0 when none is kept
        encAtt...         pct(attachmentId) of each manifest entry removed, then as many
        last...           flags: 1 when no other session of this shard holds an entry for that id
    { 0, 'kept' }       idle mode only: the session is not idle (its activity member is rescored
                        to its last activity when the lease or fence says later)
    { E.SessionBusy, {sessionId, generation} }  a live lease and no force; nothing written
]]
-- @include common

local S = ARGV[1]
local force = ARGV[2] == '1'
local now = now_ms()
local l = redis.call('HMGET', K.lease, 'leaseToken', 'expiresAtEpochMs', 'fencingToken', 'fencedUntilEpochMs',
  'ownerId', 'lastEnqueueSeq')
local expires = tonumber(l[2] or '0')
-- HMGET answers false for a missing field.
local live = l[1] and l[1] ~= '' and expires > now or false
local fencedUntil = tonumber(l[4] or '0')

if ARGV[3] ~= '' then
  local score = tonumber(redis.call('ZSCORE', K.activity, S) or '0')
  local last = math.max(score, expires, fencedUntil)
  if live or last > now - tonumber(ARGV[3]) then
    if last > score then redis.call('ZADD', K.activity, fmt(last), S) end
    return { 0, 'kept' }
  end
elseif live and not force then
  return fail(E.SessionBusy, { sessionId = session_raw(), generation = tonumber(l[3]) })
end

local keep_fence = live or fencedUntil > now
local fence_until = math.max(live and expires or 0, fencedUntil)
local fence_only = l[4] and not l[5]
local session_keys = { K.inputs, K.states, K.src, K.next, K.active, K.accepted, K.genactive, K.tomb, K.head,
  K.nodes, K.order, K.blobs, K.usage, K.usageorder, K.stamps, K.meta, K.claims, K.nogen, K.failures, K.expiry,
  K.expired }
local stored = redis.call('EXISTS', unpack(session_keys))
local entries = redis.call('ZRANGEBYLEX', K.att_bysession, '[' .. S .. ':', '(' .. S .. ';')
local lease_exists = redis.call('EXISTS', K.lease) == 1
local existed = stored > 0 or #entries > 0 or (lease_exists and not fence_only)
local inputs = redis.call('HLEN', K.inputs)
local settled = redis.call('EXISTS', K.head)
local tracked = ARGV[4] == '1'

-- A session already deleted (nothing stored, at most a fence still in force): change nothing.
if not existed and (not lease_exists or keep_fence)
    and redis.call('ZSCORE', K.dispatch, S) == false and redis.call('ZSCORE', K.tombs, S) == false
    and (keep_fence and tracked or redis.call('ZSCORE', K.activity, S) == false) then
  return { 0, 'deleted', 0, 0, 0, keep_fence and tonumber(l[3]) or 0 }
end

-- ------------------------------------------------------------------ writes
if stored > 0 then redis.call('UNLINK', unpack(session_keys)) end
redis.call('UNLINK', K.lease)
if keep_fence then
  redis.call('HSET', K.lease, 'fencingToken', l[3], 'fencedUntilEpochMs', fmt(fence_until))
  if l[6] then redis.call('HSET', K.lease, 'lastEnqueueSeq', l[6]) end
end
if keep_fence and tracked then
  redis.call('ZADD', K.activity, fmt(fence_until), S)
else
  redis.call('ZREM', K.activity, S)
end
redis.call('ZREM', K.dispatch, S)
redis.call('ZREM', K.tombs, S)

local out = { 0, 'deleted', existed and 1 or 0, inputs, settled, keep_fence and tonumber(l[3]) or 0 }
local prefix_len = #S + 2
for _, member in ipairs(entries) do
  local encAtt = string.sub(member, prefix_len)
  redis.call('HDEL', K.att, member)
  redis.call('ZREM', K.att_uncommitted, member)
  redis.call('ZREM', K.att_byid, encAtt .. ':' .. S)
  out[#out + 1] = encAtt
end
if #entries > 0 then redis.call('ZREMRANGEBYLEX', K.att_bysession, '[' .. S .. ':', '(' .. S .. ';') end
for i = 1, #entries do
  local encAtt = out[6 + i]
  local other = redis.call('ZRANGEBYLEX', K.att_byid, '[' .. encAtt .. ':', '(' .. encAtt .. ';', 'LIMIT', 0, 1)
  out[#out + 1] = #other == 0 and 1 or 0
end
return out
