--[[
  att-commit-refs: commitRefs (SPEC 7): stamps existing manifest entries of the session; missing
  ones are skipped, never re-created, and an earlier stamp is kept (committedAtEpochMs = existing ?? now).

  KEYS[1] att               (shard)
  KEYS[2] att-uncommitted   (shard)

  ARGV[1]    encoded session id
  ARGV[2..n] pct(attachmentId) of each id

  Reply:
    { 0 }
]]
-- @include att

local now = now_ms()
for i = 2, #ARGV do att_stamp(ARGV[i], now) end
return { 0 }
