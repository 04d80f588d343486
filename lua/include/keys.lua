-- Shared: names the session block (src/redis/keys.ts builds it, in this order). ARGV[1] is always
-- the encoded session id (the member in shard indexes). The script loader narrows the block per
-- script: a script receives only the keys it names as K.<name>, in this order, and this table is
-- rewritten over that subset (src/redis/script-loader.ts, narrowKeys).
local K = {
  lease = KEYS[1], inputs = KEYS[2], payloads = KEYS[3], ids = KEYS[4], src = KEYS[5],
  seq = KEYS[6], next = KEYS[7], active = KEYS[8], accepted = KEYS[9], genactive = KEYS[10],
  tomb = KEYS[11], head = KEYS[12], nodes = KEYS[13], parents = KEYS[14], order = KEYS[15],
  blobs = KEYS[16], usage = KEYS[17], usageorder = KEYS[18], stamps = KEYS[19], meta = KEYS[20],
  claims = KEYS[21],
  dispatch = KEYS[22], tombs = KEYS[23], att = KEYS[24], att_uncommitted = KEYS[25], att_byid = KEYS[26],
}
local ENC_SESSION = ARGV[1]
