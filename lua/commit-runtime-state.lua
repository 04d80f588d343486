--[[
  commit-runtime-state: commitRuntimeState (SPEC 6.2, 6.3). Every check in the order of SPEC 6.2,
  then every write, in one atomic step: nothing is written before the last check passes, and
  nothing after the first write can fail.

  KEYS[1]  lease
  KEYS[2]  states
  KEYS[3]  claims
  KEYS[4]  next
  KEYS[5]  active      interrupt deferral (T10)
  KEYS[6]  accepted
  KEYS[7]  genactive
  KEYS[8]  tomb
  KEYS[9]  head
  KEYS[10] nodes
  KEYS[11] order
  KEYS[12] blobs
  KEYS[13] usage
  KEYS[14] usageorder
  KEYS[15] stamps
  KEYS[16] dispatch        (shard)
  KEYS[17] tombs           (shard)
  KEYS[18] att             (shard)
  KEYS[19] att-uncommitted (shard)
  KEYS[20] activity        (optional) (shard) last activity, sent only with sessionRetentionMs: every applied commit

  ARGV[1] encoded session id
  ARGV[2] the commit, one JSON object made by buildCommitArgs (src/redis/commit-args.ts):
          Members that would be empty arrays or false are absent.
          requeue, wakes     true: strandedTurnInputs is 'requeue'; the store sends wake-ups
          turn               { id, hash } (hash: turnCommitHash as JSON text), absent without one
          fence, release     [ownerId, incarnationId, leaseToken, fencingToken], each absent when
                             the commit has none (a fence of another session is sent absent);
                             release is true when it is the same as fence
          noFence            true when the commit has no fence at all (the error says so)
          expected           expectedHeadRevision, absent when none
          queue              [sessionId, claimId] of the first completedQueueClaims element
          completions        array of { sessionId (absent: the commit's), claimId, token, inputIds }
          graphKind          'append' | 'replace_full' | 'unchanged'
          leaf               the new leafNodeId, absent when none
          nodes              array of [nodeId, stored value]: `<pct(parentNodeId)>|<node JSON>`
                             (src/redis/node-value.ts)
          refs               array of [field, ref]: checkpoint refs given without their snapshot
          config, agentFrames, currentAgentFrameId   JSON texts and the frame id
          blobs              the refs of the blobs to store, the manifest last
          usage              array of [group, five counter deltas as text]
          interrupt          interruptedTurnInputTurnId, absent when none
          attachments        array of pct(attachmentId)
  ARGV[3..] the content of each blob of `blobs`, in order (JSON text, or executionState bytes)

  Reply:
    { 0, wake, result }  result is the RuntimeCommitResult JSON of a turn commit (new, or
                         replayed from its stamp), or the new headRevision as an integer for a
                         commit without a turn stamp (the client completes that result); wake is
                         1 when the session should get an idle-dispatch wake-up
    { E.RuntimeTurnCommitConflict, {sessionId, turnId} }
    { E.SessionExecutionLeaseExpired, {sessionId, reason?} }  reason 'no_lease_fence' without a fence
    { E.TurnInterrupted, {sessionId, generation} }  the fence's generation is marked interrupted
                     (SPEC 3.9) and the commit lists turn-input completions or does not release it
    { E.MissingRecordSchemaVersion | E.InvalidRecordSchemaVersion |
      E.UnsupportedRecordSchemaVersion, {recordKind, actual?, expected} }
    { E.HeadRevisionConflict, {expected, actual} }
    { E.QueuedWorkClaimSuperseded, {sessionId, claimId} }
    { E.TurnInputClaimSuperseded, {sessionId, claimId} }
    { E.InvalidInput, {issues} }
    { E.Backend, {cause} }  an unreadable stored stamp
]]
-- @include row-index
-- @include lease
-- @include dispatchable
-- @include att

local c = cjson.decode(ARGV[2])
local NONE = {}
local completions = c.completions or NONE
local release = c.release == true and c.fence or c.release
local nodes = c.nodes or NONE
local refs = c.refs or NONE
local usage = c.usage or NONE
local attachments = c.attachments or NONE
local blobs = {}
for i, ref in ipairs(c.blobs) do blobs[i] = { ref, ARGV[2 + i] } end
local manifest = blobs[#blobs]
local now = now_ms()

-- ------------------------------------------------------------------ 2. turn-commit replay
local stampPrefix
if c.turn then
  stampPrefix = '{"turnCommitHash":' .. c.turn.hash .. ',"committedAtMs":'
  local stamp = redis.call('HGET', K.stamps, c.turn.id)
  if stamp then
    if string.sub(stamp, 1, #stampPrefix) ~= stampPrefix then
      return fail(E.RuntimeTurnCommitConflict, { sessionId = session_raw(), turnId = c.turn.id })
    end
    -- The stamp is {"turnCommitHash":…,"committedAtMs":N,"result":<result>}, written below.
    local at = string.find(stamp, ',"result":', #stampPrefix + 1, true)
    if not at then return fail(E.Backend, { cause = 'unreadable turn-commit stamp' }) end
    local released = false
    if release then
      local r = release
      released = lease_release(lease_read_fence(), r[1], r[2], r[3], r[4])
    end
    local wake = c.wakes and released and dispatchable(now, c.requeue, true)
    return { 0, wake and 1 or 0, string.sub(stamp, at + 10, -2) }
  end
end

-- ------------------------------------------------------------------ 3. fence
local lease = lease_read_fence()
local f = c.fence
if c.noFence then
  return fail(E.SessionExecutionLeaseExpired, { sessionId = session_raw(), reason = 'no_lease_fence' })
end
if not f or not fence_ok(lease, now, f[1], f[2], f[3], f[4]) then
  return fail(E.SessionExecutionLeaseExpired, { sessionId = session_raw() })
end
-- 3a. SPEC 3.9: an interrupted generation may still save its state, but completes no claim and
-- must release its own lease with this commit.
if lease_interrupted(lease) then
  local r = release
  if #completions > 0 or not r or r[1] ~= f[1] or r[2] ~= f[2] or r[3] ~= f[3] or r[4] ~= f[4] then
    return fail(E.TurnInterrupted, { sessionId = session_raw(), generation = tonumber(lease.fencingText) })
  end
end

-- ------------------------------------------------------------------ 4. head schema and CAS
local h = redis.call('HMGET', K.head, 'schemaVersion', 'headRevision', 'leafNodeId')
-- A head always has these fields; EXISTS only tells a head that lost them all from none.
local hasHead = h[1] or h[2] or h[3] or redis.call('EXISTS', K.head) == 1
local actual = 0
if hasHead then
  local sv = h[1]
  if not sv then
    return fail(E.MissingRecordSchemaVersion, { recordKind = 'session_head', expected = 1 })
  end
  if not string.match(sv, '^%-?%d+$') then
    return fail(E.InvalidRecordSchemaVersion, { recordKind = 'session_head', actual = sv, expected = 1 })
  end
  if tonumber(sv) ~= 1 then
    return fail(E.UnsupportedRecordSchemaVersion, { recordKind = 'session_head', actual = tonumber(sv), expected = 1 })
  end
  actual = tonumber(h[2] or '0') or 0
end
if c.expected ~= nil and c.expected ~= actual then
  return fail(E.HeadRevisionConflict, { expected = c.expected, actual = actual })
end

-- ------------------------------------------------------------------ 5. queued-work claims
if c.queue then
  return fail(E.QueuedWorkClaimSuperseded, { sessionId = c.queue[1], claimId = c.queue[2] })
end

-- ------------------------------------------------------------------ 6. turn-input completions
-- Every listed row must carry the claim, the claim's token must match, and the claim's carrier
-- count (row-format.lua) must equal the number of listed rows, or an unlisted row carries it.
local cache = {}
local completing = {}
for _, comp in ipairs(completions) do
  local superseded = {
    sessionId = comp.sessionId or session_raw(), claimId = comp.claimId,
  }
  if comp.sessionId then return fail(E.TurnInputClaimSuperseded, superseded) end
  local claim = claim_get(comp.claimId)
  if not claim or claim.token ~= comp.token or claim.carriers ~= #comp.inputIds then
    return fail(E.TurnInputClaimSuperseded, superseded)
  end
  for _, id in ipairs(comp.inputIds) do
    local row = row_cached(cache, id)
    if not row or row.claimId ~= comp.claimId then return fail(E.TurnInputClaimSuperseded, superseded) end
    completing[#completing + 1] = row
  end
end

-- ------------------------------------------------------------------ 7. content checks
local issues = {}
if c.graphKind == 'append' then
  for i, n in ipairs(nodes) do
    if redis.call('HEXISTS', K.nodes, n[1]) == 1 then
      issues[#issues + 1] = 'graph.nodes.' .. fmt(i - 1) .. '.nodeId: already exists in the session graph'
    end
  end
end
for _, r in ipairs(refs) do
  if redis.call('HEXISTS', K.blobs, r[2]) == 0 then
    issues[#issues + 1] = 'checkpoint.' .. r[1] .. ': names no blob of the session (send the snapshot, or the ref of a stored one)'
  end
end
if #issues > 0 then return fail(E.InvalidInput, { issues = issues }) end

-- The interrupt deferral (T10) reads its rows now and moves them in the write phase.
local interrupted = {}
if c.interrupt then
  local turn = pct(c.interrupt)
  for _, m in ipairs(redis.call('ZRANGEBYLEX', K.active, '[' .. turn .. ':', '(' .. turn .. ';')) do
    local _, _, id = active_member_parts(m)
    local row = id and row_cached(cache, id)
    if row and row.state == 'pending_active' then interrupted[#interrupted + 1] = row end
  end
end

-- The stored blob refs: a ref is the SHA-256 of its content, so a stored one needs no write.
local storedRefs = redis.call('HKEYS', K.blobs)

-- ================================================================== writes (SPEC 6.3)
-- 1. checkpoint blobs (snapshots, then the manifest)
local stored, live = {}, {}
for _, ref in ipairs(storedRefs) do stored[ref] = true end
for _, b in ipairs(blobs) do
  live[b[1]] = true
  if not stored[b[1]] then redis.call('HSET', K.blobs, b[1], b[2]) end
end
for _, r in ipairs(refs) do live[r[2]] = true end

-- 2. usage: five counters per (source, model) group, first-seen order in usageorder
local COUNTERS = { 'inputTokens', 'outputTokens', 'cacheReadInputTokens', 'cacheWriteInputTokens', 'reasoningOutputTokens' }
for _, u in ipairs(usage) do
  local group = u[1]
  if redis.call('ZSCORE', K.usageorder, group) == false then
    redis.call('ZADD', K.usageorder, redis.call('ZCARD', K.usageorder), group)
  end
  for i, name in ipairs(COUNTERS) do
    if u[i + 1] ~= '0' then redis.call('HINCRBY', K.usage, group .. ':' .. name, u[i + 1]) end
  end
end

-- 3. graph
if c.graphKind == 'replace_full' then redis.call('DEL', K.nodes, K.order) end
local ids = {}
for i, n in ipairs(nodes) do
  ids[i] = n[1]
  redis.call('HSET', K.nodes, n[1], n[2])
end
call_chunked('RPUSH', K.order, ids)

-- 4. head
local revision = fmt(actual + 1)
redis.call('HSET', K.head, 'schemaVersion', '1', 'headRevision', revision, 'config', c.config,
  'agentFrames', c.agentFrames, 'currentAgentFrameId', c.currentAgentFrameId, 'checkpointRef', manifest[1],
  'nodeCount', fmt(redis.call('HLEN', K.nodes)))
if c.leaf then
  redis.call('HSET', K.head, 'leafNodeId', c.leaf)
elseif h[3] then
  redis.call('HDEL', K.head, 'leafNodeId')
end

-- 5. settle claims (T8): step 6 proved the listed rows are every carrier, so each claim's entry
-- goes at once.
local settled, seen = {}, {}
for _, row in ipairs(completing) do
  if not seen[row] then -- a row listed twice is completed once
    seen[row] = true
    row.claimId = ''
    settled[#settled + 1] = row
  end
end
rows_move(settled, 'completed', now)
for _, comp in ipairs(completions) do redis.call('HDEL', K.claims, comp.claimId) end

-- 6. interrupt deferral (T10)
for _, row in ipairs(interrupted) do row_clear_claim(row) end
rows_move(interrupted, 'deferred_next_turn', now)

-- 7. attachment stamps on existing entries of this session
for _, encAtt in ipairs(attachments) do att_stamp(encAtt, now) end

-- 8. turn stamp, holding the exact result this call returns
local result
if c.turn then
  result = '{"headRevision":' .. revision .. ',"checkpointRef":"' .. manifest[1] .. '","manifest":' .. manifest[2] .. '}'
  redis.call('HSET', K.stamps, c.turn.id, stampPrefix .. fmt(now) .. ',"result":' .. result .. '}')
end

-- 9. fenced release
local released = false
if release then
  local r = release
  released = lease_release(lease, r[1], r[2], r[3], r[4])
end

-- 10. blob collection: keep exactly what the new head references
local stale = {}
for _, ref in ipairs(storedRefs) do
  if not live[ref] then stale[#stale + 1] = ref end
end
call_chunked('HDEL', K.blobs, stale)

if K.activity then redis.call('ZADD', K.activity, 'GT', fmt(now), ARGV[1]) end

local wake = c.wakes and (#interrupted > 0 or (released and dispatchable(now, c.requeue, true)))
return { 0, wake and 1 or 0, result or tonumber(revision) }
