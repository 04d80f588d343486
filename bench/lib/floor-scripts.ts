/**
 * The four scripts of the floor (bench/floor.ts): one per store call of the bench's cycle, each
 * doing only the Redis calls such a step cannot do without. Shared by `npm run bench:floor`
 * (timed) and `npm run bench:instructions` (counted).
 */
const LEASE_FIELDS = `'ownerId','incarnationId','liveness','leaseToken','fencingToken','claimedAtEpochMs','expiresAtEpochMs'`;

/** KEYS: lease inputs next. ARGV: input id, input JSON. */
export const ENQUEUE = `local t = redis.call('TIME')
local v = redis.call('HMGET', KEYS[1], 'lastEnqueueSeq', 'leaseToken')
local seq = tonumber(v[1] or '0') + 1
if redis.call('HSETNX', KEYS[2], ARGV[1], '{"seq":' .. seq .. ',"at":' .. t[1] .. ',"scope":"next_turn","input":' .. ARGV[2] .. '}') == 0 then return { -6 } end
redis.call('HSET', KEYS[1], 'lastEnqueueSeq', seq)
redis.call('ZADD', KEYS[3], seq, ARGV[1])
return { 0, seq, t[1] }`;

/** KEYS: lease. ARGV: ownerId, incarnationId, liveness, token, ttl. */
export const LEASE = `local t = redis.call('TIME')
local now = t[1] * 1000
local v = redis.call('HMGET', KEYS[1], ${LEASE_FIELDS})
if v[4] and v[4] ~= '' and tonumber(v[7]) > now then return { 0, 'busy' } end
local gen = tonumber(v[5] or '0') + 1
redis.call('HSET', KEYS[1], 'ownerId', ARGV[1], 'incarnationId', ARGV[2], 'liveness', ARGV[3], 'leaseToken', ARGV[4],
  'fencingToken', gen, 'claimedAtEpochMs', now, 'expiresAtEpochMs', now + ARGV[5])
return { 0, 'acquired', ARGV[1], ARGV[2], ARGV[3], ARGV[4], gen, now, now + ARGV[5] }`;

/** KEYS: lease inputs next. ARGV: token, max inputs. */
export const CLAIM = `local t = redis.call('TIME')
local v = redis.call('HMGET', KEYS[1], ${LEASE_FIELDS})
if v[4] ~= ARGV[1] or tonumber(v[7]) <= t[1] * 1000 then return { -1 } end
local ids = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', '+inf', 'LIMIT', 0, tonumber(ARGV[2]))
local out = { 0 }
for _, id in ipairs(ids) do
  local row = redis.call('HGET', KEYS[2], id)
  local at = string.find(row, ',"input":', 1, true)
  local value = string.sub(row, 1, at - 1) .. ',"claimToken":"' .. ARGV[1] .. '"' .. string.sub(row, at)
  redis.call('HSET', KEYS[2], id, value)
  out[#out + 1] = id
  out[#out + 1] = value
end
return out`;

/** KEYS: lease inputs next head. ARGV: token, checkpoint JSON, input ids... */
export const COMMIT = `local t = redis.call('TIME')
local v = redis.call('HMGET', KEYS[1], ${LEASE_FIELDS})
if v[4] ~= ARGV[1] or tonumber(v[7]) <= t[1] * 1000 then return { -1 } end
local h = redis.call('HMGET', KEYS[4], 'headRevision')
local rev = tonumber(h[1] or '0') + 1
for i = 3, #ARGV do
  local row = redis.call('HGET', KEYS[2], ARGV[i])
  if not string.find(row, ',"claimToken":"' .. ARGV[1] .. '"', 1, true) then return { -2 } end
  redis.call('ZREM', KEYS[3], ARGV[i])
  redis.call('HSET', KEYS[2], ARGV[i], (string.gsub(row, ',"claimToken":"%x+"', ',"state":"completed"', 1)))
end
redis.call('HSET', KEYS[4], 'headRevision', rev, 'config', '{}', 'agentFrames', '[]', 'checkpoint', ARGV[2])
redis.call('HSET', KEYS[1], 'ownerId', '', 'incarnationId', '', 'liveness', '', 'leaseToken', '',
  'claimedAtEpochMs', '0', 'expiresAtEpochMs', '0')
return { 0, rev }`;

export type Call = (...args: (string | number)[]) => Promise<unknown[]>;

export interface FloorClient {
  enq: Call;
  lease: Call;
  claim: Call;
  commit: Call;
}

interface DefinesCommands {
  defineCommand(name: string, definition: { lua: string; numberOfKeys: number }): void;
}

/** Defines the four scripts on a client and returns them as calls. */
export function floorClient(client: DefinesCommands): FloorClient {
  const defs: [keyof FloorClient, number, string][] = [
    ['enq', 3, ENQUEUE],
    ['lease', 1, LEASE],
    ['claim', 3, CLAIM],
    ['commit', 4, COMMIT],
  ];
  for (const [name, numberOfKeys, lua] of defs) client.defineCommand(`floor_${name}`, { numberOfKeys, lua });
  const methods = client as unknown as Record<string, Call>;
  const bind = (name: string) => (methods[name] as Call).bind(client);
  return {
    enq: bind('floor_enq'),
    lease: bind('floor_lease'),
    claim: bind('floor_claim'),
    commit: bind('floor_commit'),
  };
}

/** One floor turn of one session: enqueue `perTurn` inputs, take the lease, claim, commit. */
export async function floorTurn(
  c: FloorClient,
  key: (name: string) => string,
  ids: string[],
  input: string,
  owner: { ownerId: string; incarnationId: string },
  ttl: number,
  token: string,
  phase: (name: 'enqueue' | 'tryClaim' | 'claimNext' | 'commit') => Promise<void> = async () => undefined,
): Promise<void> {
  for (const id of ids) await c.enq(key('lease'), key('inputs'), key('next'), id, input);
  await phase('enqueue');
  const got = await c.lease(key('lease'), owner.ownerId, owner.incarnationId, '{"kind":"opaque"}', token, ttl);
  if (got[1] !== 'acquired') throw new Error('floor: lease busy');
  await phase('tryClaim');
  const claimed = await c.claim(key('lease'), key('inputs'), key('next'), token, ids.length);
  if (claimed.length !== 1 + 2 * ids.length) throw new Error('floor: claim came back short');
  await phase('claimNext');
  const done = await c.commit(
    key('lease'),
    key('inputs'),
    key('next'),
    key('head'),
    token,
    '{"turnState":null}',
    ...ids,
  );
  if (done[0] !== 0) throw new Error(`floor: commit refused (${done[0]})`);
  await phase('commit');
}
