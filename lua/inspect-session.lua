--[[
  inspect-session: the operator's read-only view of one session (`redis-turn-store inspect`,
  SPEC 11). Writes nothing; src/inspect/inspect-view.ts decodes the reply.

  KEYS[1]  lease
  KEYS[2]  inputs
  KEYS[3]  states
  KEYS[4]  claims
  KEYS[5]  next
  KEYS[6]  active
  KEYS[7]  accepted
  KEYS[8]  genactive
  KEYS[9]  nogen
  KEYS[10] tomb
  KEYS[11] head
  KEYS[12] nodes
  KEYS[13] expired    inputs expired by pendingTtlMs (issue 18)
  KEYS[14] dispatch   (shard)

  ARGV[1] encoded session id
  ARGV[2] the most non-terminal rows to return (decimal >= 0), lowest enqueueSeq first

  Reply:
    { 0, nowMs, leaseJson, headJson, countsJson, inputId, record, stateEntry, claimEntry, ... }
      nowMs       the store clock the view was read at
      leaseJson   {ownerId, incarnationId, liveness, leaseToken, fencingToken, claimedAtEpochMs,
                   expiresAtEpochMs[, interrupt]}, or '' when the session never had a lease;
                   interrupt {policy, reason, inputId, atEpochMs} while the record's generation is
                   marked interrupted (SPEC 3.9)
      headJson    {headRevision, nodeCount, leafNodeId, schemaVersion} as stored, or ''
      countsJson  {graphNodes, nonTerminal, next, active, accepted, genactive, nogen, nogenDue,
                   tombstones, expired, lastEnqueueSeq, dispatchIndexedAtMs, dispatchableRequeue,
                   dispatchableKeep}; nogenDue: a K.nogen row is past its grace deadline;
                   expired: tombstones cancelled by pendingTtlMs (reason 'expired'); pausedAtMs:
                   when pauseSessionDispatch paused the session, null when not paused
      then five elements per row (up to ARGV[2] non-terminal rows, ascending enqueueSeq): the row
      as list-inputs.lua returns it, the entry of the claim it carries ('' when none), and its
      K.nogen score (its grace deadline) as text, '' when it is not there
]]
-- @include dispatchable
-- @include row-reply

local max_rows = tonumber(ARGV[2]) or 0
local now = now_ms()

local lease = lease_read()
local lease_json = ''

-- The interrupt mark of the record's own generation (SPEC 3.9), or nil.
local function interrupt_view(l)
  local m = redis.call('HMGET', K.lease, 'interruptGen', 'interruptPolicy', 'interruptReason', 'interruptInputId',
    'interruptAtMs')
  if m[1] ~= l.fencingText then return nil end
  return { policy = m[2] or 'interrupt', reason = m[3] or '', inputId = m[4] or '', atEpochMs = tonumber(m[5] or '0') }
end
if lease then
  lease_json = cjson.encode({ ownerId = lease.ownerId, incarnationId = lease.incarnationId,
    liveness = cjson.decode(lease.liveness ~= '' and lease.liveness or '{"kind":"opaque"}'),
    leaseToken = lease.leaseToken, fencingToken = lease.fencingToken, claimedAtEpochMs = lease.claimedAt,
    expiresAtEpochMs = lease.expiresAt, interrupt = interrupt_view(lease) })
end

local head_json = ''
local h = redis.call('HMGET', K.head, 'headRevision', 'nodeCount', 'leafNodeId', 'schemaVersion')
if h[1] then
  head_json = cjson.encode({ headRevision = h[1], nodeCount = h[2] or '0', leafNodeId = h[3] or '',
    schemaVersion = h[4] or '' })
end

local ids, seqs = open_rows_by_seq({ K.next, K.accepted })

local indexed_at = redis.call('ZSCORE', K.dispatch, ARGV[1])
local unleased = not lease_live(lease, now)
local counts = cjson.encode({
  graphNodes = redis.call('HLEN', K.nodes), nonTerminal = #ids, next = redis.call('ZCARD', K.next),
  active = redis.call('ZCARD', K.active), accepted = redis.call('ZCARD', K.accepted),
  genactive = redis.call('ZCARD', K.genactive), nogen = redis.call('ZCARD', K.nogen),
  nogenDue = unleased and nogen_due(now, false), tombstones = redis.call('LLEN', K.tomb),
  expired = redis.call('ZCARD', K.expired),
  pausedAtMs = tonumber(redis.call('HGET', K.lease, 'pausedAtMs') or '') or cjson.null,
  lastEnqueueSeq = tonumber(redis.call('HGET', K.lease, 'lastEnqueueSeq') or '0'),
  dispatchIndexedAtMs = indexed_at and tonumber(indexed_at) or cjson.null,
  dispatchableRequeue = unleased and has_dispatchable_rows(true),
  dispatchableKeep = unleased and has_dispatchable_rows(false),
})

local out = { 0, fmt(now), lease_json, head_json, counts }
local shown = {}
for i = 1, math.min(max_rows, #ids) do shown[i] = ids[i] end
for _, row in ipairs(rows_of(shown, seqs)) do
  row_reply(out, row)
  out[#out + 1] = row.claimId ~= '' and (redis.call('HGET', K.claims, row.claimId) or '') or ''
  out[#out + 1] = redis.call('ZSCORE', K.nogen, row.id) or ''
end
return out
