--[[
  enqueue-input: enqueuePendingTurnInput of a next_turn draft (SPEC 5.1; transition T1), one
  atomic step. Active-turn drafts go to enqueue-active-input.lua.

  KEYS[1]  lease      reads the live generation; writes lastEnqueueSeq
  KEYS[2]  inputs     the new record (HSETNX is the id check and the first write)
  KEYS[3]  states     the state entry of a source-keyed row
  KEYS[4]  src        source key -> input id
  KEYS[5]  next
  KEYS[6]  dispatch   (shard) the session
  KEYS[7]  activity   (optional) (shard) last activity, sent only with sessionRetentionMs

  ARGV[1] encoded session id
  ARGV[2] input id (the draft's, or one the client generated)
  ARGV[3] the payload, JSON.stringify(draft.input), stored as the record's last member
  ARGV[4] the record's ingress and source members as JSON text made by the client:
          "scope":"next_turn"[,"sourceKey":…,"inputHash":…]
  ARGV[5] source key, '' when none

  Reply:
    { 0, 'new', 'deferred_next_turn', seq, enqueuedAtMs }  a row was made (T1)
    { 0, 'existing', inputId, record, stateEntry }  the source key names a row (any state); the
                                                     client compares content and answers a
                                                     replay or PendingTurnInputSourceKeyConflict
    { E.PendingTurnInputIdConflict, {sessionId, inputId} }  the id exists, in any state
  Nothing is written unless a row is made.
]]
-- @include enqueue

local existing = enqueue_existing(ARGV[5])
if existing then return existing end

local now = now_ms()
local gen, seq = enqueue_lease(now)
local conflict = enqueue_record(seq, now, 'deferred_next_turn', gen)
if conflict then return conflict end
enqueue_as_next(seq, now, gen)
enqueue_activity(now)
return { 0, 'new', 'deferred_next_turn', seq, now }
