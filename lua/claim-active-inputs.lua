--[[
  claim-active-inputs: claimActiveTurnInputs (SPEC 5.6; transition T4). The fence check (SPEC
  3.3), then the selection, then the writes, in one atomic step.

  KEYS[1]  lease      the fence check
  KEYS[2]  inputs     the claimed rows' records, for the reply
  KEYS[3]  states
  KEYS[4]  claims     the new claim; a dead claim a row loses
  KEYS[5]  next       named by the shared index code; never written here
  KEYS[6]  active     the selection; the rows leave it
  KEYS[7]  accepted   the rows enter it
  KEYS[8]  genactive  the rows leave it
  KEYS[9]  tomb       named by the shared index code; never written here
  KEYS[10] dispatch   (shard) the session, as rows become accepted
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
  ARGV[10] the turn id
  ARGV[11] the checkpoint, 'after_work' or 'before_completion'

  Reply: as claim-next-inputs.lua; the rows are accepted.

  Selection walks the turn's range of K.active in enqueueSeq order, skips before_completion rows
  at an after_work checkpoint, and takes the first maxInputs claimable pending_active rows.
]]
-- @include claim
-- @include row-index

local max_inputs = tonumber(ARGV[6])
local now = now_ms()
local gen, interrupted = claim_fence(now)
if not gen then return fail(E.SessionExecutionLeaseExpired, { sessionId = session_raw() }) end
-- SPEC 3.9: an interrupted generation claims nothing more.
if interrupted then return fail(E.TurnInterrupted, { sessionId = session_raw(), generation = tonumber(gen) }) end

local selected, gens = {}, {}
local turn = pct(ARGV[10])
local after_work = ARGV[11] == 'after_work'
-- pct() never emits ':' or ';', so '<turn>;' bounds exactly this turn's members.
local min, max = '[' .. turn .. ':', '(' .. turn .. ';'
while #selected < max_inputs do
  local members = redis.call('ZRANGEBYLEX', K.active, min, max, 'LIMIT', '0', fmt(max_inputs))
  if #members == 0 then break end
  local ids = {}
  for _, m in ipairs(members) do
    local _, b, id = active_member_parts(m)
    if id and (b == 'a' or not after_work) then ids[#ids + 1] = id end
  end
  if #ids > 0 then
    local entries = redis.call('HMGET', K.states, unpack(ids))
    for i, id in ipairs(ids) do
      local row = entries[i] and row_parse(id, entries[i])
      if row and row.state == 'pending_active' and claimable(row, gen, gens) and #selected < max_inputs then
        selected[#selected + 1] = row
      end
    end
  end
  if #members < max_inputs then break end
  min = '(' .. members[#members]
end
if #selected == 0 then return { 0 } end

local claim = claim_rows(selected, gen, now)
rows_move(selected, 'accepted', now) -- T4, which writes the entries
return claim_reply(claim, selected, now)
