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
import { type FloorClient, floorClient, floorTurn } from './lib/floor-scripts.js';
import { progress, progressDone } from './lib/progress.js';
import { median, round } from './lib/stats.js';
import { bullmqJobs, type Measured, measure, openStore, storeCycles } from './lib/throughput.js';

const { values } = parseArgs({
  args: process.argv.slice(2).filter((a) => !a.startsWith('--redis-url=')),
  options: { reps: { type: 'string', default: '5' } },
});
const REPS = Number(values.reps);
const SESSIONS = 50;

function floorCycles(admin: Redis, c: FloorClient, tag: string, turns: number, perTurn: number): Promise<Measured> {
  let n = 0;
  const input = JSON.stringify(INPUT_150);
  return measure(admin, SESSIONS * turns * perTurn, () =>
    pool(SESSIONS, SESSIONS, async (s) => {
      const k = (name: string) => `floor:{${tag}-${s}}:${name}`;
      for (let t = 0; t < turns; t++) {
        const ids = Array.from({ length: perTurn }, (_, i) => `ti_${tag}-${s}-${t}-${i}-${++n}`);
        const token = `${tag}${s}t${t}${Math.random().toString(16).slice(2)}`.replace(/[^0-9a-f]/g, 'a');
        await floorTurn(c, k, ids, input, OWNER, TTL, token);
      }
    }),
  );
}

const redis = await provisionRedis(process.argv.slice(2));
const admin = new Redis(redis.url);
const client = new Redis(redis.url);
coalesceWrites(client);
const floor = floorClient(client);
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
