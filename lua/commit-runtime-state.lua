-- commitRuntimeState (SPEC 6.2, 6.3): every check in the order of SPEC 6.2, then every write, in
-- one script. Nothing is written before the last check passes, and nothing after the first write
-- can fail (all decoding and lookups happen in the check phase).
--
-- Opaque JSON (config, agentFrames, nodes, snapshots, the manifest) arrives as client-made strings
-- and is stored as given; the stamp and the result are assembled by concatenation. ARGV is built
-- by src/redis/commit-codec.ts (buildCommitArgv); keep the two in step.
--
-- Replies { 0, result, wake } for a turn commit (new or replayed from its stamp): result is its
-- RuntimeCommitResult JSON; wake is 1 when the session should get an idle-dispatch wake-up. A
-- commit without a turn stamp replies with one integer, 2 * headRevision + wake: the client
-- (src/redis/commit-ops.ts) completes the result with its own checkpointRef and manifest, and a
-- bare integer costs Redis about 7k instructions less than a table. A domain error is
-- { code, detailsJson }.
--
-- KEYS, in this order (the `@keys` line): the 11 every commit may reach (lease, inputs, next,
-- accepted, genactive, byseq, tomb, the shard tombs, head, blobs, claims), then, in groups, those
-- only some commits reach: stamps (a turn commit), nodes parents order (a graph change), usage
-- usageorder (usage to fold), active and the shard dispatch index (an interrupt deferral), the
-- shard att att-uncommitted (attachment ids). The client sends the prefix up to the last group
-- its commit needs (commitKeyCount in src/redis/commit-codec.ts).
-- @keys lease inputs next accepted genactive byseq tomb tombs head blobs claims stamps nodes parents order usage usageorder active dispatch att att_uncommitted
-- @include keys
-- @include common
-- @include rows
-- @include att

-- ARGV (src/redis/commit-codec.ts, buildCommitArgv): 1 the encoded session id (error details
-- decode it, session_raw); 2 flags, one '0'/'1'
-- per position: requeue, turn, release, release-is-the-fence, fence, expected, queue, leaf,
-- interrupt, nodes, refs, usage, attachments, wakes (the store sends idle-dispatch wake-ups; without
-- it the wake check is skipped and wake is 0); then the groups below in order, optional ones only
-- when flagged (an unflagged list is empty and sends no count). Read by position without helper
-- closures: every argument and call here runs on every commit.
local flags = ARGV[2]
local requeue = string.byte(flags, 1) == 49
local hasTurn = string.byte(flags, 2) == 49
local hasRelease = string.byte(flags, 3) == 49
local releaseIsFence = string.byte(flags, 4) == 49
local hasFence = string.byte(flags, 5) == 49
local hasExpected = string.byte(flags, 6) == 49
local hasQueue = string.byte(flags, 7) == 49
local hasLeaf = string.byte(flags, 8) == 49
local hasInterrupt = string.byte(flags, 9) == 49
local hasNodes = string.byte(flags, 10) == 49
local hasRefs = string.byte(flags, 11) == 49
local hasUsage = string.byte(flags, 12) == 49
local hasAtts = string.byte(flags, 13) == 49
local wakes = string.byte(flags, 14) == 49
local ai = 3
local turnId, hashJson
if hasTurn then
  turnId, hashJson = ARGV[ai], ARGV[ai + 1]
  ai = ai + 2
end
local rel
if hasRelease and not releaseIsFence then
  rel = { ARGV[ai], ARGV[ai + 1], ARGV[ai + 2], ARGV[ai + 3] }
  ai = ai + 4
end
local fence
if hasFence then
  fence = { ARGV[ai], ARGV[ai + 1], ARGV[ai + 2], ARGV[ai + 3] }
  ai = ai + 4
end
if releaseIsFence then rel = fence end
local expected
if hasExpected then
  expected = tonumber(ARGV[ai])
  ai = ai + 1
end
local queueSession, queueClaim
if hasQueue then
  queueSession, queueClaim = ARGV[ai], ARGV[ai + 1]
  ai = ai + 2
end
-- turn-input completions: session id ('' = the commit's), claim id, token, n, n input ids
local comps = {}
for i = 1, tonumber(ARGV[ai]) do
  local sid = ARGV[ai + 1]
  local n = tonumber(ARGV[ai + 4])
  local ids = {}
  for k = 1, n do ids[k] = ARGV[ai + 4 + k] end
  comps[i] = { sessionId = sid, sameSession = sid == '', claimId = ARGV[ai + 2],
    token = ARGV[ai + 3], ids = ids, rows = {} }
  ai = ai + 4 + n
end
ai = ai + 1
-- graph delta: kind, leaf (flagged), then (flagged) n and per node: id, parent ('' = none), node JSON
local graphKind = ARGV[ai]
ai = ai + 1
local leaf
if hasLeaf then
  leaf = ARGV[ai]
  ai = ai + 1
end
-- The usually empty groups share one empty table (a table per group is an allocation per commit).
local NONE = {}
local nodes = NONE
if hasNodes then
  nodes = {}
  for i = 1, tonumber(ARGV[ai]) do
    local at = ai + 3 * (i - 1)
    nodes[i] = { id = ARGV[at + 1], parent = ARGV[at + 2], json = ARGV[at + 3] }
  end
  ai = ai + 1 + 3 * #nodes
end
-- refs given without their snapshot (flagged): n, then field, ref
local refsToCheck = NONE
if hasRefs then
  refsToCheck = {}
  for i = 1, tonumber(ARGV[ai]) do
    refsToCheck[i] = { field = ARGV[ai + 2 * i - 1], ref = ARGV[ai + 2 * i] }
  end
  ai = ai + 1 + 2 * #refsToCheck
end
-- head payloads
local config, agentFrames, currentFrame = ARGV[ai], ARGV[ai + 1], ARGV[ai + 2]
ai = ai + 3
-- blobs to store (ref, content), the manifest last. The new head keeps these and the refs given
-- without their snapshot (refsToCheck), and nothing else.
local blobs = {}
local live = {}
for i = 1, tonumber(ARGV[ai]) do
  local ref = ARGV[ai + 2 * i - 1]
  blobs[i] = { ref = ref, content = ARGV[ai + 2 * i] }
  live[ref] = true
end
ai = ai + 1 + 2 * #blobs
for _, r in ipairs(refsToCheck) do live[r.ref] = true end
local manifest = blobs[#blobs]
local checkpointRef = manifest.ref
-- folded usage (flagged): n, then per group its member and the five counters
local usage = NONE
if hasUsage then
  usage = {}
  for i = 1, tonumber(ARGV[ai]) do
    local at = ai + 6 * (i - 1)
    usage[i] = { group = ARGV[at + 1], counters = { ARGV[at + 2], ARGV[at + 3], ARGV[at + 4], ARGV[at + 5], ARGV[at + 6] } }
  end
  ai = ai + 1 + 6 * #usage
end
-- interrupt deferral (flagged)
local interruptTurn
if hasInterrupt then
  interruptTurn = ARGV[ai]
  ai = ai + 1
end
-- committed attachment ids, encoded (flagged): n, then the ids
local attIds = NONE
if hasAtts then
  attIds = {}
  for i = 1, tonumber(ARGV[ai]) do attIds[i] = ARGV[ai + i] end
end

local now = now_ms()

-- ------------------------------------------------------------------ 2. turn-commit replay
local stampPrefix
if hasTurn then
  stampPrefix = '{"turnCommitHash":' .. hashJson .. ',"committedAtMs":'
  local stamp = redis.call('HGET', K.stamps, turnId)
  if stamp then
    if string.sub(stamp, 1, #stampPrefix) ~= stampPrefix then
      return { E.RuntimeTurnCommitConflict, '{"sessionId":' .. cjson.encode(session_raw()) .. ',"turnId":' .. cjson.encode(turnId) .. '}' }
    end
    local at = string.find(stamp, ',"result":', #stampPrefix + 1, true)
    if not at then
      return fail(E.Backend, { cause = 'unreadable turn-commit stamp' })
    end
    local result = string.sub(stamp, at + 10, -2)
    local released = false
    if hasRelease then released = lease_release(rel[1], rel[2], rel[3], rel[4]) end
    local wake = wakes and released and dispatchable(now, requeue, true)
    return { 0, result, wake and 1 or 0 }
  end
end

-- ------------------------------------------------------------------ 3. fence
local lease = lease_read_fence()
if not hasFence or not fence_ok(lease, now, fence[1], fence[2], fence[3], fence[4]) then
  return { E.SessionExecutionLeaseExpired, '{"sessionId":' .. cjson.encode(session_raw()) .. '}' }
end

-- ------------------------------------------------------------------ 4. head schema and CAS
local actual = 0
local nodeSeq = 0
local h = redis.call('HMGET', K.head, 'schemaVersion', 'headRevision', 'nodeSeq', 'leafNodeId')
local hasHead = h[1] or h[2] or h[3] or h[4] or redis.call('EXISTS', K.head) == 1
local storedLeaf = h[4]
if hasHead then
  local sv = h[1]
  -- The stored '1' passes both checks below; only another value pays for them.
  if sv ~= '1' then
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
  end
  actual = tonumber(h[2] or '0') or 0
  -- Only a commit that writes nodes counts on from the stored insertion counter.
  if graphKind ~= 'unchanged' then nodeSeq = tonumber(h[3] or '0') or 0 end
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
-- Rows are read once; the write phase updates these same tables. id -> row, or false.
local rowCache = {}

-- The rejection of completion c (its details are only encoded when it is returned). Its session
-- id is sent only when it is not the commit's ('' then).
local function superseded(c)
  return { E.TurnInputClaimSuperseded,
    '{"sessionId":' .. cjson.encode(c.sameSession and session_raw() or c.sessionId) .. ',"claimId":' .. cjson.encode(c.claimId) .. '}' }
end

-- A stored value that is not a claimed row in text form, decoded (nil when unreadable). Lazy:
-- the commits of claimed rows never decode one.
-- @lazy
local function decoded_row(inputId, raw)
  return row_decode(inputId, raw)
end

-- A listed row: a claimed row is read as text (row_text) and completed without decoding; a value
-- in another form is decoded.
local function completion_row(inputId)
  local row = rowCache[inputId]
  if row == nil then
    local raw = redis.call('HGET', K.inputs, inputId)
    local t = raw and row_text(raw)
    if t and (t.state == 'deferred_next_turn' or t.state == 'accepted') then
      t.inputId = inputId
      row = t
    else
      row = raw and decoded_row(inputId, raw) or false
    end
    rowCache[inputId] = row
  end
  return row
end

for _, c in ipairs(comps) do
  if not c.sameSession then return superseded(c) end
  for _, inputId in ipairs(c.ids) do
    local row = completion_row(inputId)
    local carries
    if not row then
      carries = false
    elseif row.text then
      carries = row_text_carries(row, c.claimId, c.token)
    else
      carries = row.claimId == c.claimId and row.claimToken == c.token
    end
    if not carries then return superseded(c) end
    c.rows[#c.rows + 1] = row
  end
  -- Every listed row carries c; K.claims counts the rows carrying c (kept by rows.lua), so an
  -- unlisted carrier exists exactly when that count is not the number of listed rows.
  if not claim_carried_by(c.claimId, #c.rows) then
    return superseded(c)
  end
end

-- ------------------------------------------------------------------ 7. content checks
-- Only an append or refs given without their snapshot have anything to check.
if graphKind == 'append' or hasRefs then
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
end

-- Interrupt deferral (T10) reads its rows here, before the first write, and defers them in the
-- write phase. Lazy, like every optional part of a commit: a commit that does not interrupt
-- creates none of their helpers (nor the list).
local interrupted
-- @lazy
local function read_interrupted()
  interrupted = {}
  local p = pct(interruptTurn)
  local members = redis.call('ZRANGEBYLEX', K.active, '[' .. p .. ':', '(' .. p .. ';')
  for _, m in ipairs(members) do
    local row = row_cached(rowCache, active_member_id(m))
    if row and row.state == 'pending_active' then interrupted[#interrupted + 1] = row end
  end
end

-- @lazy
local function defer_interrupted()
  for _, row in ipairs(interrupted) do
    row_clear_claim(row)
    row_set_state(row, 'deferred_next_turn', now)
  end
end

if hasInterrupt then read_interrupted() end

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
local COUNTERS = hasUsage
  and { 'inputTokens', 'outputTokens', 'cacheReadInputTokens', 'cacheWriteInputTokens', 'reasoningOutputTokens' }
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
  if n.parent ~= '' then redis.call('HSET', K.parents, n.id, n.parent) end
  redis.call('ZADD', K.order, fmt(nodeSeq), n.id)
end

-- 4. head
local revision = actual + 1
local revisionText = fmt(revision)
if graphKind == 'unchanged' and hasHead then
  -- No node was written, so nodeCount and nodeSeq stand.
  redis.call('HSET', K.head, 'headRevision', revisionText, 'config', config, 'agentFrames', agentFrames,
    'currentAgentFrameId', currentFrame, 'checkpointRef', checkpointRef)
else
  redis.call('HSET', K.head, 'schemaVersion', '1', 'headRevision', revisionText, 'config', config,
    'agentFrames', agentFrames, 'currentAgentFrameId', currentFrame, 'checkpointRef', checkpointRef,
    -- A first commit that writes no node has none (nodes are only ever written with a head).
    'nodeCount', graphKind == 'unchanged' and '0' or fmt(redis.call('HLEN', K.nodes)), 'nodeSeq', fmt(nodeSeq))
end
if hasLeaf then
  redis.call('HSET', K.head, 'leafNodeId', leaf)
elseif storedLeaf then
  redis.call('HDEL', K.head, 'leafNodeId')
end

-- 5. settle claims (T8). Step 6 proved that the listed rows are every carrier of c, so its
-- K.claims entry goes at once instead of row by row.
-- A decoded row is completed by the general path (lazy, as above).
-- @lazy
local function complete_decoded(row)
  row_set_state(row, 'completed', now, true)
end

local textRows = {}
for _, c in ipairs(comps) do
  for _, row in ipairs(c.rows) do
    if row.text then textRows[#textRows + 1] = row else complete_decoded(row) end
  end
  redis.call('HDEL', K.claims, c.claimId)
end
rows_text_complete(textRows, now)

-- 6. interrupt deferral (T10)
local deferred = interrupted ~= nil and #interrupted > 0
if deferred then defer_interrupted() end

-- 7. attachment stamps on existing entries of this session
for _, encAtt in ipairs(attIds) do att_stamp(encAtt, now) end

-- 8. turn stamp, holding the exact result this call returns. Without a stamp the reply is the
-- revision alone: the client has the checkpointRef and the manifest (it made them), and the
-- result text would cost this script a concatenation of the manifest.
-- checkpointRef is a sha256 hex string: no escaping needed.
local result
if hasTurn then
  result = '{"headRevision":' .. revisionText .. ',"checkpointRef":"' .. checkpointRef .. '","manifest":'
    .. manifest.content .. '}'
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

local wake = wakes and (deferred or (released and dispatchable(now, requeue, true)))
if not hasTurn then return 2 * revision + (wake and 1 or 0) end
return { 0, result, wake and 1 or 0 }
