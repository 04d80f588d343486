-- Shared: names the session block (src/redis/keys.ts builds it, in this order). ARGV[1] is always
-- the encoded session id (the member in shard indexes). The script loader narrows the block per
-- script: a script receives only the keys it names as K.<name>, in this order, and this table is
-- rewritten over that subset (src/redis/script-loader.ts, narrowKeys).
local K = {
  lease = KEYS[1], inputs = KEYS[2], src = KEYS[3], next = KEYS[4], active = KEYS[5],
  accepted = KEYS[6], genactive = KEYS[7], byseq = KEYS[8], tomb = KEYS[9], head = KEYS[10],
  nodes = KEYS[11], parents = KEYS[12], order = KEYS[13], blobs = KEYS[14], usage = KEYS[15],
  usageorder = KEYS[16], stamps = KEYS[17], meta = KEYS[18], claims = KEYS[19],
  dispatch = KEYS[20], tombs = KEYS[21], att = KEYS[22], att_uncommitted = KEYS[23], att_byid = KEYS[24],
}
local ENC_SESSION = ARGV[1]
