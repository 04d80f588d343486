--[[
  Vacuum's work list: the sessions of one shard whose oldest tombstone is due (SPEC 8.3). A
  read-only shard-level script, so the age is measured with the server clock of the node that
  holds the shard (the same node as its sessions).

  Input:
    KEYS[1] a shard `tombs` zset, <p>:shard:{<tag>}:tombs (docs/KEYS.md): member = encoded
            session id, score = that session's oldest terminalAtMs. (Not the per-session block.)

    ARGV[1] olderThanMs (safe integer >= 0)
    ARGV[2] the most members to return (a positive integer)
    ARGV[3] optional: the cutoff a previous scan of this pass returned. Absent on the first scan,
            which computes cutoff = now - olderThanMs. Keeping one cutoff per pass means a session
            pruned in this pass (rescored past its own, later cutoff) is never listed again.

  Output:
    { 0, cutoff, member, ... }  cutoff as a decimal string, then the encoded session ids whose
                                score <= cutoff, oldest first.
    No domain errors.
]]
-- @include common

local olderThanMs = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local cutoff
if ARGV[3] ~= nil and ARGV[3] ~= '' then
  cutoff = tonumber(ARGV[3])
else
  cutoff = now_ms() - olderThanMs
end
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', fmt(cutoff), 'LIMIT', 0, limit)
local out = { 0, fmt(cutoff) }
for _, m in ipairs(due) do out[#out + 1] = m end
return out
