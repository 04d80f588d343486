--[[
  store-stats: the gauge figures of one shard (SPEC 17.4), over a page of the sessions in its
  dispatch index. Read-only; the server clock of the node holding the shard is the clock.

  The sessions visited are the members of the shard's dispatch index: every session with
  dispatchable input is one (docs/KEYS.md). Their keys are built here from the member (the encoded
  session id) and ARGV[1]: a session's keys hash to the slot of its shard's keys, so on Cluster
  they are on this node and in this script's slot.

  KEYS[1] dispatch   (shard) member: encoded session id

  ARGV[1] the key prefix (the sessions' keys are <prefix>:{<member>}:<name>)
  ARGV[2] offset of the first member to visit, in index order (integer >= 0)
  ARGV[3] the most members to visit (positive integer)

  Reply:
    { 0, now, visited, sessionsWithPendingInput, pendingInputs, oldestPendingAt, liveLeases,
      stalledClaims }
      now              the server clock (ms)
      visited          members visited; fewer than ARGV[3]: the page was the index's last
      oldestPendingAt  enqueuedAtMs of the oldest pending input of the page, '' when none
      the other figures are counts over the page's sessions: pending inputs are rows in
      deferred_next_turn or pending_active that carry no live claim; a live lease has a token and
      a future expiry; a stalled claim is a claim of the live generation past its stall deadline
]]
-- @include common

local now = now_ms()
local members = redis.call('ZRANGE', K.dispatch, tonumber(ARGV[2]), tonumber(ARGV[2]) + tonumber(ARGV[3]) - 1)
local withPending, pending, liveLeases, stalled = 0, 0, 0, 0
local oldest = nil

-- The record's enqueuedAtMs: records open with {"seq":<n>,"at":<ms>, (row-format.lua).
local function enqueued_at(inputs, id)
  local record = redis.call('HGET', inputs, id)
  return record and tonumber(string.match(record, '"at":(%d+)')) or nil
end

for _, member in ipairs(members) do
  local base = ARGV[1] .. ':{' .. member .. '}:'
  local lease = redis.call('HMGET', base .. 'lease', 'leaseToken', 'fencingToken', 'expiresAtEpochMs')
  local gen = nil
  if lease[2] and (lease[1] or '') ~= '' and tonumber(lease[3] or '0') > now then
    gen = lease[2]
    liveLeases = liveLeases + 1
  end
  -- Claims of the live generation: the live ones, and those past their stall deadline.
  local live = {}
  if gen then
    local claims = redis.call('HGETALL', base .. 'claims')
    for i = 1, #claims, 2 do
      local g, expires = string.match(claims[i + 1], '^%d+|(%d+)|[^|]*|%d+|(%d+)|')
      if g == gen then
        live[claims[i]] = true
        if tonumber(expires) < now then stalled = stalled + 1 end
      end
    end
  end
  local states = base .. 'states'
  local inputs = base .. 'inputs'
  local count = 0
  -- A row carries a live claim when its state entry names one (field 4, docs/KEYS.md).
  local function unclaimed(id)
    local entry = redis.call('HGET', states, id)
    if not entry then return true end
    local claimId = string.match(entry, '^[^|]*|[^|]*|[^|]*|([^|]*)|')
    return not (claimId and claimId ~= '' and live[claimId])
  end
  -- next is in enqueueSeq order, and enqueuedAtMs follows enqueueSeq: the first pending row is the oldest.
  local firstNext = nil
  for _, id in ipairs(redis.call('ZRANGE', base .. 'next', 0, -1)) do
    if unclaimed(id) then
      count = count + 1
      firstNext = firstNext or id
    end
  end
  local firstActive, firstActiveSeq = nil, nil
  for _, m in ipairs(redis.call('ZRANGE', base .. 'active', 0, -1)) do
    local seq, id = string.match(m, '^[^:]*:(%d+):[ab]:(.*)$')
    if id and unclaimed(id) then
      count = count + 1
      if not firstActiveSeq or tonumber(seq) < firstActiveSeq then firstActive, firstActiveSeq = id, tonumber(seq) end
    end
  end
  if count > 0 then
    withPending = withPending + 1
    pending = pending + count
    for _, id in ipairs({ firstNext or false, firstActive or false }) do
      if id then
        local at = enqueued_at(inputs, id)
        if at and (not oldest or at < oldest) then oldest = at end
      end
    end
  end
end

return { 0, fmt(now), #members, withPending, pending, oldest and fmt(oldest) or '', liveLeases, stalled }
