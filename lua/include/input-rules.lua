-- Shared by the turn-input scripts: cancel targets, the cancel rule (SPEC 5.3) and claimability
-- (SPEC 3.4).
-- @include row-index
-- @include row-reply

-- The input id a cancel target names, or nil.
local function target_id(kind, value)
  if kind == 'input_id' then return value end
  if kind == 'source_key' then return redis.call('HGET', K.src, value) or nil end
  return nil
end

-- A claim is live while the generation it was taken under holds a live lease.
local function claim_live(row, liveGen, claimGens)
  return liveGen ~= nil and claim_generation(claimGens, row.claimId) == liveGen
end

-- SPEC 5.3 for one row; returns the outcome, cancelling the row when the rule says so:
--   cancelled -> already_cancelled; completed -> already_completed; failed -> cancelled;
--   accepted, or pending with a live claim -> already_claimed;
--   pending otherwise -> cancelled (claim cleared, counter kept, terminalAtMs = now).
local function cancel_rule(row, liveGen, claimGens, now)
  local s = row.state
  if s == 'cancelled' then return 'already_cancelled' end
  if s == 'completed' then return 'already_completed' end
  if s == 'failed' then
    -- Already a tombstone (SPEC 3.8): it keeps its terminalAtMs and its tomb entry.
    row.state = 'cancelled'
    row_save(row)
    return 'cancelled'
  end
  if s == 'accepted' or claim_live(row, liveGen, claimGens) then return 'already_claimed' end
  row_move(row, 'cancelled', now)
  return 'cancelled'
end

-- Appends one cancel outcome to `out`: outcome, then the row's reply triple and its claim entry
-- ('' when none; the client reads the claim diagnostics from it), or four '' for not_found.
local function cancel_reply(out, outcome, row)
  out[#out + 1] = outcome
  if not row then
    for _ = 1, 4 do out[#out + 1] = '' end
    return
  end
  row_reply(out, row)
  out[#out + 1] = row.claimId ~= '' and (redis.call('HGET', K.claims, row.claimId) or '') or ''
end
