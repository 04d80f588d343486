--[[
  pending-sessions: the sessions of one shard with pending input, for the dashboard's sessions
  page (SPEC 17.5), over a page of the shard's dispatch index. Read-only; the server clock.
  Session keys are built from each member as in store-stats.lua.

  KEYS[1] dispatch   (shard) member: encoded session id

  ARGV[1] the key prefix
  ARGV[2] offset of the first member to visit, in index order (integer >= 0)
  ARGV[3] the most members to visit (positive integer)

  Reply:
    { 0, now, visited, member, pendingInputs, oldestPendingAt, leaseLive, stalledClaims, ... }
      five elements per session with pending input (leaseLive '1' or '0'); visited < ARGV[3]:
      the page was the index's last
]]
-- @include session-figures

local now = now_ms()
local members = redis.call('ZRANGE', K.dispatch, tonumber(ARGV[2]), tonumber(ARGV[2]) + tonumber(ARGV[3]) - 1)
local out = { 0, fmt(now), #members }
for _, member in ipairs(members) do
  local count, at, leased, stalled = session_figures(ARGV[1] .. ':{' .. member .. '}:', now)
  if count > 0 then
    out[#out + 1] = member
    out[#out + 1] = count
    out[#out + 1] = fmt(at or now)
    out[#out + 1] = leased and '1' or '0'
    out[#out + 1] = stalled
  end
end
return out
