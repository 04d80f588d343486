/**
 * `npm run bench:instructions [-- --batch 10] [-- --bullmq] [-- --keep] [-- --json]`: Redis-side cost
 * per store operation in CPU instructions, counted by valgrind's callgrind on a private redis-server.
 * `--json` counts the three figures the speed goals are judged by, each the same way, and writes
 * bench/instructions.json: perTurn1 (a 1-input turn), perInput10 (per input at 10 a turn) and
 * floorPerTurn1 (the four-script floor of bench/lib/floor-scripts.ts, 1 input a turn).
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
 * (written uncompressed, so each dump stands alone); a redis-server built with symbols (the first
 * `redis-server` on PATH, e.g. `make CFLAGS=-g` in Debian's source of redis) names Lua's functions
 * in them. `RTS_EXTRA_REDIS_ARGS` adds server arguments (e.g. `--hash-max-listpack-entries 0`). Needs valgrind (apt-get install -y valgrind). Built with the
 * rest of bench/ (bench/tsconfig.json); the inputs, owner and commits are the bench's fixtures.
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import type { SessionExecutionLease, TurnInputClaim } from '../src/index.js';
import { createRedisRuntimeStore, leaseFence } from '../src/index.js';
import { freePort } from '../test/support/redis-server.js';
import { finishingCommit, INPUT_150, OWNER, TTL } from './lib/fixtures.js';
import { floorClient, floorTurn } from './lib/floor-scripts.js';

const { values } = parseArgs({
  options: {
    batch: { type: 'string', default: '1' },
    warm: { type: 'string', default: '5' },
    turns: { type: 'string', default: '4' },
    bullmq: { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
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
      ...(values.keep ? ['--compress-strings=no', '--compress-pos=no'] : []),
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
      ...(process.env.RTS_EXTRA_REDIS_ARGS ?? '').split(' ').filter(Boolean),
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

/** Instructions of each phase of a turn, per call, for one batch size. */
interface CycleCounts {
  enqueue: number;
  tryClaim: number;
  claimNext: number;
  commit: number;
}

/** The per-call rows of a store cycle, and its instructions per turn. */
async function storeCycle(batch: number = BATCH): Promise<[string, number][]> {
  const { totals, calls } = await countStoreCycle(batch);
  return cycleRows(totals, calls, batch);
}

function cycleRows(totals: CycleCounts, calls: number, batch: number): [string, number][] {
  const rows: [string, number][] = [
    ['enqueue', totals.enqueue / (calls * batch)],
    ['tryClaimSessionExecutionLease', totals.tryClaim / calls],
    [`claimNextTurnInputs (${batch} row${batch > 1 ? 's' : ''})`, totals.claimNext / calls],
    [`commitRuntimeState (${batch} row${batch > 1 ? 's' : ''}, release)`, totals.commit / calls],
  ];
  const perTurn = perTurnOf(totals, calls);
  rows.push([`per turn (${batch} input${batch > 1 ? 's' : ''})`, perTurn]);
  if (batch > 1) rows.push(['per input', perTurn / batch]);
  return rows;
}

function perTurnOf(totals: CycleCounts, calls: number): number {
  return (totals.enqueue + totals.tryClaim + totals.claimNext + totals.commit) / calls;
}

/** The same turn shape as countStoreCycle, made of the floor's four scripts. */
async function countFloorCycle(
  batch: number,
  warm = WARM,
  turns = TURNS,
): Promise<{ totals: CycleCounts; calls: number }> {
  const server = await callgrindRedis();
  const client = new Redis(server.url);
  const floor = floorClient(client);
  const totals: CycleCounts = { enqueue: 0, tryClaim: 0, claimNext: 0, commit: 0 };
  const input = JSON.stringify(INPUT_150);
  let n = 0;
  for (let t = 0; t < warm + turns; t++) {
    const measured = t >= warm;
    // Phases run for all sessions together, as in countStoreCycle: each session's turn is
    // split at the phase boundaries by a barrier.
    const phases = ['enqueue', 'tryClaim', 'claimNext', 'commit'] as const;
    const waiting: (() => void)[] = [];
    let arrived = 0;
    if (measured) server.zero();
    const barrier = async (name: (typeof phases)[number]) => {
      await new Promise<void>((resolve) => {
        waiting.push(resolve);
        if (++arrived === SESSIONS) {
          if (measured) {
            totals[name] += server.count();
            server.zero();
          }
          arrived = 0;
          for (const w of waiting.splice(0)) w();
        }
      });
    };
    await Promise.all(
      Array.from({ length: SESSIONS }, (_, s) => {
        const key = (name: string) => `floor:{s${s}}:${name}`;
        const ids = Array.from({ length: batch }, () => `ti_floor_${++n}`);
        const token = (n * 7919 + s).toString(16).padStart(32, '0');
        return floorTurn(floor, key, ids, input, OWNER, TTL, token, barrier);
      }),
    );
  }
  client.disconnect();
  await server.stop();
  return { totals, calls: SESSIONS * turns };
}

async function countStoreCycle(
  batch: number,
  warm = WARM,
  turns = TURNS,
): Promise<{ totals: CycleCounts; calls: number }> {
  const server = await callgrindRedis();
  const store = await createRedisRuntimeStore({
    redis: server.url,
    keyPrefix: 'instr',
    durability: 'inline',
    idleDispatch: false,
  });
  const totals: CycleCounts = { enqueue: 0, tryClaim: 0, claimNext: 0, commit: 0 };
  const leases: SessionExecutionLease[] = [];
  const claims: (TurnInputClaim | null)[] = [];
  const phase = async (name: keyof typeof totals, measured: boolean, fn: (s: number) => Promise<void>) => {
    if (measured) server.zero();
    await Promise.all(Array.from({ length: SESSIONS }, (_, s) => fn(s)));
    if (measured) totals[name] += server.count();
  };
  const sid = (s: number) => `bench-cycle-${s}`;
  for (let t = 0; t < warm + turns; t++) {
    const m = t >= warm;
    await phase('enqueue', m, async (s) => {
      for (let b = 0; b < batch; b++) {
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
        maxInputs: batch,
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
  return { totals, calls: SESSIONS * turns };
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

if (values.json) {
  // The shapes the earlier figures were taken with (bench/RESULTS.md): 40 warm turns and 20
  // counted at 1 input a turn, so tombstones have piled up; 5 and 6 at 10 a turn.
  const one = await countStoreCycle(1, 40, 20);
  const ten = await countStoreCycle(10, 5, 6);
  const floor = await countFloorCycle(1, 40, 20);
  const result = {
    perTurn1: Math.round(perTurnOf(one.totals, one.calls)),
    perInput10: Math.round(perTurnOf(ten.totals, ten.calls) / 10),
    floorPerTurn1: Math.round(perTurnOf(floor.totals, floor.calls)),
  };
  const file = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'bench', 'instructions.json');
  writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
  console.log('| operation | Redis instructions per call |');
  console.log('|---|---|');
  for (const [name, n] of [...cycleRows(one.totals, one.calls, 1), ...cycleRows(ten.totals, ten.calls, 10)])
    console.log(`| ${name} | ${Math.round(n / 1000)}k |`);
  for (const [name, n] of cycleRows(floor.totals, floor.calls, 1))
    console.log(`| floor: ${name} | ${Math.round(n / 1000)}k |`);
  console.log(`wrote ${file}: ${JSON.stringify(result)}`);
  process.exit(0);
}

const rows = await storeCycle();
if (values.bullmq) rows.push(...(await bullmqJob()));
console.log('| operation | Redis instructions per call |');
console.log('|---|---|');
for (const [name, n] of rows) console.log(`| ${name} | ${Math.round(n / 1000)}k |`);
process.exit(0);
