--[[
  expire-inputs: pendingTtlMs (issue 18): input still unclaimed at its expiry deadline becomes a
  cancelled tombstone with reason 'expired', in one atomic step. The store runs it before claims
  and lists, only when the option is set.

  KEYS[1]  lease      the live generation (claim liveness)
  KEYS[2]  states
  KEYS[3]  claims
  KEYS[4]  next
  KEYS[5]  active
  KEYS[6]  accepted
  KEYS[7]  genactive
  KEYS[8]  tomb
  KEYS[9]  expiry     deadlines (score) of rows enqueued under pendingTtlMs; lazy like nogen
  KEYS[10] expired    the rows this made tombstones (score: when), so inspect can tell the reason
  KEYS[11] dispatch   (shard) named by the shared index code; never written here
  KEYS[12] tombs      (shard)

  ARGV[1] encoded session id

  Reply:
    { 0, n }  n rows expired: every K.expiry member past its deadline whose row is
              pending_active or deferred_next_turn without a live claim; members whose rows
              moved on are dropped, members carrying a live claim stay (checked again later).
  Every row is read before the first write.
]]
-- @include row-index
-- @include lease

local now = now_ms()
local due = redis.call('ZRANGEBYSCORE', K.expiry, '-inf', fmt(now), 'LIMIT', 0, 1000)
if #due == 0 then return { 0, 0 } end
local live = live_generation(now)
local gens = {}
local expire, drop = {}, {}
for _, id in ipairs(due) do
  local row = row_get(id)
  if row and (row.state == 'deferred_next_turn' or row.state == 'pending_active') then
    if not (live and row.claimId ~= '' and claim_generation(gens, row.claimId) == live) then
      expire[#expire + 1] = row
      drop[#drop + 1] = id
    end
  else
    drop[#drop + 1] = id
  end
end
rows_move(expire, 'cancelled', now)
call_chunked('ZREM', K.expiry, drop)
local marks = {}
for _, row in ipairs(expire) do
  marks[#marks + 1] = fmt(now)
  marks[#marks + 1] = row.id
end
call_chunked('ZADD', K.expired, marks)
return { 0, #expire }
