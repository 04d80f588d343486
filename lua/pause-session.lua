--[[
  pause-session: pauseSessionDispatch (issue 18): from now on no fresh lease acquisition of the
  session succeeds (try-claim-lease and reclaim-lease answer SessionPaused) until resumed. A live
  lease is left alone.

  KEYS[1] lease   `pausedAtMs`, set once (a second pause keeps the first time)

  ARGV[1] encoded session id

  Reply:
    { 0, changed }  1 when the session was not paused before
]]
-- @include common

local now = now_ms()
return { 0, redis.call('HSETNX', K.lease, 'pausedAtMs', fmt(now)) }
