-- Shared by store-stats and pending-sessions (SPEC 17.4): the figures of one session, read from
-- keys built from its encoded id (the caller's shard is in the session's slot). Read-only.
-- @include common

-- `base` is '<prefix>:{<encoded session id>}:'. Returns: pending inputs (deferred_next_turn or
-- pending_active rows carrying no live claim), the enqueuedAtMs of the oldest of them (nil when
-- none), whether the lease is live, and the live generation's claims past their stall deadline.
local function session_figures(base, now)
  local lease = redis.call('HMGET', base .. 'lease', 'leaseToken', 'fencingToken', 'expiresAtEpochMs')
  local gen = nil
  if lease[2] and (lease[1] or '') ~= '' and tonumber(lease[3] or '0') > now then gen = lease[2] end
  local live, stalled = {}, 0
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
  -- A row carries a live claim when its state entry names one (field 4, docs/KEYS.md).
  local function unclaimed(id)
    local entry = redis.call('HGET', states, id)
    if not entry then return true end
    local claimId = string.match(entry, '^[^|]*|[^|]*|[^|]*|([^|]*)|')
    return not (claimId and claimId ~= '' and live[claimId])
  end
  local count = 0
  -- next is in enqueueSeq order and enqueuedAtMs follows enqueueSeq: its first pending row is its oldest.
  local firstNext = nil
  for _, id in ipairs(redis.call('ZRANGE', base .. 'next', 0, -1)) do
    if unclaimed(id) then
      count = count + 1
      firstNext = firstNext or id
    end
  end
  local firstActive, firstSeq = nil, nil
  for _, m in ipairs(redis.call('ZRANGE', base .. 'active', 0, -1)) do
    local seq, id = string.match(m, '^[^:]*:(%d+):[ab]:(.*)$')
    if id and unclaimed(id) then
      count = count + 1
      if not firstSeq or tonumber(seq) < firstSeq then firstActive, firstSeq = id, tonumber(seq) end
    end
  end
  local oldest = nil
  for _, id in ipairs({ firstNext or false, firstActive or false }) do
    if id then
      -- Records open with {"seq":<n>,"at":<ms>, (row-format.lua).
      local record = redis.call('HGET', base .. 'inputs', id)
      local at = record and tonumber(string.match(record, '"at":(%d+)'))
      if at and (not oldest or at < oldest) then oldest = at end
    end
  end
  return count, oldest, gen ~= nil, stalled
end
