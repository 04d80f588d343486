-- Shared: the per-state indexes of input rows and the one function that moves a row between
-- states (SPEC 3.5). Invariant, by state (members are input ids unless said otherwise):
--   pending_active      K.active (lex member, see active_member), K.byseq, and K.genactive
--                       (score seq) when the row was enqueued under a live generation
--   deferred_next_turn  K.next (score seq)
--   accepted            K.accepted (score seq) and K.byseq
--   cancelled/completed K.byseq, and '<terminalAtMs>|<inputId>' in the list K.tomb
-- so every row is in exactly one of K.next and K.byseq, both scored by seq. The session is in the
-- shard K.dispatch whenever a row entered deferred_next_turn, accepted or genactive since the
-- sweeper last found it empty, and in the shard K.tombs (score: its oldest tombstone's time) while it holds
-- tombstones.
-- @include row-format

local function index_remove(row)
  local s = row.state
  if s == 'pending_active' then
    redis.call('ZREM', K.active, active_member(row))
    if row.gen then redis.call('ZREM', K.genactive, row.id) end
  elseif s == 'deferred_next_turn' then
    redis.call('ZREM', K.next, row.id)
  elseif s == 'accepted' then
    redis.call('ZREM', K.accepted, row.id)
  end
  -- Tombstones are final: only vacuum removes them, with their row.
end

local function index_add(row, now)
  local s = row.state
  if s == 'pending_active' then
    redis.call('ZADD', K.active, '0', active_member(row))
    if row.gen then
      redis.call('ZADD', K.genactive, row.seq, row.id)
      -- Requeue mode dispatches it once its generation dies (T9), so the sweeper must see it.
      redis.call('ZADD', K.dispatch, 'NX', fmt(now), ARGV[1])
    end
  elseif s == 'deferred_next_turn' then
    redis.call('ZADD', K.next, row.seq, row.id)
    redis.call('ZADD', K.dispatch, 'NX', fmt(now), ARGV[1])
  elseif s == 'accepted' then
    redis.call('ZADD', K.accepted, row.seq, row.id)
    redis.call('ZADD', K.dispatch, 'NX', fmt(now), ARGV[1])
  else
    redis.call('RPUSH', K.tomb, row.terminalAt .. '|' .. row.id)
    -- NX keeps the oldest tombstone's time: vacuum visits the session once that one is due.
    redis.call('ZADD', K.tombs, 'NX', row.terminalAt, ARGV[1])
  end
end

-- Moves a row to `state` and stores it, keeping every index true. A tombstone gets terminalAtMs
-- = now and loses its claim; a deferred row's ingress becomes next_turn. Callers clear claims
-- where the transition says so (abandon, requeue, interrupt).
local function row_move(row, state, now)
  local was = row.state
  index_remove(row)
  row.state = state
  if state == 'cancelled' or state == 'completed' then
    row.terminalAt = fmt(now)
    row_clear_claim(row)
  elseif state == 'deferred_next_turn' then
    row.ingress = 'n'
  end
  index_add(row, now)
  if was == 'deferred_next_turn' and state ~= was then
    redis.call('ZADD', K.byseq, row.seq, row.id)
  elseif state == 'deferred_next_turn' and was ~= state then
    redis.call('ZREM', K.byseq, row.id)
  end
  row_save(row)
end
