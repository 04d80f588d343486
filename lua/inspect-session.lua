--[[
  The operator's read-only view of one session (`redis-turn-store inspect`, SPEC 11 "Operator
  view"). Writes nothing. src/cli/inspect-view.ts decodes and formats the reply.

  Input:
    KEYS: the per-session block narrowed to what this script names (docs/KEYS.md). Reads
          K.lease, K.inputs, K.next, K.active,
          K.accepted, K.genactive, K.tomb, K.head, K.nodes and the shard K.dispatch.

    ARGV[1] encoded session id (every per-session script; the member in K.dispatch)
    ARGV[2] the most non-terminal rows to return (decimal >= 0), lowest enqueueSeq first

  Output:
    { 0, nowMs, leaseJson, headJson, countsJson, inputId, value, ... }
      nowMs       the store clock (server TIME) the view was taken at
      leaseJson   lease_json of the record (owner, token, generation, times; a released record has
                  empty owner and token and both times 0), or '' when the session never had one
      headJson    {"headRevision","nodeCount","leafNodeId","schemaVersion"} as stored (strings), or
                  '' before the first commit
      countsJson  {"graphNodes","nonTerminal","next","active","accepted","genactive","tombstones",
                   "lastEnqueueSeq","dispatchIndexedAtMs","dispatchableRequeue","dispatchableKeep"}
      inputId, value  pairs: the stored row (lua/include/rows.lua, payload included) of up to
                  ARGV[2] non-terminal rows (pending_active, deferred_next_turn, accepted),
                  ascending enqueueSeq
    No domain errors.
]]
-- @include keys
-- @include common
-- @include rows

local maxRows = tonumber(ARGV[2]) or 0
local now = now_ms()

local lease = lease_read()
local leaseJson = ''
if lease ~= nil then leaseJson = lease_json(lease) end

local headJson = ''
local h = redis.call('HMGET', K.head, 'headRevision', 'nodeCount', 'leafNodeId', 'schemaVersion')
if h[1] then
  headJson = cjson.encode({ headRevision = h[1], nodeCount = h[2] or '0', leafNodeId = h[3] or '',
    schemaVersion = h[4] or '' })
end

-- Non-terminal rows: next and accepted score their input-id members by seq, active members are
-- "<pct(turnId)>:<seq, 16 digits>:<a|b>:<inputId>".
local acc = { ids = {}, seq = {} }
ids_add_scored(acc, redis.call('ZRANGE', K.next, 0, -1, 'WITHSCORES'))
ids_add_scored(acc, redis.call('ZRANGE', K.accepted, 0, -1, 'WITHSCORES'))
ids_add_active(acc, redis.call('ZRANGE', K.active, 0, -1))
local ids = ids_in_seq_order(acc)

local indexedAt = redis.call('ZSCORE', K.dispatch, ENC_SESSION)
-- Dispatchable (SPEC 11) from the lease read above: no live lease, and rows a turn would take.
local unleased = not lease_live(lease, now)
local counts = '{"graphNodes":' .. fmt(redis.call('HLEN', K.nodes))
  .. ',"nonTerminal":' .. fmt(#ids)
  .. ',"next":' .. fmt(redis.call('ZCARD', K.next))
  .. ',"active":' .. fmt(redis.call('ZCARD', K.active))
  .. ',"accepted":' .. fmt(redis.call('ZCARD', K.accepted))
  .. ',"genactive":' .. fmt(redis.call('ZCARD', K.genactive))
  .. ',"tombstones":' .. fmt(redis.call('ZCOUNT', K.tomb, '(-inf', '+inf')) -- not PIN (rows.lua)
  .. ',"lastEnqueueSeq":' .. fmt(tonumber(redis.call('HGET', K.lease, 'lastEnqueueSeq') or '0'))
  .. ',"dispatchIndexedAtMs":' .. (indexedAt and fmt(tonumber(indexedAt)) or 'null')
  .. ',"dispatchableRequeue":' .. (unleased and has_dispatchable_rows(true) and 'true' or 'false')
  .. ',"dispatchableKeep":' .. (unleased and has_dispatchable_rows(false) and 'true' or 'false')
  .. '}'

local out = { 0, fmt(now), leaseJson, headJson, counts }
for i, id in ipairs(ids) do
  if i > maxRows then break end
  local raw = redis.call('HGET', K.inputs, id)
  if raw then
    out[#out + 1] = id
    out[#out + 1] = raw
  end
end
return out
