--[[
  claim-next-inputs: claimNextTurnInputs (SPEC 5.6; transition T5). The fence check (SPEC 3.3),
  then the selection, then the writes, in one atomic step.

  KEYS[1]  lease      the fence check
  KEYS[2]  inputs     the claimed rows' records, for the reply
  KEYS[3]  states
  KEYS[4]  claims     the new claim; a dead claim a row loses
  KEYS[5]  next       the selection

  ARGV[1]  encoded session id
  ARGV[2]  fence.owner.ownerId
  ARGV[3]  fence.owner.incarnationId
  ARGV[4]  fence.leaseToken
  ARGV[5]  fence.fencingToken (decimal)
  ARGV[6]  maxInputs (1..1000)
  ARGV[7]  leaseTtlMs: the claim's stall deadline is now + leaseTtlMs
  ARGV[8]  the new claim token (random, made by the client)
  ARGV[9]  the claim owner as JSON (normalised: liveness present), stored as given

  Reply:
    { 0 }                                                   nothing claimable; nothing written
    { 0, claimId, counter, claimedAtMs, expiresAtMs, inputId1, record1, stateEntry1, ... }
                                                            the claimed rows in enqueueSeq order,
                                                            as written
    { E.SessionExecutionLeaseExpired, {sessionId} }         the fence check failed
    { E.TurnInterrupted, {sessionId, generation} }          the fence's generation is marked
                                                            interrupted (SPEC 3.9); nothing written

  Selection walks K.next in enqueueSeq order and takes the first maxInputs claimable rows (no
  claim, or a claim of another generation), skipping, never stopping at, the others. The rows stay
  deferred_next_turn in K.next. claimId = tic:<first row's seq>:<first row's counter after the
  claim>.

  Isolation (SPEC 3.8): a row whose run failed before (the 'f' flag of its state entry, which the
  selection has read anyway) is claimed alone. The selection is cut before the first such row, or
  is just that row when it comes first. The rows' attempt counts are not read here: the client
  reads them (read-failures.lua) only for a reply with a flagged row, so this script has the keys
  and the cost it had before failing runs were counted.
]]
-- @include claim

local max_inputs = tonumber(ARGV[6])
local now = now_ms()
local gen, interrupted = claim_fence(now)
if not gen then return fail(E.SessionExecutionLeaseExpired, { sessionId = session_raw() }) end
-- SPEC 3.9: an interrupted generation claims nothing more.
if interrupted then return fail(E.TurnInterrupted, { sessionId = session_raw(), generation = tonumber(gen) }) end

local selected, gens = {}, {}
local offset = 0
while #selected < max_inputs do
  local want = max_inputs - #selected
  local page = redis.call('ZRANGE', K.next, offset, offset + want - 1, 'WITHSCORES')
  if #page == 0 then break end
  local ids = {}
  for i = 1, #page, 2 do ids[#ids + 1] = page[i] end
  local entries = redis.call('HMGET', K.states, unpack(ids))
  for i, id in ipairs(ids) do
    local row = entries[i] and row_parse(id, entries[i]) or row_fresh(id, page[2 * i])
    if claimable(row, gen, gens) then selected[#selected + 1] = row end
  end
  if #ids < want then break end
  offset = offset + #ids
end
if #selected == 0 then return { 0 } end
for i = 1, #selected do
  if selected[i].failed then
    for j = #selected, (i == 1 and 2 or i), -1 do selected[j] = nil end
    break
  end
end

local claim = claim_rows(selected, gen, now)
-- T5: state and indexes unchanged; only the entries carry the new claim.
local entries = {}
for _, row in ipairs(selected) do
  entries[#entries + 1] = row.id
  entries[#entries + 1] = row_entry(row)
end
call_chunked('HSET', K.states, entries)
return claim_reply(claim, selected, now)
