/**
 * `npm run bench:dispatch-latency [-- --variants=<dir>,.] [-- --samples=600]`
 *
 * The bench's dispatchLatencyUs (enqueue resolved → runTurn called, an idle
 * createIdleDispatchWorker at concurrency 1, one input at a time, a fresh session each) for two or
 * more checkouts side by side in one process on one private redis-server, samples interleaved one
 * by one (the order alternating). `.` is this checkout; another `<dir>` must have its bench built
 * (`npx tsc -p bench/tsconfig.json && ln -sfn ../../lua bench/dist/lua` there). Prints each
 * variant's p50 / p99 and, per block of samples, its p50 divided by the first variant's.
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Redis } from 'ioredis';
import type { RuntimeStore } from '../src/index.js';
import { provisionRedis } from './lib/env.js';
import { baseCommit, INPUT_150, OWNER, TTL } from './lib/fixtures.js';
import { percentile } from './lib/stats.js';

const argv = process.argv.slice(2);
const value = (name: string) => argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const VARIANTS = (value('variants') ?? '.').split(',');
const SAMPLES = Number(value('samples') ?? 600);
const WARM = 30;
const BLOCKS = 5;
const nowUs = () => performance.now() * 1000;

interface Variant {
  name: string;
  store: RuntimeStore;
  close(): Promise<void>;
  started?: (us: number) => void;
  committed?: () => void;
  samples: number[];
}

async function open(dir: string, url: string, i: number): Promise<Variant> {
  const base = dir === '.' ? new URL('..', import.meta.url).href : `${pathToFileURL(resolve(dir)).href}/bench/dist/`;
  const index = (await import(`${base}src/index.js`)) as typeof import('../src/index.js');
  const dispatch = (await import(`${base}src/dispatch/index.js`)) as typeof import('../src/dispatch/index.js');
  const store = await index.createRedisRuntimeStore({ redis: url, keyPrefix: `lat${i}`, idleDispatch: true });
  const conn = new Redis(url, { maxRetriesPerRequest: null });
  const v: Variant = { name: dir, store, samples: [], close: async () => {} };
  const worker = dispatch.createIdleDispatchWorker({
    store,
    connection: conn,
    owner: OWNER,
    leaseTtlMs: TTL,
    concurrency: 1,
    sweepIntervalMs: 86_400_000,
    vacuumIntervalMs: 2_000_000_000,
    runTurn: async ({ sessionId }) => {
      v.started?.(nowUs());
      return baseCommit(sessionId);
    },
    onEvent: (e) => {
      if (e.type === 'committed') v.committed?.();
    },
  });
  await worker.waitUntilReady();
  v.close = async () => {
    await worker.close();
    await store.close();
    await conn.quit().catch(() => conn.disconnect());
  };
  return v;
}

async function sample(v: Variant, i: number): Promise<void> {
  const started = new Promise<number>((r) => {
    v.started = r;
  });
  const committed = new Promise<void>((r) => {
    v.committed = r;
  });
  await v.store.enqueuePendingTurnInput({ sessionId: `s${i}`, ingress: { scope: 'next_turn' }, input: INPUT_150 });
  const resolved = nowUs();
  const at = await started;
  await committed;
  if (i >= WARM) v.samples.push(at - resolved);
}

async function main(): Promise<void> {
  const redis = await provisionRedis(argv);
  const variants: Variant[] = [];
  try {
    for (const [i, dir] of VARIANTS.entries()) variants.push(await open(dir, redis.url, i));
    for (let i = 0; i < SAMPLES + WARM; i++) {
      const order = i % 2 === 0 ? variants : [...variants].reverse();
      for (const v of order) await sample(v, i);
    }
    const per = Math.floor(SAMPLES / BLOCKS);
    const p50 = (xs: number[]) => percentile(xs, 50);
    for (const v of variants) {
      const ratios = Array.from({ length: BLOCKS }, (_x, b) =>
        (p50(v.samples.slice(b * per, (b + 1) * per)) / p50(variants[0].samples.slice(b * per, (b + 1) * per))).toFixed(
          3,
        ),
      );
      process.stdout.write(
        `${v.name}: p50 ${Math.round(p50(v.samples))} µs, p99 ${Math.round(percentile(v.samples, 99))} µs; p50 ÷ ${variants[0].name} per block: ${ratios.join(' ')}\n`,
      );
    }
  } finally {
    for (const v of variants) await v.close();
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
