/**
 * `node bench/dist/bench/prof-cycle.js` (after `npx tsc -p bench/tsconfig.json`): client CPU and
 * bytes sent per 1-input cycle of one store (50 sessions x 200 cycles after 20 warm-up cycles each),
 * for judging a client-side change quickly, or under `node --cpu-prof`. `CHECKOUT=<dir>` takes the
 * store from another checkout's built bench (as `npm run bench:side-by-side` does); alternate runs
 * of the two, since the machine's load moves every figure. `REDIS_URL` names the server.
 */
import { resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Redis } from 'ioredis';
import { storeCycles } from './lib/throughput.js';

const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const checkout = process.env.CHECKOUT ?? resolve(fileURLToPath(import.meta.url), '../../../..');
const { createRedisRuntimeStore } = await import(pathToFileURL(resolve(checkout, 'bench/dist/src/index.js')).href);
const admin = new Redis(url);
const store = await createRedisRuntimeStore({
  redis: url,
  keyPrefix: `prof${Date.now()}`,
  durability: 'inline',
  idleDispatch: false,
});
const bytesIn = async () => Number(/total_net_input_bytes:(\d+)/.exec(await admin.info('stats'))?.[1]);
await storeCycles(admin, store, 'warm', 50, 20, 1);
const before = await bytesIn();
const cpu = process.cpuUsage();
const measured = await storeCycles(admin, store, 'counted', 50, 200, 1);
const used = process.cpuUsage(cpu);
const cycles = 50 * 200;
console.log(
  `${checkout}: ${Math.round(measured.perSecond)} cycles/s, client CPU ${((used.user + used.system) / cycles).toFixed(1)} µs/cycle, ${Math.round(((await bytesIn()) - before) / cycles)} bytes sent/cycle`,
);
await store.close();
admin.disconnect();
