--[[
  load-session: loadSession (SPEC 6.5): the head, the manifest and the snapshot blobs it names,
  the usage ledger and the nodes of the scope, in one read. Schema checks and JSON parsing happen
  in the client (parseLoadSessionReply in src/redis/load-session-reply.ts); blobs are returned as
  stored, so executionState bytes stay exact.

  KEYS[1] head
  KEYS[2] nodes
  KEYS[3] order
  KEYS[4] blobs
  KEYS[5] usage
  KEYS[6] usageorder

  ARGV[1] encoded session id
  ARGV[2] 'full' | 'path'
  ARGV[3] '1' when the scope names a leaf, else '0'
  ARGV[4] that leaf ('' when none)

  Reply:
    { 0, 0 }  no head (the session was never committed)
    { 0, 1, schemaVersion, headRevision, config, agentFrames, currentAgentFrameId, checkpointRef,
      leafNodeId, manifest, n, ref1, blob1, ..., g, group1, c1..c5, ..., m, node1, ... }
      the seven head fields as stored (false when absent); the manifest blob; n candidate refs
      with their blobs; g usage groups with their five counters; m stored node values
      `<pct(parentNodeId)>|<node JSON>` (full_graph order, or root to leaf for active_path); the
      client strips the prefix
]]
-- @include common

local mode = ARGV[2]
local scopeHasLeaf = ARGV[3] == '1'
local scopeLeaf = ARGV[4]

if redis.call('EXISTS', K.head) == 0 then return { 0, 0 } end

local out = { 0, 1 }
local function push(v) out[#out + 1] = v end

local h = redis.call('HMGET', K.head, 'schemaVersion', 'headRevision', 'config', 'agentFrames',
  'currentAgentFrameId', 'checkpointRef', 'leafNodeId')
for i = 1, 7 do push(h[i]) end
local checkpointRef = h[6]
local headLeaf = h[7]

-- The manifest, and the blobs of every ref it may name. A manifest is canonical JSON with
-- turnState (sorted last) after the refs, and refs are content addresses, so a plain match finds
-- them; a false candidate (a look-alike inside turnState) only costs one extra HGET, because the
-- client reads the refs from the parsed manifest.
local manifest = false
if checkpointRef then manifest = redis.call('HGET', K.blobs, checkpointRef) end
push(manifest)
local candidates = {}
if manifest then
  for _, field in ipairs({ 'toolStateRef', 'pluginSnapshotRef', 'executionStateRef' }) do
    local ref = string.match(manifest, '"' .. field .. '":"([^"\\]*)"')
    if ref then candidates[#candidates + 1] = ref end
  end
end
push(#candidates)
for _, ref in ipairs(candidates) do
  push(ref)
  push(redis.call('HGET', K.blobs, ref))
end

-- The usage ledger in first-seen order.
local COUNTERS = { 'inputTokens', 'outputTokens', 'cacheReadInputTokens', 'cacheWriteInputTokens', 'reasoningOutputTokens' }
local groups = redis.call('ZRANGE', K.usageorder, 0, -1)
push(#groups)
for _, g in ipairs(groups) do
  push(g)
  local fields = {}
  for i, c in ipairs(COUNTERS) do fields[i] = g .. ':' .. c end
  local v = redis.call('HMGET', K.usage, unpack(fields))
  for i = 1, 5 do push(v[i]) end
end

-- The nodes of the scope.
local nodes = {}
if mode == 'full' then
  local ids = redis.call('LRANGE', K.order, 0, -1)
  for i = 1, #ids, 512 do
    local batch = redis.call('HMGET', K.nodes, unpack(ids, i, math.min(i + 511, #ids)))
    for j = 1, #batch do
      if batch[j] then nodes[#nodes + 1] = batch[j] end
    end
  end
else
  local leaf = headLeaf
  if scopeHasLeaf then leaf = scopeLeaf end
  -- Leaf to root through the parent in front of each stored node (`<pct(parent)>|`, empty for
  -- a root): stops at a missing node or one already visited. O(path).
  local path = {}
  local seen = {}
  local cur = leaf
  while cur and not seen[cur] do
    local node = redis.call('HGET', K.nodes, cur)
    if not node then break end
    seen[cur] = true
    path[#path + 1] = node
    local parent = string.match(node, '^[^|]*')
    cur = parent ~= '' and unpct(parent) or nil
  end
  for i = #path, 1, -1 do nodes[#nodes + 1] = path[i] end
end
push(#nodes)
for _, n in ipairs(nodes) do push(n) end
return out
