/**
 * `npm run bench:instructions [-- --batch 10] [-- --bullmq] [-- --keep]`: Redis-side cost per store operation
 * in CPU instructions, counted by valgrind's callgrind on a private redis-server.
 *
 * Why: timings on a shared 2-core machine vary by 2x from run to run, while instruction counts
 * are the same on every run (to within the event-loop batching of the harness, about 1%). This is
 * what the store's script work was tuned against (bench/RESULTS.md). It complements `npm run
 * bench`, which measures rates and CPU time side by side.
 *
 * Steady state like the bench's cycle: 50 sessions, `--warm` turns first (default 5), then
 * `--turns` measured turns (default 4) of: enqueue `--batch` next-turn inputs (default 1) ->
 * tryClaim -> claimNext -> commit (complete + release). Each phase is counted alone, from a
 * zeroed counter to a dump. `--bullmq` also counts a BullMQ job (add -> worker completes) on the
 * same kind of server, for reference. `--keep` keeps the callgrind dumps (one per counted phase)
 * for callgrind_annotate; a redis-server built with symbols names Lua's functions in them. Needs valgrind (apt-get install -y valgrind). Built with the
 * rest of bench/ (bench/tsconfig.json); the inputs, owner and commits are the bench's fixtures.
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import type { SessionExecutionLease, TurnInputClaim } from '../src/index.js';
import { createRedisRuntimeStore, leaseFence } from '../src/index.js';
import { freePort } from '../test/support/redis-server.js';
import { finishingCommit, INPUT_150, OWNER, TTL } from './lib/fixtures.js';

const { values } = parseArgs({
  options: {
    batch: { type: 'string', default: '1' },
    warm: { type: 'string', default: '5' },
    turns: { type: 'string', default: '4' },
    bullmq: { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
  },
});
const BATCH = Number(values.batch);
const WARM = Number(values.warm);
const TURNS = Number(values.turns);
const SESSIONS = 50;

if (spawnSync('valgrind', ['--version']).status !== 0) {
  console.error('bench:instructions needs valgrind (apt-get install -y valgrind)');
  process.exit(2);
}

/** A redis-server under callgrind; `count()` returns the instructions since the last `zero()`. */
interface CallgrindRedis {
  url: string;
  /** Zeroes the instruction counter. */
  zero(): void;
  /** Instructions since the last zero(). */
  count(): number;
  stop(): Promise<void>;
}

async function callgrindRedis(): Promise<CallgrindRedis> {
  const dir = mkdtempSync(join(tmpdir(), 'rts-callgrind-'));
  const port = await freePort();
  const child: ChildProcess = spawn(
    'valgrind',
    [
      '--tool=callgrind',
      `--callgrind-out-file=${join(dir, 'out')}`,
      'redis-server',
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      '--dir',
      dir,
    ],
    { stdio: 'ignore' },
  );
  const url = `redis://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    probe.on('error', () => undefined);
    try {
      await probe.connect();
      await probe.ping();
      await probe.quit();
      break;
    } catch {
      probe.disconnect();
      if (i > 150) throw new Error('redis-server under valgrind did not start');
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  let dumps = 0;
  const ctl = (flag: string) => execFileSync('callgrind_control', [flag, String(child.pid)], { stdio: 'ignore' });
  return {
    url,
    zero: () => ctl('-z'),
    count: () => {
      ctl('-d');
      dumps++;
      const file = readdirSync(dir).find((f) => f.endsWith(`.${dumps}`));
      if (!file) throw new Error('callgrind wrote no dump');
      const total = /^(?:summary|totals):\s*(\d+)/m.exec(readFileSync(join(dir, file), 'utf8'));
      if (!total) throw new Error('callgrind dump has no total');
      return Number(total[1]);
    },
    stop: async () => {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
      if (values.keep) console.error(`callgrind dumps kept in ${dir} (one per counted phase, for callgrind_annotate)`);
      else rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function storeCycle(): Promise<[string, number][]> {
  const server = await callgrindRedis();
  const store = await createRedisRuntimeStore({
    redis: server.url,
    keyPrefix: 'instr',
    durability: 'inline',
    idleDispatch: false,
  });
  const totals = { enqueue: 0, tryClaim: 0, claimNext: 0, commit: 0 };
  const leases: SessionExecutionLease[] = [];
  const claims: (TurnInputClaim | null)[] = [];
  const phase = async (name: keyof typeof totals, measured: boolean, fn: (s: number) => Promise<void>) => {
    if (measured) server.zero();
    await Promise.all(Array.from({ length: SESSIONS }, (_, s) => fn(s)));
    if (measured) totals[name] += server.count();
  };
  const sid = (s: number) => `bench-cycle-${s}`;
  for (let t = 0; t < WARM + TURNS; t++) {
    const m = t >= WARM;
    await phase('enqueue', m, async (s) => {
      for (let b = 0; b < BATCH; b++) {
        await store.enqueuePendingTurnInput({ sessionId: sid(s), ingress: { scope: 'next_turn' }, input: INPUT_150 });
      }
    });
    await phase('tryClaim', m, async (s) => {
      const got = await store.tryClaimSessionExecutionLease(sid(s), OWNER, TTL);
      if (got.outcome !== 'acquired') throw new Error('bench:instructions: lease busy');
      leases[s] = got.lease;
    });
    await phase('claimNext', m, async (s) => {
      claims[s] = await store.claimNextTurnInputs({
        sessionId: sid(s),
        fence: leaseFence(leases[s]),
        owner: OWNER,
        leaseTtlMs: TTL,
        maxInputs: BATCH,
      });
    });
    await phase('commit', m, async (s) => {
      const claim = claims[s];
      if (!claim) throw new Error('bench:instructions: nothing claimed');
      await store.session(sid(s)).commitRuntimeState(finishingCommit(leases[s], [claim]));
    });
  }
  await store.close();
  await server.stop();
  const calls = SESSIONS * TURNS;
  const rows: [string, number][] = [
    ['enqueue', totals.enqueue / (calls * BATCH)],
    ['tryClaimSessionExecutionLease', totals.tryClaim / calls],
    [`claimNextTurnInputs (${BATCH} row${BATCH > 1 ? 's' : ''})`, totals.claimNext / calls],
    [`commitRuntimeState (${BATCH} row${BATCH > 1 ? 's' : ''}, release)`, totals.commit / calls],
  ];
  const perTurn = (totals.enqueue + totals.tryClaim + totals.claimNext + totals.commit) / calls;
  rows.push([`per turn (${BATCH} input${BATCH > 1 ? 's' : ''})`, perTurn]);
  if (BATCH > 1) rows.push(['per input', perTurn / BATCH]);
  return rows;
}

async function bullmqJob(): Promise<[string, number][]> {
  const server = await callgrindRedis();
  const queue = new Queue('instr', { connection: new Redis(server.url, { maxRetriesPerRequest: null }) as never });
  const jobs = 400;
  let done = 0;
  let resolve: () => void = () => {};
  const all = new Promise<void>((r) => {
    resolve = r;
  });
  const worker = new Worker('instr', async () => undefined, {
    connection: new Redis(server.url, { maxRetriesPerRequest: null }) as never,
    concurrency: 50,
  });
  worker.on('completed', () => {
    if (++done === jobs + 50) resolve();
  });
  await worker.waitUntilReady();
  for (let i = 0; i < 50; i++)
    await queue.add('job', { i, input: INPUT_150 }, { removeOnComplete: true, removeOnFail: true });
  await new Promise((r) => setTimeout(r, 3000));
  server.zero();
  let i = 0;
  await Promise.all(
    Array.from({ length: 50 }, async () => {
      while (i < jobs) {
        i++;
        await queue.add('job', { i, input: INPUT_150 }, { removeOnComplete: true, removeOnFail: true });
      }
    }),
  );
  await all;
  const count = server.count();
  await worker.close();
  await queue.close();
  await server.stop();
  return [['BullMQ job (add -> completed, removeOnComplete)', count / jobs]];
}

const rows = await storeCycle();
if (values.bullmq) rows.push(...(await bullmqJob()));
console.log('| operation | Redis instructions per call |');
console.log('|---|---|');
for (const [name, n] of rows) console.log(`| ${name} | ${Math.round(n / 1000)}k |`);
process.exit(0);
