#!/usr/bin/env node
/**
 * `npm run bench:instructions [-- --batch 10] [-- --bullmq]`: Redis-side cost per store operation
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
 * same kind of server, for reference. Needs valgrind (apt-get install -y valgrind) and a build.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({
  options: {
    batch: { type: 'string', default: '1' },
    warm: { type: 'string', default: '5' },
    turns: { type: 'string', default: '4' },
    bullmq: { type: 'boolean', default: false },
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

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** A redis-server under callgrind; `count()` returns the instructions since the last `zero()`. */
async function callgrindRedis() {
  const dir = mkdtempSync(join(tmpdir(), 'rts-callgrind-'));
  const port = await freePort();
  const child = spawn(
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
  const { Redis } = await import('ioredis');
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
  const ctl = (flag) => execFileSync('callgrind_control', [flag, String(child.pid)], { stdio: 'ignore' });
  return {
    url,
    zero: () => ctl('-z'),
    count: () => {
      ctl('-d');
      dumps++;
      const file = readdirSync(dir).find((f) => f.endsWith(`.${dumps}`));
      const text = readFileSync(join(dir, file), 'utf8');
      return Number(/^(?:summary|totals):\s*(\d+)/m.exec(text)[1]);
    },
    stop: async () => {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function storeCycle() {
  const server = await callgrindRedis();
  const { createRedisRuntimeStore, leaseFence, leaseCompletion, claimCompletion } = await import(
    join(ROOT, 'dist', 'index.js')
  );
  const store = await createRedisRuntimeStore({
    redis: server.url,
    keyPrefix: 'instr',
    durability: 'inline',
    idleDispatch: false,
  });
  const owner = { ownerId: 'bench-worker', incarnationId: 'bench-worker:1' };
  const input = { text: 'x'.repeat(139) }; // 150 bytes of JSON, as in the bench
  const totals = { enqueue: 0, tryClaim: 0, claimNext: 0, commit: 0 };
  const leases = [];
  const claims = [];
  const phase = async (name, measured, fn) => {
    if (measured) server.zero();
    await Promise.all(Array.from({ length: SESSIONS }, (_, s) => fn(s)));
    if (measured) totals[name] += server.count();
  };
  const sid = (s) => `bench-cycle-${s}`;
  for (let t = 0; t < WARM + TURNS; t++) {
    const m = t >= WARM;
    await phase('enqueue', m, async (s) => {
      for (let b = 0; b < BATCH; b++) {
        await store.enqueuePendingTurnInput({ sessionId: sid(s), ingress: { scope: 'next_turn' }, input });
      }
    });
    await phase('tryClaim', m, async (s) => {
      leases[s] = (await store.tryClaimSessionExecutionLease(sid(s), owner, 600_000)).lease;
    });
    await phase('claimNext', m, async (s) => {
      claims[s] = await store.claimNextTurnInputs({
        sessionId: sid(s),
        fence: leaseFence(leases[s]),
        owner,
        leaseTtlMs: 600_000,
        maxInputs: BATCH,
      });
    });
    await phase('commit', m, async (s) => {
      await store.session(sid(s)).commitRuntimeState({
        sessionId: sid(s),
        config: {},
        agentFrames: [],
        currentAgentFrameId: 'frame-0',
        graph: { kind: 'unchanged' },
        checkpoint: { turnState: null },
        usageDeltas: [],
        completedTurnInputClaims: [claimCompletion(claims[s])],
        committedAttachmentIds: [],
        sessionExecutionLease: leaseFence(leases[s]),
        releaseSessionExecutionLease: leaseCompletion(leases[s]),
      });
    });
  }
  await store.close();
  await server.stop();
  const calls = SESSIONS * TURNS;
  const rows = [
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

async function bullmqJob() {
  const server = await callgrindRedis();
  const { Redis } = await import('ioredis');
  const { Queue, Worker } = await import('bullmq');
  const input = { text: 'x'.repeat(139) };
  const queue = new Queue('instr', { connection: new Redis(server.url, { maxRetriesPerRequest: null }) });
  const jobs = 400;
  let done = 0;
  let resolve;
  const all = new Promise((r) => {
    resolve = r;
  });
  const worker = new Worker('instr', async () => undefined, {
    connection: new Redis(server.url, { maxRetriesPerRequest: null }),
    concurrency: 50,
  });
  worker.on('completed', () => {
    if (++done === jobs + 50) resolve();
  });
  await worker.waitUntilReady();
  for (let i = 0; i < 50; i++) await queue.add('job', { i, input }, { removeOnComplete: true, removeOnFail: true });
  await new Promise((r) => setTimeout(r, 3000));
  server.zero();
  let i = 0;
  await Promise.all(
    Array.from({ length: 50 }, async () => {
      while (i < jobs) {
        i++;
        await queue.add('job', { i, input }, { removeOnComplete: true, removeOnFail: true });
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
