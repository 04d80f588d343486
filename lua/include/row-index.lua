-- Shared: the per-state indexes of input rows and the one function that moves a row between
-- states (SPEC 3.5). Invariant, by state (members are input ids unless said otherwise):
--   pending_active      K.active (lex member, see active_member), and K.genactive (score seq)
--                       when the row was enqueued under a live generation
--   deferred_next_turn  K.next (score seq)
--   accepted            K.accepted (score seq)
--   cancelled/completed/failed '<terminalAtMs>|<inputId>' in the list K.tomb
-- so every row is in exactly one of K.next, K.active, K.accepted and K.tomb. (A failed row put
-- back by retry-failed, or cancelled, keeps its old tomb entry: vacuum only removes a row whose
-- terminalAtMs is the entry's time.) The session is in the
-- shard K.dispatch whenever a row entered deferred_next_turn, accepted or genactive since the
-- sweeper last found it empty, and in the shard K.tombs (score: its oldest tombstone's time) while it holds
-- tombstones.
-- @include row-format

-- The terminal states (SPEC 3.5, 3.8): rows in them are tombstones.
local function is_tombstone_state(state)
  return state == 'cancelled' or state == 'completed' or state == 'failed'
end

-- Appends `v` to the list `t[k]`, making the list on first use.
local function push(t, k, v)
  local list = t[k]
  if not list then
    list = {}
    t[k] = list
  end
  list[#list + 1] = v
end

-- Collects the index entries of `row` in its state into `added` (index key -> items). Returns
-- whether the state makes the session dispatchable (the shard dispatch index).
local function index_entries(added, row)
  local s = row.state
  if s == 'deferred_next_turn' then
    push(added, K.next, row.seq)
    push(added, K.next, row.id)
    return true
  elseif s == 'accepted' then
    push(added, K.accepted, row.seq)
    push(added, K.accepted, row.id)
    return true
  elseif s == 'pending_active' then
    push(added, K.active, '0')
    push(added, K.active, active_member(row))
    if not row.gen then return false end
    push(added, K.genactive, row.seq)
    push(added, K.genactive, row.id)
    -- Requeue mode dispatches it once its generation dies (T9), so the sweeper must see it.
    return true
  end
  push(added, K.tomb, row.terminalAt .. '|' .. row.id)
  return false
end

-- Writes what index_entries collected, one call per index; `at` is now, as text.
local function index_write(added, dispatch, at)
  for key, items in pairs(added) do call_chunked(key == K.tomb and 'RPUSH' or 'ZADD', key, items) end
  -- NX keeps the oldest time: the sweeper's and vacuum's scores say since when there is work.
  if dispatch then redis.call('ZADD', K.dispatch, 'NX', at, ARGV[1]) end
  if added[K.tomb] then redis.call('ZADD', K.tombs, 'NX', at, ARGV[1]) end
end

-- Moves rows to `state` and stores them, keeping every index true: each index is written with
-- one call for all the rows. A tombstone gets terminalAtMs = now and loses its claim; a deferred
-- row's ingress becomes next_turn. Callers clear claims where the transition says so (abandon,
-- requeue, interrupt), or settle them themselves (a commit that completes every carrier).
local function rows_move(rows, state, now)
  if #rows == 0 then return end
  local gone = {}
  for _, row in ipairs(rows) do
    local s = row.state
    if s == 'pending_active' then
      push(gone, K.active, active_member(row))
      if row.gen then push(gone, K.genactive, row.id) end
    elseif s == 'deferred_next_turn' then
      push(gone, K.next, row.id)
    elseif s == 'accepted' then
      push(gone, K.accepted, row.id)
    end
    -- Tombstones are final: only vacuum removes them, with their row.
  end
  for key, members in pairs(gone) do call_chunked('ZREM', key, members) end

  local terminal = is_tombstone_state(state)
  local at = fmt(now)
  local added, entries, dispatch = {}, {}, false
  for _, row in ipairs(rows) do
    row.state = state
    if terminal then
      row.terminalAt = at
      row_clear_claim(row)
    elseif state == 'deferred_next_turn' then
      row.ingress = 'n'
    end
    dispatch = index_entries(added, row) or dispatch
    row.fresh = nil
    entries[#entries + 1] = row.id
    entries[#entries + 1] = row_entry(row)
  end
  index_write(added, dispatch, at)
  call_chunked('HSET', K.states, entries)
end

local function row_move(row, state, now)
  rows_move({ row }, state, now)
end
