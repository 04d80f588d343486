--[[
  enqueue-input-busy: enqueuePendingTurnInput of a next_turn draft with whenBusy 'reject',
  'interrupt' or 'rollback', or on a store with maxPendingPerSession or pendingTtlMs (SPEC 5.1, 3.8; transition
  T1), or pendingTtlMs, one atomic step. Plain next-turn drafts (whenBusy absent or 'enqueue', no cap) go to
  enqueue-input.lua, which this mirrors.

  KEYS[1]  lease      reads the live generation; writes lastEnqueueSeq and the interrupt mark
  KEYS[2]  inputs     the new record (HSETNX is the id check and the first write)
  KEYS[3]  states     the state entry of a source-keyed row
  KEYS[4]  src        source key -> input id
  KEYS[5]  next
  KEYS[6]  active     counted for the cap
  KEYS[7]  accepted   counted for the cap
  KEYS[8]  expiry     the row's expiry deadline (pendingTtlMs)
  KEYS[9]  dispatch   (shard) the session
  KEYS[10] activity   (optional) (shard) last activity, sent only with sessionRetentionMs

  ARGV[1] encoded session id
  ARGV[2] input id (the draft's, or one the client generated)
  ARGV[3] the payload, JSON.stringify(draft.input), stored as the record's last member
  ARGV[4] the record's ingress and source members as JSON text made by the client:
          "scope":"next_turn"[,"sourceKey":…,"inputHash":…]
  ARGV[5] source key, '' when none
  ARGV[6] whenBusy: 'enqueue', 'reject', 'interrupt' or 'rollback'
  ARGV[7] '1' on Redis Cluster (SPUBLISH on the session's shard channel), else '0' (PUBLISH)
  ARGV[8] maxPendingPerSession (decimal), '' for none
  ARGV[9] pendingTtlMs (decimal), '' for none

  Reply:
    { 0, 'new', 'deferred_next_turn', seq, enqueuedAtMs, markedGeneration, policy }
                              a row was made (T1); with a live lease and 'interrupt' / 'rollback'
                              its generation is marked (markedGeneration, the policy in force),
                              else markedGeneration is 0 and policy ''
    { 0, 'existing', inputId, record, stateEntry }  as in enqueue-input.lua: the source key names
                              a row; nothing is written or marked, whatever whenBusy says
    { E.SessionBusy, {sessionId, generation} }  'reject' while a lease is live; nothing written
    { E.PendingTurnInputQueueFull, {sessionId, limit} }  the session holds ARGV[8] non-terminal
                              rows (next, active, accepted); nothing written
    { E.PendingTurnInputIdConflict, {sessionId, inputId} }  the id exists, in any state
  Nothing is written unless a row is made.
]]
-- @include enqueue
-- @include interrupt

local existing = enqueue_existing(ARGV[5])
if existing then return existing end

local now = now_ms()
local gen, seq = enqueue_lease(now)
local when_busy = ARGV[6]
if gen and when_busy == 'reject' then
  return fail(E.SessionBusy, { sessionId = session_raw(), generation = tonumber(gen) })
end
local full = enqueue_over_cap(ARGV[8])
if full then return full end
local conflict = enqueue_record(seq, now, 'deferred_next_turn', gen)
if conflict then return conflict end
enqueue_as_next(seq, now, gen)
enqueue_expiry(now, ARGV[9])
enqueue_activity(now)
if gen and (when_busy == 'interrupt' or when_busy == 'rollback') then
  local policy = interrupt_mark(now, gen, when_busy, '', ARGV[2], ARGV[7] == '1')
  return { 0, 'new', 'deferred_next_turn', seq, now, tonumber(gen), policy }
end
return { 0, 'new', 'deferred_next_turn', seq, now, 0, '' }
