-- Shared by interrupt-turn and enqueue-input-busy: the interrupt mark of a live lease generation
-- (SPEC 3.9), kept in K.lease next to the generation it names, and its pub/sub notice.
-- @include common

-- Marks generation `gen` (text) interrupted with `policy` ('interrupt' or 'rollback'; a rollback
-- mark of the same generation is never weakened), and publishes the mark on the session's
-- interrupt channel, `<p>:{<S>}:interrupt` (the lease key with its last name replaced; a channel,
-- not a key), with SPUBLISH when `sharded` (Redis Cluster: a shard channel of the session's slot).
-- Returns the policy now in force.
local function interrupt_mark(now, gen, policy, reason, input_id, sharded)
  local m = redis.call('HMGET', K.lease, 'interruptGen', 'interruptPolicy')
  if m[1] == gen and m[2] == 'rollback' then policy = 'rollback' end
  redis.call('HSET', K.lease, 'interruptGen', gen, 'interruptPolicy', policy, 'interruptReason', reason,
    'interruptInputId', input_id, 'interruptAtMs', fmt(now))
  local notice = '{"sessionId":' .. cjson.encode(session_raw()) .. ',"generation":' .. gen .. ',"policy":"' .. policy
    .. '","reason":' .. cjson.encode(reason) .. ',"inputId":' .. cjson.encode(input_id) .. ',"atEpochMs":'
    .. fmt(now) .. '}'
  local channel = string.sub(K.lease, 1, #K.lease - 5) .. 'interrupt'
  if sharded then
    redis.call('SPUBLISH', channel, notice)
  else
    redis.call('PUBLISH', channel, notice)
  end
  return policy
end
