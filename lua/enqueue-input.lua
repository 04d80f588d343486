--[[
  enqueue-input: enqueuePendingTurnInput (SPEC 5.1; transitions T1, T2, T3), one atomic step.

  KEYS[1]  lease      reads the live generation; writes lastEnqueueSeq
  KEYS[2]  inputs     the new record (HSETNX is the id check and the first write)
  KEYS[3]  states     the state entry of an active-turn or source-keyed row
  KEYS[4]  src        source key -> input id
  KEYS[5]  stamps     whether the draft's turn is stamped (T3)
  KEYS[6]  next
  KEYS[7]  active
  KEYS[8]  genactive
  KEYS[9]  dispatch   (shard) the session, when the row is deferred_next_turn
  KEYS[10] activity   (optional) (shard) last activity, sent only with sessionRetentionMs

  ARGV[1] encoded session id
  ARGV[2] input id (the draft's, or one the client generated)
  ARGV[3] the payload, JSON.stringify(draft.input), stored as the record's last member
  ARGV[4] the record's ingress and source members as JSON text made by the client:
          "scope":…[,"turnId":…,"minBoundary":…][,"sourceKey":…,"inputHash":…]
  ARGV[5] source key, '' when none
  ARGV[6] turn id of an active_turn draft, '' for next_turn
  ARGV[7] 'a' or 'b' (minBoundary after_work / before_completion) of an active_turn draft, else ''

  Reply:
    { 0, 'new', state, seq, enqueuedAtMs }          a row was made: pending_active (T2) or
                                                     deferred_next_turn (T1, T3)
    { 0, 'existing', inputId, record, stateEntry }  the source key names a row (any state); the
                                                     client compares content and answers a
                                                     replay or PendingTurnInputSourceKeyConflict
    { E.PendingTurnInputIdConflict, {sessionId, inputId} }  the id exists, in any state
  Nothing is written unless a row is made.
]]
-- @include row-format

local input_id, payload, members = ARGV[2], ARGV[3], ARGV[4]
local source_key, turn_id, boundary = ARGV[5], ARGV[6], ARGV[7]

if source_key ~= '' then
  local id = redis.call('HGET', K.src, source_key)
  local record = id and redis.call('HGET', K.inputs, id)
  if record then return { 0, 'existing', id, record, redis.call('HGET', K.states, id) or '' } end
end

local now = now_ms()
local l = redis.call('HMGET', K.lease, 'leaseToken', 'expiresAtEpochMs', 'fencingToken', 'lastEnqueueSeq')
local gen = nil
if l[1] and l[1] ~= '' and tonumber(l[2] or '0') > now then gen = l[3] end
local seq = fmt(tonumber(l[4] or '0') + 1)
local state = 'deferred_next_turn'
if turn_id ~= '' and redis.call('HEXISTS', K.stamps, turn_id) == 0 then state = 'pending_active' end

local record = '{"seq":' .. seq .. ',"at":' .. fmt(now) .. ',"enqueuedAs":"' .. state .. '",' .. members
  .. (gen and (',"enqueueGen":' .. gen) or '') .. ',"input":' .. payload .. '}'
if redis.call('HSETNX', K.inputs, input_id, record) == 0 then
  return fail(E.PendingTurnInputIdConflict, { sessionId = session_raw(), inputId = input_id })
end
redis.call('HSET', K.lease, 'lastEnqueueSeq', seq)

if source_key ~= '' then redis.call('HSET', K.src, source_key, input_id) end
local row = row_fresh(input_id, seq)
row.state = state
row.gen = gen ~= nil
row.sourceKey = source_key
-- A new row's indexes (row-index.lua's invariant), written here directly: the enqueue is the one
-- script every input passes through, and it needs none of the moving code.
local now_text = fmt(now)
if state == 'pending_active' then
  row.ingress = boundary .. ':' .. pct(turn_id)
  row_save(row)
  redis.call('ZADD', K.active, '0', active_member(row))
  if gen then
    redis.call('ZADD', K.genactive, seq, input_id)
    redis.call('ZADD', K.dispatch, 'NX', now_text, ARGV[1])
  end
else
  -- A plain next-turn row keeps no state entry until its first transition (row-format.lua).
  if source_key ~= '' then row_save(row) end
  redis.call('ZADD', K.next, seq, input_id)
  redis.call('ZADD', K.dispatch, 'NX', now_text, ARGV[1])
end
if K.activity then redis.call('ZADD', K.activity, 'GT', now_text, ARGV[1]) end
return { 0, 'new', state, seq, now }
