/**
 * `npm run bench:floor [-- --reps 5] [-- --redis-url=redis://…]`: how far the store's cycle is
 * from the least a cycle of this design can cost, measured side by side with the store and BullMQ.
 *
 * The floor is four EVALSHA scripts per turn, one per store call of the bench's cycle (enqueue,
 * take the lease, claim, commit with completion and release), each doing only the Redis calls
 * such a step cannot do without: the same keys, a fence check against the lease hash, the row
 * rewritten as text, no validation, no indexes beyond `next`, no tombstone, no claim count,
 * no error paths. It is not a store: it shows which part of the gap to BullMQ the design itself
 * sets (four scripts and their calls) and which part is the store's own work on either side.
 * Same harness shape as `npm run bench` (50 sessions, 100 turns; 10 turns of 10 inputs for the
 * batch), the same client write coalescing, the same Redis provisioning. Not part of `npm run bench`.
 */
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { coalesceWrites } from '../src/redis/write-coalescing.js';
import { deleteKeys, pool, provisionRedis } from './lib/env.js';
import { INPUT_150, OWNER, TTL } from './lib/fixtures.js';
import { progress, progressDone } from './lib/progress.js';
import { median, round } from './lib/stats.js';
import { bullmqJobs, type Measured, measure, openStore, storeCycles } from './lib/throughput.js';

const { values } = parseArgs({
  args: process.argv.slice(2).filter((a) => !a.startsWith('--redis-url=')),
  options: { reps: { type: 'string', default: '5' } },
});
const REPS = Number(values.reps);
const SESSIONS = 50;

const LEASE_FIELDS = `'ownerId','incarnationId','liveness','leaseToken','fencingToken','claimedAtEpochMs','expiresAtEpochMs'`;

/** KEYS: lease inputs next. ARGV: input id, input JSON. */
const ENQUEUE = `local t = redis.call('TIME')
local v = redis.call('HMGET', KEYS[1], 'lastEnqueueSeq', 'leaseToken')
local seq = tonumber(v[1] or '0') + 1
if redis.call('HSETNX', KEYS[2], ARGV[1], '{"seq":' .. seq .. ',"at":' .. t[1] .. ',"scope":"next_turn","input":' .. ARGV[2] .. '}') == 0 then return { -6 } end
redis.call('HSET', KEYS[1], 'lastEnqueueSeq', seq)
redis.call('ZADD', KEYS[3], seq, ARGV[1])
return { 0, seq, t[1] }`;

/** KEYS: lease. ARGV: ownerId, incarnationId, liveness, token, ttl. */
const LEASE = `local t = redis.call('TIME')
local now = t[1] * 1000
local v = redis.call('HMGET', KEYS[1], ${LEASE_FIELDS})
if v[4] and v[4] ~= '' and tonumber(v[7]) > now then return { 0, 'busy' } end
local gen = tonumber(v[5] or '0') + 1
redis.call('HSET', KEYS[1], 'ownerId', ARGV[1], 'incarnationId', ARGV[2], 'liveness', ARGV[3], 'leaseToken', ARGV[4],
  'fencingToken', gen, 'claimedAtEpochMs', now, 'expiresAtEpochMs', now + ARGV[5])
return { 0, 'acquired', ARGV[1], ARGV[2], ARGV[3], ARGV[4], gen, now, now + ARGV[5] }`;

/** KEYS: lease inputs next. ARGV: token, max inputs. */
const CLAIM = `local t = redis.call('TIME')
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
const COMMIT = `local t = redis.call('TIME')
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

type Call = (...args: (string | number)[]) => Promise<unknown[]>;
interface FloorClient {
  enq: Call;
  lease: Call;
  claim: Call;
  commit: Call;
}

function floorCycles(admin: Redis, c: FloorClient, tag: string, turns: number, perTurn: number): Promise<Measured> {
  let n = 0;
  const input = JSON.stringify(INPUT_150);
  return measure(admin, SESSIONS * turns * perTurn, () =>
    pool(SESSIONS, SESSIONS, async (s) => {
      const k = (name: string) => `floor:{${tag}-${s}}:${name}`;
      for (let t = 0; t < turns; t++) {
        const ids: string[] = [];
        for (let i = 0; i < perTurn; i++) {
          const id = `ti_${tag}-${s}-${t}-${i}-${++n}`;
          ids.push(id);
          await c.enq(k('lease'), k('inputs'), k('next'), id, input);
        }
        const token = `${tag}${s}t${t}${Math.random().toString(16).slice(2)}`.replace(/[^0-9a-f]/g, 'a');
        const got = await c.lease(k('lease'), OWNER.ownerId, OWNER.incarnationId, '{"kind":"opaque"}', token, TTL);
        if (got[1] !== 'acquired') throw new Error('floor: lease busy');
        const claimed = await c.claim(k('lease'), k('inputs'), k('next'), token, perTurn);
        if (claimed.length !== 1 + 2 * perTurn) throw new Error('floor: claim came back short');
        const done = await c.commit(k('lease'), k('inputs'), k('next'), k('head'), token, '{"turnState":null}', ...ids);
        if (done[0] !== 0) throw new Error(`floor: commit refused (${done[0]})`);
      }
    }),
  );
}

const redis = await provisionRedis(process.argv.slice(2));
const admin = new Redis(redis.url);
const client = new Redis(redis.url);
coalesceWrites(client);
const defs: [keyof FloorClient, number, string][] = [
  ['enq', 3, ENQUEUE],
  ['lease', 1, LEASE],
  ['claim', 3, CLAIM],
  ['commit', 4, COMMIT],
];
for (const [name, numberOfKeys, lua] of defs) client.defineCommand(`floor_${name}`, { numberOfKeys, lua });
const methods = client as unknown as Record<string, Call>;
const floor: FloorClient = {
  enq: methods.floor_enq!.bind(client),
  lease: methods.floor_lease!.bind(client),
  claim: methods.floor_claim!.bind(client),
  commit: methods.floor_commit!.bind(client),
};
const store = await openStore(redis.url, 'floorstore', false);
const rows: Record<string, Measured[]> = { floor: [], floorBatch: [], store: [], storeBatch: [], bull: [] };
const run = `f${Date.now().toString(36)}`;
try {
  // Warm every path once (scripts loaded, JIT warm) before anything is timed.
  await floorCycles(admin, floor, `${run}w`, 5, 1);
  await storeCycles(admin, store, `${run}w`, SESSIONS, 5, 1);
  for (let rep = 0; rep < REPS; rep++) {
    progress(`rep ${rep + 1}/${REPS}: floor`, true);
    rows.floor!.push(await floorCycles(admin, floor, `${run}a${rep}`, 100, 1));
    rows.floorBatch!.push(await floorCycles(admin, floor, `${run}b${rep}`, 10, 10));
    progress(`rep ${rep + 1}/${REPS}: store`, true);
    rows.store!.push(await storeCycles(admin, store, `${run}c${rep}`, SESSIONS, 100, 1));
    rows.storeBatch!.push(await storeCycles(admin, store, `${run}d${rep}`, SESSIONS, 10, 10));
    progress(`rep ${rep + 1}/${REPS}: BullMQ`, true);
    rows.bull!.push(await bullmqJobs(admin, redis.url, `${run}-bull-${rep}`, 5000));
  }
} finally {
  progressDone();
  await store.close();
  await deleteKeys(admin, 'floor:*');
  await deleteKeys(admin, 'floorstore:*');
  client.disconnect();
  admin.disconnect();
  await redis.stop();
}

const bull = rows.bull!;
const ratio = (m: Measured[]) => round(median(m.map((x, i) => x.perSecond / bull[i]!.perSecond)));
const rate = (m: Measured[]) => Math.round(median(m.map((x) => x.perSecond)));
const cpu = (m: Measured[]) => round(median(m.map((x) => x.cpuUs / x.units)), 1);
console.log(
  `redis: ${redis.how}; ${REPS} repetitions, medians; ratios are per repetition against BullMQ in the same repetition`,
);
console.log('| what | units/s | ÷ BullMQ jobs/s | Redis CPU µs per unit |');
console.log('|---|---|---|---|');
console.log(
  `| floor, 1 input a turn (per turn) | ${rate(rows.floor!)} | ${ratio(rows.floor!)} | ${cpu(rows.floor!)} |`,
);
console.log(
  `| store, 1 input a turn (per turn) | ${rate(rows.store!)} | ${ratio(rows.store!)} | ${cpu(rows.store!)} |`,
);
console.log(
  `| floor, 10 inputs a turn (per input) | ${rate(rows.floorBatch!)} | ${ratio(rows.floorBatch!)} | ${cpu(rows.floorBatch!)} |`,
);
console.log(
  `| store, 10 inputs a turn (per input) | ${rate(rows.storeBatch!)} | ${ratio(rows.storeBatch!)} | ${cpu(rows.storeBatch!)} |`,
);
console.log(`| BullMQ (per job) | ${rate(bull)} | 1 | ${cpu(bull)} |`);
