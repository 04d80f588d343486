--[[
  The operator's read-only view of one session (`redis-turn-store inspect`, SPEC 11 "Operator
  view"). Writes nothing. src/cli/inspect-view.ts decodes and formats the reply.

  Input:
    KEYS: the standard per-session block (docs/KEYS.md, lua/include/keys.lua): the 20 session
          keys then the 5 shard keys. Reads K.lease, K.inputs, K.seq, K.next, K.active,
          K.accepted, K.genactive, K.tomb, K.head, K.nodes and the shard K.dispatch.

    ARGV[1] encoded session id (every per-session script; the member in K.dispatch)
    ARGV[2] the most non-terminal rows to return (decimal >= 0), lowest enqueueSeq first

  Output:
    { 0, nowMs, leaseJson, headJson, countsJson, rowJson... }
      nowMs       the store clock (server TIME) the view was taken at
      leaseJson   lease_json of the record (owner, token, generation, times; a released record has
                  empty owner and token and both times 0), or '' when the session never had one
      headJson    {"headRevision","nodeCount","leafNodeId","schemaVersion"} as stored (strings), or
                  '' before the first commit
      countsJson  {"graphNodes","nonTerminal","next","active","accepted","genactive","tombstones",
                   "lastEnqueueSeq","dispatchIndexedAtMs","dispatchableRequeue","dispatchableKeep"}
      rowJson     the stored row JSON (lua/include/rows.lua) of up to ARGV[2] non-terminal rows
                  (pending_active, deferred_next_turn, accepted), ascending enqueueSeq; payloads
                  are not returned
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

-- Non-terminal rows: next and accepted hold the seq as member, active holds
-- "<pct(turnId)>:<seq, 16 digits>:<a|b>".
local seqs = {}
for _, m in ipairs(redis.call('ZRANGE', K.next, 0, -1)) do seqs[#seqs + 1] = tonumber(m) end
for _, m in ipairs(redis.call('ZRANGE', K.accepted, 0, -1)) do seqs[#seqs + 1] = tonumber(m) end
for _, m in ipairs(redis.call('ZRANGE', K.active, 0, -1)) do
  local s = string.match(m, ':(%d+):[ab]$')
  if s then seqs[#seqs + 1] = tonumber(s) end
end
table.sort(seqs)

local indexedAt = redis.call('ZSCORE', K.dispatch, ENC_SESSION)
local counts = '{"graphNodes":' .. fmt(redis.call('HLEN', K.nodes))
  .. ',"nonTerminal":' .. fmt(#seqs)
  .. ',"next":' .. fmt(redis.call('ZCARD', K.next))
  .. ',"active":' .. fmt(redis.call('ZCARD', K.active))
  .. ',"accepted":' .. fmt(redis.call('ZCARD', K.accepted))
  .. ',"genactive":' .. fmt(redis.call('ZCARD', K.genactive))
  .. ',"tombstones":' .. fmt(redis.call('ZCARD', K.tomb))
  .. ',"lastEnqueueSeq":' .. fmt(tonumber(redis.call('GET', K.seq) or '0'))
  .. ',"dispatchIndexedAtMs":' .. (indexedAt and fmt(tonumber(indexedAt)) or 'null')
  .. ',"dispatchableRequeue":' .. (dispatchable(now, true) and 'true' or 'false')
  .. ',"dispatchableKeep":' .. (dispatchable(now, false) and 'true' or 'false')
  .. '}'

local out = { 0, fmt(now), leaseJson, headJson, counts }
for i, seq in ipairs(seqs) do
  if i > maxRows then break end
  local raw = redis.call('HGET', K.inputs, fmt(seq))
  if raw then out[#out + 1] = raw end
end
return out
