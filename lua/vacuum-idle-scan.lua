--[[
  vacuum-idle-scan: the work list of vacuum's idle-session expiry (SPEC 8.5), the sessions of one
  shard whose last recorded activity is at least sessionRetentionMs old. Read-only; the server
  clock of the node holding the shard measures the age.

  KEYS[1] activity  (shard) member: encoded session id, score: its last enqueue, lease
                    acquisition or release, or commit (epoch ms)

  ARGV[1] sessionRetentionMs (safe integer >= 0)
  ARGV[2] the most members to return (positive integer)
  ARGV[3] the cutoff a previous scan of this pass returned, or '' on the first scan (which
          computes cutoff = now - sessionRetentionMs)

  Reply:
    { 0, cutoff, member, ... }  the cutoff as decimal text, then the encoded session ids whose
                                score <= cutoff, oldest first
]]
-- @include common

local cutoff = ARGV[3] ~= '' and tonumber(ARGV[3]) or now_ms() - tonumber(ARGV[1])
local due = redis.call('ZRANGE', K.activity, '-inf', fmt(cutoff), 'BYSCORE', 'LIMIT', 0, tonumber(ARGV[2]))
local out = { 0, fmt(cutoff) }
for _, m in ipairs(due) do out[#out + 1] = m end
return out
