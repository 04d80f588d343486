--[[
  claim-inputs: claimActiveTurnInputs and claimNextTurnInputs (SPEC 5.6; transitions T4, T5).
  The fence check (SPEC 3.3), then the selection, then the writes, in one atomic step.

  KEYS[1]  lease      the fence check
  KEYS[2]  inputs     the claimed rows' records, for the reply
  KEYS[3]  states
  KEYS[4]  claims     the new claim; a dead claim a row loses
  KEYS[5]  next       next-turn selection
  KEYS[6]  active     active-turn selection
  KEYS[7]  accepted
  KEYS[8]  genactive
  KEYS[9]  tomb       named by the shared index code; never written here
  KEYS[10] dispatch   (shard) the session, when rows become accepted
  KEYS[11] tombs      (shard) named by the shared index code; never written here

  ARGV[1]  encoded session id
  ARGV[2]  fence.owner.ownerId
  ARGV[3]  fence.owner.incarnationId
  ARGV[4]  fence.leaseToken
  ARGV[5]  fence.fencingToken (decimal)
  ARGV[6]  maxInputs (1..1000)
  ARGV[7]  leaseTtlMs: the claim's stall deadline is now + leaseTtlMs
  ARGV[8]  the new claim token (random, made by the client)
  ARGV[9]  the claim owner as JSON (normalised: liveness present), stored as given
  ARGV[10] mode: 'next_turn' or 'active_turn'
  ARGV[11] active_turn: the turn id ('' for next_turn)
  ARGV[12] active_turn: the checkpoint, 'after_work' or 'before_completion' ('' for next_turn)

  Reply:
    { 0 }                                                   nothing claimable; nothing written
    { 0, claimId, counter, claimedAtMs, expiresAtMs, inputId1, record1, stateEntry1, ... }
                                                            the claimed rows in enqueueSeq order,
                                                            as written
    { E.SessionExecutionLeaseExpired, {sessionId} }         the fence check failed

  Selection walks the mode's index in enqueueSeq order and takes the first maxInputs claimable
  rows (no claim, or a claim of another generation), skipping, never stopping at, the others.
  Active mode walks the turn's range of K.active and skips before_completion rows at an
  after_work checkpoint. claimId = tic:<first row's seq>:<first row's counter after the claim>.
]]
-- @include row-index
-- @include lease

local max_inputs = tonumber(ARGV[6])
local ttl = tonumber(ARGV[7])
local active_mode = ARGV[10] == 'active_turn'

local now = now_ms()
local lease = lease_read_fence()
if not fence_ok(lease, now, ARGV[2], ARGV[3], ARGV[4], ARGV[5]) then
  return fail(E.SessionExecutionLeaseExpired, { sessionId = session_raw() })
end
local gen = lease.fencingText
local claim_gens = {}

-- A row is claimable when it carries no claim or one of another generation.
local function claimable(row)
  return row and claim_generation(claim_gens, row.claimId) ~= gen
end

local selected = {}

local function select_next()
  local offset = 0
  while #selected < max_inputs do
    local want = max_inputs - #selected
    local page = redis.call('ZRANGE', K.next, offset, offset + want - 1, 'WITHSCORES')
    if #page == 0 then return end
    local ids = {}
    for i = 1, #page, 2 do ids[#ids + 1] = page[i] end
    local entries = redis.call('HMGET', K.states, unpack(ids))
    for i, id in ipairs(ids) do
      local row = entries[i] and row_parse(id, entries[i]) or row_fresh(id, page[2 * i])
      if claimable(row) then selected[#selected + 1] = row end
    end
    if #ids < want then return end
    offset = offset + #ids
  end
end

local function select_active()
  local turn = pct(ARGV[11])
  local after_work = ARGV[12] == 'after_work'
  -- pct() never emits ':' or ';', so '<turn>;' bounds exactly this turn's members.
  local min, max = '[' .. turn .. ':', '(' .. turn .. ';'
  while #selected < max_inputs do
    local members = redis.call('ZRANGEBYLEX', K.active, min, max, 'LIMIT', '0', fmt(max_inputs))
    if #members == 0 then return end
    local ids = {}
    for _, m in ipairs(members) do
      local _, b, id = active_member_parts(m)
      if id and (b == 'a' or not after_work) then ids[#ids + 1] = id end
    end
    if #ids > 0 then
      local entries = redis.call('HMGET', K.states, unpack(ids))
      for i, id in ipairs(ids) do
        local row = entries[i] and row_parse(id, entries[i])
        if row and row.state == 'pending_active' and claimable(row) and #selected < max_inputs then
          selected[#selected + 1] = row
        end
      end
    end
    if #members < max_inputs then return end
    min = '(' .. members[#members]
  end
end

if active_mode then select_active() else select_next() end
if #selected == 0 then return { 0 } end

local first = selected[1]
local counter = first.counter + 1
local claim_id = 'tic:' .. first.seq .. ':' .. fmt(counter)
local expires = now + ttl
local ids = {}
for i, row in ipairs(selected) do ids[i] = row.id end
local records = redis.call('HMGET', K.inputs, unpack(ids))

local entries = {}
for _, row in ipairs(selected) do
  row_clear_claim(row) -- T5 over a claim of a dead generation
  row.counter = row.counter + 1
  row.claimId = claim_id
  entries[#entries + 1] = row.id
  entries[#entries + 1] = row_entry(row)
end
if active_mode then
  rows_move(selected, 'accepted', now) -- T4
else
  call_chunked('HSET', K.states, entries) -- T5: state and indexes unchanged
end
local out = { 0, claim_id, counter, now, expires }
for i, row in ipairs(selected) do
  out[#out + 1] = row.id
  out[#out + 1] = records[i]
  out[#out + 1] = row_entry(row)
end
claim_put({ id = claim_id, carriers = #selected, gen = gen, token = ARGV[8], claimedAt = fmt(now),
  expiresAt = fmt(expires), owner = ARGV[9] })
return out
