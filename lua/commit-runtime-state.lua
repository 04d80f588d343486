-- commitRuntimeState (SPEC 6.2, 6.3): every check in the order of SPEC 6.2, then every write, in
-- one script. Nothing is written before the last check passes, and nothing after the first write
-- can fail (all decoding and lookups happen in the check phase).
--
-- Opaque JSON (config, agentFrames, nodes, snapshots, the manifest) arrives as client-made strings
-- and is stored as given; the stamp and the result are assembled by concatenation. ARGV is built
-- by src/redis/commit-codec.ts (buildCommitArgv); keep the two in step.
-- @include keys
-- @include common
-- @include rows
-- @include att

local ai = 2
local function nxt()
  local v = ARGV[ai]
  ai = ai + 1
  return v
end
local function flag() return nxt() == '1' end
local function num() return tonumber(nxt()) end
-- n successive arguments as a list (explicit order: constructor evaluation order is unspecified).
local function list(n)
  local out = {}
  for i = 1, n do out[i] = nxt() end
  return out
end

local rawSession = nxt()
local requeue = flag()
-- turn commit: present, turn id, JSON-encoded hash
local hasTurn = flag()
local turnId = nxt()
local hashJson = nxt()
-- fenced release
local hasRelease = flag()
local rel = list(4)
-- fence (sent as absent when missing or naming another session)
local hasFence = flag()
local fence = list(4)
-- head CAS
local hasExpected = flag()
local expected = num()
-- queued-work claims: the first one only
local hasQueue = flag()
local queueSession = nxt()
local queueClaim = nxt()
-- turn-input completions
local comps = {}
for i = 1, num() do
  local c = { rows = {} }
  c.sameSession = flag()
  c.sessionId = nxt()
  c.claimId = nxt()
  c.token = nxt()
  c.ids = list(num())
  comps[i] = c
end
-- graph delta
local graphKind = nxt()
local hasLeaf = flag()
local leaf = nxt()
local nodes = {}
for i = 1, num() do
  local n = {}
  n.id = nxt()
  n.hasParent = flag()
  n.parent = nxt()
  n.json = nxt()
  nodes[i] = n
end
-- refs given without their snapshot
local refsToCheck = {}
for i = 1, num() do
  local field = nxt()
  refsToCheck[i] = { field = field, ref = nxt() }
end
-- head payloads and the result tail
local config = nxt()
local agentFrames = nxt()
local currentFrame = nxt()
local checkpointRef = nxt()
local resultTail = nxt()
-- blobs to store, then the refs the new head keeps
local blobs = {}
for i = 1, num() do
  local ref = nxt()
  blobs[i] = { ref = ref, content = nxt() }
end
local live = {}
for _ = 1, num() do live[nxt()] = true end
-- folded usage: group member, then the five counters
local usage = {}
for i = 1, num() do
  local group = nxt()
  usage[i] = { group = group, counters = list(5) }
end
-- interrupt deferral
local hasInterrupt = flag()
local interruptTurn = nxt()
-- committed attachment ids, encoded
local attIds = list(num())

local COUNTERS = { 'inputTokens', 'outputTokens', 'cacheReadInputTokens', 'cacheWriteInputTokens', 'reasoningOutputTokens' }

local now = now_ms()
local sessionJson = cjson.encode(rawSession)

-- ------------------------------------------------------------------ 2. turn-commit replay
local stampPrefix = '{"turnCommitHash":' .. hashJson .. ',"committedAtMs":'
if hasTurn then
  local stamp = redis.call('HGET', K.stamps, turnId)
  if stamp then
    if string.sub(stamp, 1, #stampPrefix) ~= stampPrefix then
      return { E.RuntimeTurnCommitConflict, '{"sessionId":' .. sessionJson .. ',"turnId":' .. cjson.encode(turnId) .. '}' }
    end
    local at = string.find(stamp, ',"result":', #stampPrefix + 1, true)
    if not at then
      return fail(E.Backend, { cause = 'unreadable turn-commit stamp' })
    end
    local result = string.sub(stamp, at + 10, -2)
    local released = false
    if hasRelease then released = lease_release(rel[1], rel[2], rel[3], rel[4]) end
    local wake = released and dispatchable(now, requeue, true)
    return { 0, result, wake and 1 or 0 }
  end
end

-- ------------------------------------------------------------------ 3. fence
local lease = lease_read()
if not hasFence or not fence_ok(lease, now, fence[1], fence[2], fence[3], fence[4]) then
  return { E.SessionExecutionLeaseExpired, '{"sessionId":' .. sessionJson .. '}' }
end

-- ------------------------------------------------------------------ 4. head schema and CAS
local actual = 0
local nodeSeq = 0
local h = redis.call('HMGET', K.head, 'schemaVersion', 'headRevision', 'nodeSeq', 'leafNodeId')
local hasHead = h[1] or h[2] or h[3] or h[4] or redis.call('EXISTS', K.head) == 1
local storedLeaf = h[4]
if hasHead then
  local sv = h[1]
  if not sv then
    return { E.MissingRecordSchemaVersion, '{"recordKind":"session_head","expected":1}' }
  end
  if not string.match(sv, '^%-?%d+$') then
    return { E.InvalidRecordSchemaVersion,
      '{"recordKind":"session_head","actual":' .. cjson.encode(sv) .. ',"expected":1}' }
  end
  if tonumber(sv) ~= 1 then
    return { E.UnsupportedRecordSchemaVersion,
      '{"recordKind":"session_head","actual":' .. fmt(tonumber(sv)) .. ',"expected":1}' }
  end
  actual = tonumber(h[2] or '0') or 0
  nodeSeq = tonumber(h[3] or '0') or 0
end
if hasExpected and expected ~= actual then
  return { E.HeadRevisionConflict, '{"expected":' .. fmt(expected) .. ',"actual":' .. fmt(actual) .. '}' }
end

-- ------------------------------------------------------------------ 5. queued-work claims
if hasQueue then
  return { E.QueuedWorkClaimSuperseded,
    '{"sessionId":' .. cjson.encode(queueSession) .. ',"claimId":' .. cjson.encode(queueClaim) .. '}' }
end

-- ------------------------------------------------------------------ 6. turn-input completions
-- Rows are decoded once; the write phase updates these same tables.
local rowCache = {}

-- The rejection of completion c (its details are only encoded when it is returned).
local function superseded(c)
  return { E.TurnInputClaimSuperseded,
    '{"sessionId":' .. cjson.encode(c.sessionId) .. ',"claimId":' .. cjson.encode(c.claimId) .. '}' }
end

for _, c in ipairs(comps) do
  if not c.sameSession then return superseded(c) end
  for _, inputId in ipairs(c.ids) do
    local row = row_cached(rowCache, inputId)
    if not row or row.claimId ~= c.claimId or row.claimToken ~= c.token then
      return superseded(c)
    end
    c.rows[#c.rows + 1] = row
  end
  -- Every listed row carries c; rows carrying c number claim_carriers(c) (K.claims, kept by
  -- rows.lua), so an unlisted carrier exists exactly when that count exceeds the listed rows.
  if claim_carriers(c.claimId) ~= #c.rows then
    return superseded(c)
  end
end

-- ------------------------------------------------------------------ 7. content checks
local issues = {}
if graphKind == 'append' then
  for i, n in ipairs(nodes) do
    if redis.call('HEXISTS', K.nodes, n.id) == 1 then
      issues[#issues + 1] = 'graph.nodes.' .. fmt(i - 1) .. '.nodeId: already exists in the session graph'
    end
  end
end
for _, r in ipairs(refsToCheck) do
  if redis.call('HEXISTS', K.blobs, r.ref) == 0 then
    issues[#issues + 1] = 'checkpoint.' .. r.field
      .. ': names no blob of the session (send the snapshot, or the ref of a stored one)'
  end
end
if #issues > 0 then return fail(E.InvalidInput, { issues = issues }) end

-- Interrupt deferral reads its rows here, before the first write.
local interrupted = {}
if hasInterrupt then
  local p = pct(interruptTurn)
  local members = redis.call('ZRANGEBYLEX', K.active, '[' .. p .. ':', '(' .. p .. ';')
  for _, m in ipairs(members) do
    local row = row_cached(rowCache, active_member_id(m))
    if row and row.state == 'pending_active' then interrupted[#interrupted + 1] = row end
  end
end

-- The session's blob refs, read now so the writes below can skip blobs already stored (a ref
-- is the SHA-256 of its content, so a stored ref holds that content) and collect the rest.
local storedRefs = redis.call('HKEYS', K.blobs)

-- ================================================================== writes (SPEC 6.3)
-- 1. checkpoint blobs (snapshots, then the manifest)
local stored = {}
for _, ref in ipairs(storedRefs) do stored[ref] = true end
for _, b in ipairs(blobs) do
  if not stored[b.ref] then redis.call('HSET', K.blobs, b.ref, b.content) end
end

-- 2. usage: five counters per (source, model) group, first-seen order in usageorder
for _, u in ipairs(usage) do
  if redis.call('ZSCORE', K.usageorder, u.group) == false then
    redis.call('ZADD', K.usageorder, redis.call('ZCARD', K.usageorder), u.group)
  end
  for i, name in ipairs(COUNTERS) do
    local delta = u.counters[i]
    if delta ~= '0' then redis.call('HINCRBY', K.usage, u.group .. ':' .. name, delta) end
  end
end

-- 3. graph
if graphKind == 'replace_full' then redis.call('DEL', K.nodes, K.parents, K.order) end
for _, n in ipairs(nodes) do
  nodeSeq = nodeSeq + 1
  redis.call('HSET', K.nodes, n.id, n.json)
  if n.hasParent then redis.call('HSET', K.parents, n.id, n.parent) end
  redis.call('ZADD', K.order, nodeSeq, n.id)
end

-- 4. head
local revision = actual + 1
if graphKind == 'unchanged' and hasHead then
  -- No node was written, so nodeCount and nodeSeq stand.
  redis.call('HSET', K.head, 'headRevision', fmt(revision), 'config', config, 'agentFrames', agentFrames,
    'currentAgentFrameId', currentFrame, 'checkpointRef', checkpointRef)
else
  redis.call('HSET', K.head, 'schemaVersion', '1', 'headRevision', fmt(revision), 'config', config,
    'agentFrames', agentFrames, 'currentAgentFrameId', currentFrame, 'checkpointRef', checkpointRef,
    'nodeCount', fmt(redis.call('HLEN', K.nodes)), 'nodeSeq', fmt(nodeSeq))
end
if hasLeaf then
  redis.call('HSET', K.head, 'leafNodeId', leaf)
elseif storedLeaf then
  redis.call('HDEL', K.head, 'leafNodeId')
end

-- 5. settle claims (T8). Step 6 proved that the listed rows are every carrier of c, so its
-- K.claims entry goes at once instead of row by row.
for _, c in ipairs(comps) do
  for _, row in ipairs(c.rows) do row_set_state(row, 'completed', now, true) end
  redis.call('HDEL', K.claims, c.claimId)
end

-- 6. interrupt deferral (T10)
local deferred = false
for _, row in ipairs(interrupted) do
  row_clear_claim(row)
  row_set_state(row, 'deferred_next_turn', now)
  deferred = true
end

-- 7. attachment stamps on existing entries of this session
for _, encAtt in ipairs(attIds) do att_stamp(encAtt, now) end

-- 8. turn stamp, holding the exact result this call returns
local result = '{"headRevision":' .. fmt(revision) .. resultTail
if hasTurn then
  redis.call('HSET', K.stamps, turnId, stampPrefix .. fmt(now) .. ',"result":' .. result .. '}')
end

-- 9. fenced release
local released = false
if hasRelease then released = lease_release(rel[1], rel[2], rel[3], rel[4], lease) end

-- 10. blob collection: keep exactly what the new head references
local stale = {}
for _, ref in ipairs(storedRefs) do
  if not live[ref] then stale[#stale + 1] = ref end
end
for i = 1, #stale, 256 do
  redis.call('HDEL', K.blobs, unpack(stale, i, math.min(i + 255, #stale)))
end

local wake = deferred or (released and dispatchable(now, requeue, true))
return { 0, result, wake and 1 or 0 }
