-- Shared by claim-next-inputs and claim-active-inputs (SPEC 5.6): the fence check, which rows are
-- claimable, and the claim itself once the rows are selected.
-- @include row-format
-- @include lease

-- ARGV[1..9] of both scripts: encoded session id, fence owner, incarnation, lease token and
-- generation, maxInputs, leaseTtlMs, the new claim token, the claim owner JSON.

-- The generation (text) when the fence holds, else nil; and whether that generation is marked
-- interrupted (SPEC 3.9), which refuses the claim.
local function claim_fence(now)
  local lease = lease_read_fence()
  if not fence_ok(lease, now, ARGV[2], ARGV[3], ARGV[4], ARGV[5]) then return nil end
  return lease.fencingText, lease_interrupted(lease)
end

-- Whether a row may be claimed under generation `gen`: it carries no claim, or one of another
-- generation (T5 over a dead claim). `gens` memoises claim generations per script.
local function claimable(row, gen, gens)
  return row and claim_generation(gens, row.claimId) ~= gen
end

-- Gives the selected rows one new claim (counter + 1, claimId) and stores the claim entry. The
-- rows' state entries are the caller's to write (the same state, or a move). Returns the claim,
-- with the rows' records for the reply.
local function claim_rows(selected, gen, now)
  local first = selected[1]
  local claim = { id = 'tic:' .. first.seq .. ':' .. fmt(first.counter + 1), counter = first.counter + 1,
    expires = now + tonumber(ARGV[7]) }
  local ids = {}
  for i, row in ipairs(selected) do ids[i] = row.id end
  claim.records = redis.call('HMGET', K.inputs, unpack(ids))
  for _, row in ipairs(selected) do
    row_clear_claim(row)
    row.counter = row.counter + 1
    row.claimId = claim.id
  end
  claim_put({ id = claim.id, carriers = #selected, gen = gen, token = ARGV[8], claimedAt = fmt(now),
    expiresAt = fmt(claim.expires), owner = ARGV[9] })
  return claim
end

-- { 0, claimId, counter, claimedAtMs, expiresAtMs, id, record, entry, ... }, the rows as written.
local function claim_reply(claim, selected, now)
  local out = { 0, claim.id, claim.counter, now, claim.expires }
  for i, row in ipairs(selected) do
    out[#out + 1] = row.id
    out[#out + 1] = claim.records[i]
    out[#out + 1] = row_entry(row)
  end
  return out
end
