-- commitRefs (SPEC 7): stamps existing entries of the session in ARGV[1]; missing ones are
-- skipped, never re-created. ARGV[2..] = pct(attachmentId) of each id.
-- @include keys
-- @include common
-- @include att

local now = now_ms()
for i = 2, #ARGV do att_stamp(ARGV[i], now) end
return { 0 }
