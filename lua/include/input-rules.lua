-- Shared by the turn-input scripts (enqueue, list, cancel, suffix, claims, abandon): target lookup,
-- the cancel rule of SPEC 5.3, claimability (SPEC 3.4) and the source-key content match (SPEC 5.1).
-- Needs keys, common and rows included first.

-- The input id a cancel target names within this session, or false/nil when none. An input id
-- names a row only when the row exists (the caller reads it).
local function target_id(kind, value)
  if kind == 'input_id' then return value end
  if kind == 'source_key' then return row_id_by_source(value) end
  return nil
end

-- SPEC 5.3 for one row: returns the outcome name, cancelling the row when the rule says so.
--   cancelled -> already_cancelled; completed -> already_completed;
--   accepted (any liveness) or pending with a live claim -> already_claimed;
--   pending otherwise -> cancelled (claim cleared, counter kept, ingress unchanged, terminalAtMs = now).
local function cancel_rule(row, liveGen, now)
  local s = row.state
  if s == 'cancelled' then return 'already_cancelled' end
  if s == 'completed' then return 'already_completed' end
  if s == 'accepted' then return 'already_claimed' end
  if row_claim_live(row, liveGen) then return 'already_claimed' end
  row_set_state(row, 'cancelled', now)
  return 'cancelled'
end

-- Claim path (SPEC 3.4): the caller passed the fence, so generation `gen` is live. A row is
-- claimable when it carries no claim or its claim was taken under another generation.
local function row_claimable(row, gen)
  return not row_has_claim(row) or row.claimGen ~= gen
end

-- SPEC 5.1 content match, ingress half: the row's original ingress (the current one when it was
-- never rewritten) against the draft's normalised ingress.
local function ingress_matches(stored, scope, turnId, minBoundary)
  if stored == nil or stored.scope ~= scope then return false end
  if scope == 'active_turn' then
    return stored.turnId == turnId and (stored.minBoundary or 'after_work') == minBoundary
  end
  return true
end
