/**
 * `npm run bench:side-by-side [-- --variants=coalesce,autopipeline,off] [-- --rounds=7]`
 *
 * The bench's enqueue and 1-input cycle throughput (bench/lib/throughput.ts: 20 000 enqueues and
 * 50 sessions × 100 turns, 50 in flight) for several store configurations on one private
 * redis-server, interleaved (A, B, C, A, B, C, ...) so that load from other processes on the
 * machine falls on every variant alike, after one uncounted warm-up round. Per variant: median
 * (min – max) over the rounds of enqueue/s, cycles/s, client and Redis CPU µs per cycle, and of
 * the first three divided by the first variant's figure in the same round. Not part of
 * `npm run bench`.
 *
 * A variant is a `writeBatching` value (`coalesce`, `off`), `default` (no option: also runs on
 * older checkouts) or `autopipeline` (the store on a client of the caller's made with ioredis
 * `enableAutoPipelining: true`). A variant may also end in `@<dir>`: the store then comes from another
 * checkout whose bench is built (`<dir>/bench/dist/src/index.js`, e.g. `npx tsc -p
 * bench/tsconfig.json && ln -sfn ../../lua bench/dist/lua` there), so two versions of the code
 * run side by side in one process: `--variants=default@/tmp/before,default`.
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Redis } from 'ioredis';
import type { RuntimeStore } from '../src/index.js';
import { createRedisRuntimeStore } from '../src/index.js';
import { provisionRedis } from './lib/env.js';
import { round, spreadOf } from './lib/stats.js';
import { storeCycles, storeEnqueue } from './lib/throughput.js';

const argv = process.argv.slice(2);
const value = (name: string) => argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const VARIANTS = (value('variants') ?? 'coalesce,autopipeline,off').split(',');
const ROUNDS = Number(value('rounds') ?? 7);
const ENQUEUES = Number(value('enqueues') ?? 20_000);
const TURNS = Number(value('turns') ?? 100);
const SESSIONS = 50;

interface Figures {
  enqueuePerSecond: number[];
  cyclesPerSecond: number[];
  clientCpuUsPerCycle: number[];
  redisCpuUsPerCycle: number[];
}

async function open(url: string, variant: string, prefix: string): Promise<RuntimeStore> {
  const [config, checkout] = variant.split('@');
  const mode = config;
  const createStore: typeof createRedisRuntimeStore =
    checkout === undefined
      ? createRedisRuntimeStore
      : (await import(pathToFileURL(resolve(checkout, 'bench/dist/src/index.js')).href)).createRedisRuntimeStore;
  const options: Record<string, unknown> = { redis: url, keyPrefix: prefix, durability: 'inline', idleDispatch: false };
  if (mode === 'autopipeline') {
    // A client of the caller's, which the store leaves as it is (no write coalescing).
    options.redis = new Redis(url, { enableAutoPipelining: true });
    autopipelined.push(options.redis as Redis);
  } else if (mode !== 'default') options.writeBatching = mode;
  return createStore(options);
}
const autopipelined: Redis[] = [];

async function main(): Promise<void> {
  const redis = await provisionRedis(argv);
  const admin = new Redis(redis.url);
  const runId = `sbs${Date.now().toString(36)}`;
  const stores = new Map<string, RuntimeStore>();
  const figures = new Map<string, Figures>();
  try {
    for (const [i, v] of VARIANTS.entries()) {
      stores.set(v, await open(redis.url, v, `${runId}-v${i}`));
      figures.set(v, { enqueuePerSecond: [], cyclesPerSecond: [], clientCpuUsPerCycle: [], redisCpuUsPerCycle: [] });
    }
    process.stderr.write(`redis: ${redis.how}\n`);
    // The first round warms every variant up (JIT, connections, script cache) and is not counted.
    for (let r = -1; r < ROUNDS; r++) {
      for (const v of VARIANTS) {
        const store = stores.get(v)!;
        const f = figures.get(v)!;
        const enq = await storeEnqueue(admin, store, `e${r + 1}`, ENQUEUES, SESSIONS);
        const cpu0 = process.cpuUsage();
        const cyc = await storeCycles(admin, store, `c${r + 1}`, SESSIONS, TURNS, 1);
        const cpu = process.cpuUsage(cpu0);
        if (r < 0) continue;
        f.enqueuePerSecond.push(enq.perSecond);
        f.cyclesPerSecond.push(cyc.perSecond);
        f.clientCpuUsPerCycle.push((cpu.user + cpu.system) / cyc.units);
        f.redisCpuUsPerCycle.push(cyc.cpuUs / cyc.units);
        process.stderr.write(
          `round ${r + 1}/${ROUNDS} ${v}: enqueue/s ${Math.round(enq.perSecond)}, cycles/s ${Math.round(cyc.perSecond)}, client µs/cycle ${round((cpu.user + cpu.system) / cyc.units, 1)}\n`,
        );
      }
    }
    const fmt = (xs: number[], digits: number) => {
      const s = spreadOf(xs);
      return `${round(s.median, digits)} (${round(s.min, digits)} – ${round(s.max, digits)})`;
    };
    // Each variant's figure over the first variant's in the same round: load that drifts from
    // round to round cancels out of these.
    const first = figures.get(VARIANTS[0])!;
    const ratios = (xs: number[], base: number[]) =>
      fmt(
        xs.map((x, i) => x / base[i]),
        3,
      );
    const rows = [...figures].map(([v, f]) => [
      v,
      fmt(f.enqueuePerSecond, 0),
      fmt(f.cyclesPerSecond, 0),
      fmt(f.clientCpuUsPerCycle, 1),
      fmt(f.redisCpuUsPerCycle, 1),
      ratios(f.enqueuePerSecond, first.enqueuePerSecond),
      ratios(f.cyclesPerSecond, first.cyclesPerSecond),
      ratios(f.clientCpuUsPerCycle, first.clientCpuUsPerCycle),
    ]);
    const header = [
      'variant',
      'enqueue/s',
      'cycles/s',
      'client CPU µs/cycle',
      'Redis CPU µs/cycle',
      `enqueue/s ÷ ${VARIANTS[0]}`,
      `cycles/s ÷ ${VARIANTS[0]}`,
      `client CPU ÷ ${VARIANTS[0]}`,
    ];
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
    const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`;
    process.stdout.write(
      `${[line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n')}\n`,
    );
    process.stdout.write(
      `median (min – max) of ${ROUNDS} interleaved rounds; ${ENQUEUES} enqueues and ${SESSIONS} × ${TURNS} cycles per round, 50 in flight\n`,
    );
  } finally {
    for (const s of stores.values()) await s.close().catch(() => undefined);
    for (const c of autopipelined) c.disconnect();
    await admin.quit().catch(() => admin.disconnect());
    await redis.stop();
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
