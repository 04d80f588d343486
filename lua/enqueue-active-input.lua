--[[
  enqueue-active-input: enqueuePendingTurnInput of an active_turn draft (SPEC 5.1; transitions
  T2, T3), one atomic step.

  KEYS[1]  lease      reads the live generation; writes lastEnqueueSeq
  KEYS[2]  inputs     the new record (HSETNX is the id check and the first write)
  KEYS[3]  states     the state entry
  KEYS[4]  src        source key -> input id
  KEYS[5]  stamps     whether the draft's turn is stamped (T3)
  KEYS[6]  next
  KEYS[7]  active
  KEYS[8]  genactive  a pending_active row enqueued under a live generation
  KEYS[9]  nogen      a pending_active row enqueued while no lease is live (requeue mode)
  KEYS[10] accepted   counted for the cap (only with ARGV[10])
  KEYS[11] expiry     the row's expiry deadline (only with ARGV[11])
  KEYS[12] dispatch   (shard) the session, when the row is deferred_next_turn or one T9 will move
  KEYS[13] activity   (optional) (shard) last activity, sent only with sessionRetentionMs

  ARGV[1] encoded session id
  ARGV[2] input id (the draft's, or one the client generated)
  ARGV[3] the payload, JSON.stringify(draft.input), stored as the record's last member
  ARGV[4] the record's ingress and source members as JSON text made by the client:
          "scope":"active_turn","turnId":…,"minBoundary":…[,"sourceKey":…,"inputHash":…]
  ARGV[5] source key, '' when none
  ARGV[6] turn id
  ARGV[7] 'a' or 'b' (minBoundary after_work / before_completion)
  ARGV[8] '1' when strandedTurnInputs is 'requeue', else '0'
  ARGV[9] activeInputGraceMs (decimal): a no-lease row's K.nogen score is enqueuedAtMs + this
  ARGV[10] maxPendingPerSession (decimal), '' for none (issue 18)
  ARGV[11] pendingTtlMs (decimal), '' for none (issue 18)

  Reply:
    { 0, 'new', state, seq, enqueuedAtMs }          a row was made: pending_active (T2) or
                                                     deferred_next_turn (T3)
    { 0, 'existing', inputId, record, stateEntry }  as in enqueue-input.lua
    { E.PendingTurnInputIdConflict, {sessionId, inputId} }  the id exists, in any state
    { E.PendingTurnInputQueueFull, {sessionId, limit} }  the session holds ARGV[10] non-terminal
                                                     rows; nothing written
  Nothing is written unless a row is made.
]]
-- @include enqueue

local existing = enqueue_existing(ARGV[5])
if existing then return existing end

local now = now_ms()
local gen, seq = enqueue_lease(now)
local full = enqueue_over_cap(ARGV[10])
if full then return full end
local turn_id = ARGV[6]
-- T3's stamp lookup is in this step, so an enqueue racing the turn's final commit never strands
-- pending_active input on a turn that has ended.
local state = redis.call('HEXISTS', K.stamps, turn_id) == 0 and 'pending_active' or 'deferred_next_turn'
local conflict = enqueue_record(seq, now, state, gen)
if conflict then return conflict end
enqueue_expiry(now, ARGV[11])
enqueue_activity(now)
if state == 'deferred_next_turn' then
  enqueue_as_next(seq, now, gen)
  return { 0, 'new', state, seq, now }
end

-- A new pending_active row's indexes (row-index.lua's invariant), written here directly.
local row = row_fresh(ARGV[2], seq)
row.state = 'pending_active'
row.gen = gen ~= nil
row.sourceKey = ARGV[5]
row.ingress = ARGV[7] .. ':' .. pct(turn_id)
row_save(row)
redis.call('ZADD', K.active, '0', active_member(row))
if gen then
  -- Requeue mode dispatches it once its generation dies (T9), so the sweeper must see it.
  redis.call('ZADD', K.genactive, seq, ARGV[2])
  redis.call('ZADD', K.dispatch, 'NX', fmt(now), ARGV[1])
elseif ARGV[8] == '1' then
  -- No turn runs: the next acquisition adopts it until its grace deadline, and requeues it after
  -- (T9); the sweeper wakes the session once the deadline has passed.
  redis.call('ZADD', K.nogen, fmt(now + tonumber(ARGV[9])), ARGV[2])
  redis.call('ZADD', K.dispatch, 'NX', fmt(now), ARGV[1])
end
return { 0, 'new', state, seq, now }
