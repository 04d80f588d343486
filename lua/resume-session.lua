--[[
  resume-session: resumeSessionDispatch (issue 18): ends a pause.

  KEYS[1] lease
  KEYS[2] next       read for the dispatch verdict
  KEYS[3] accepted   read for the dispatch verdict
  KEYS[4] genactive  read for the dispatch verdict
  KEYS[5] nogen      read for the dispatch verdict (requeue mode: rows past their grace deadline)
  KEYS[6] states     read for the dispatch verdict (whether a nogen member is still one)

  ARGV[1] encoded session id
  ARGV[2] '1' when strandedTurnInputs is 'requeue' (T9 rows count as dispatchable), else '0'

  Reply:
    { 0, changed, wake }
      changed  1 when the session was paused
      wake     1 when it was, no lease is live and the session has dispatchable rows (SPEC 11)
]]
-- @include dispatchable

local now = now_ms()
local changed = redis.call('HDEL', K.lease, 'pausedAtMs')
local wake = changed == 1 and dispatchable_or_due(now, ARGV[2] == '1', live_generation(now) == nil)
return { 0, changed, wake and 1 or 0 }
