--[[
  interrupt-turn: requestTurnInterrupt (SPEC 3.9), the stop button: marks the live lease
  generation interrupted and publishes the notice, in one atomic step.

  KEYS[1] lease

  ARGV[1] encoded session id
  ARGV[2] policy: 'interrupt' or 'rollback'
  ARGV[3] the reason, '' when none
  ARGV[4] '1' on Redis Cluster (SPUBLISH on the session's shard channel), else '0' (PUBLISH)

  Reply:
    { 0, 1, generation, policy }  the live generation is marked (policy: the one now in force; a
                                  rollback mark is never weakened to interrupt)
    { 0, 0 }                      no lease is live; nothing written, nothing published
]]
-- @include lease
-- @include interrupt

local now = now_ms()
local gen = live_generation(now)
if not gen then return { 0, 0 } end
local policy = interrupt_mark(now, gen, ARGV[2], ARGV[3], '', ARGV[4] == '1')
return { 0, 1, tonumber(gen), policy }
