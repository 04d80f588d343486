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
-- @include session-figures

local now = now_ms()
local members = redis.call('ZRANGE', K.dispatch, tonumber(ARGV[2]), tonumber(ARGV[2]) + tonumber(ARGV[3]) - 1)
local withPending, pending, liveLeases, stalled = 0, 0, 0, 0
local oldest = nil
for _, member in ipairs(members) do
  local count, at, leased, stalledHere = session_figures(ARGV[1] .. ':{' .. member .. '}:', now)
  if count > 0 then
    withPending = withPending + 1
    pending = pending + count
  end
  if at and (not oldest or at < oldest) then oldest = at end
  if leased then liveLeases = liveLeases + 1 end
  stalled = stalled + stalledHere
end

return { 0, fmt(now), #members, withPending, pending, oldest and fmt(oldest) or '', liveLeases, stalled }
