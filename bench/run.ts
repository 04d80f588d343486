/**
 * `npm run bench [-- --json] [-- --quick] [-- --redis-url=redis://…]`
 *
 * Figures and ratios measured side by side in one run (see bench/RESULTS.md). Prints a progress
 * line while it runs and one table at the end; with --json also writes bench/results.json with
 * the keys of issue 6 and those of issue 21.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { chattyDispatch, dispatchLatency } from './lib/dispatch.js';
import { assertNoMonitor, deleteKeys, provisionRedis } from './lib/env.js';
import { interruptLatency } from './lib/interrupt-latency.js';
import { progress, progressDone } from './lib/progress.js';
import { measureRoundTripsAndLatency } from './lib/roundtrips.js';
import {
  activePathRatio,
  buildGraph,
  bullmqBytesPerWaitingJob,
  bytesPerInputSpread,
  claimRatio,
  commitRatio,
  fillPending,
  graphNodeMemory,
  type PairedResult,
  serverVersion,
} from './lib/scale.js';
import { percentile, round, type Spread, spreadOf } from './lib/stats.js';
import {
  bullmqJobs,
  dispatchPath,
  type Measured,
  openStore,
  rawEvalsha,
  scriptTimes,
  storeCycles,
  storeEnqueue,
} from './lib/throughput.js';

const argv = process.argv.slice(2);
const wantJson = argv.includes('--json');
const quick = argv.includes('--quick');

/** bench/dist/bench/run.js → the repository root is three levels up. */
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const BENCH_DIR = join(ROOT, 'bench');

const N = quick
  ? {
      reps: 2,
      enqueue: 1000,
      cycleTurns: 10,
      batchTurns: 2,
      bull: 1000,
      dispatch: 500,
      latency: 50,
      interrupts: 20,
      paired: 60,
      blocks: 2,
      pending: 20_000,
      graph: 20_000,
      chattyRounds: 3,
    }
  : {
      reps: 7,
      enqueue: 20_000,
      cycleTurns: 100,
      batchTurns: 10,
      bull: 5000,
      dispatch: 3000,
      latency: 500,
      interrupts: 200,
      paired: 1000,
      blocks: 5,
      pending: 100_000,
      graph: 100_000,
      chattyRounds: 9,
    };
const SESSIONS = 50;

function pkgVersion(name: string): string {
  try {
    return JSON.parse(readFileSync(join(ROOT, 'node_modules', name, 'package.json'), 'utf8')).version;
  } catch {
    return '?';
  }
}

function cpuModel(): string {
  try {
    const m = /model name\s*:\s*(.+)/.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (m) return m[1].trim();
  } catch {
    // not Linux
  }
  return cpus()[0]?.model ?? '?';
}

interface Row {
  key: string;
  what: string;
  value: Spread | number | string;
  goal: string;
  ok?: boolean;
}

async function main(): Promise<void> {
  const started = Date.now();
  const redis = await provisionRedis(argv);
  const admin = new Redis(redis.url);
  const runId = `bench${Date.now().toString(36)}`;
  progress(`Redis: ${redis.how}`, true);
  const rows: Row[] = [];
  const notes: string[] = [];
  try {
    const redisVersion = await serverVersion(admin);

    // ---------------------------------------------------------------- round trips and latency
    const rt = await measureRoundTripsAndLatency(redis.url, redis.private, `${runId}-rt`, N.latency);
    notes.push(...rt.disagreements.map((d) => `round-trip cross-check disagrees: ${d}`));
    await assertNoMonitor(admin);

    // ---------------------------------------------------------------- throughput, side by side
    const enqStore = await openStore(redis.url, `${runId}-enq`, false);
    const cycStore = await openStore(redis.url, `${runId}-cyc`, false);
    const raw = new Redis(redis.url);
    const enqRatios: number[] = [];
    const cycleRatios: number[] = [];
    const batchRatios: number[] = [];
    const dispatchRatios: number[] = [];
    const cpuPerCycle: number[] = [];
    const cpuPerJob: number[] = [];
    const perSecond: Record<string, number[]> = {
      enqueue: [],
      raw: [],
      cycle: [],
      batch10: [],
      bullmq: [],
      dispatch: [],
    };
    let dispatchAvailable = true;
    for (let rep = 0; rep < N.reps; rep++) {
      const tag = `${rep + 1}/${N.reps}`;
      const forward = rep % 2 === 0;
      // enqueue vs raw EVALSHA, 50 in flight, alternating which goes first
      progress(`throughput ${tag}: enqueue vs raw EVALSHA`, true);
      let enq: Measured;
      let rawM: Measured;
      if (forward) {
        enq = await storeEnqueue(admin, enqStore, `e${rep}`, N.enqueue, SESSIONS);
        rawM = await rawEvalsha(admin, raw, `${runId}-raw`, N.enqueue, SESSIONS, rep * N.enqueue);
      } else {
        rawM = await rawEvalsha(admin, raw, `${runId}-raw`, N.enqueue, SESSIONS, rep * N.enqueue);
        enq = await storeEnqueue(admin, enqStore, `e${rep}`, N.enqueue, SESSIONS);
      }
      enqRatios.push(enq.perSecond / rawM.perSecond);
      perSecond.enqueue.push(enq.perSecond);
      perSecond.raw.push(rawM.perSecond);

      // cycles, batch-10 cycles, dispatch path and BullMQ; order reversed on odd reps
      const steps: (() => Promise<void>)[] = [];
      let bull!: Measured;
      let cycle!: Measured;
      let batch!: Measured;
      let dispatch: Measured | undefined;
      steps.push(async () => {
        progress(`throughput ${tag}: BullMQ baseline (${N.bull} jobs, concurrency 50)`, true);
        bull = await bullmqJobs(admin, redis.url, `${runId}-bull-${rep}`, N.bull);
      });
      steps.push(async () => {
        progress(`throughput ${tag}: store cycles, 1 input per turn`, true);
        cycle = await storeCycles(admin, cycStore, `c${rep}`, SESSIONS, N.cycleTurns, 1);
      });
      steps.push(async () => {
        progress(`throughput ${tag}: store cycles, 10 inputs per turn`, true);
        batch = await storeCycles(admin, cycStore, `b${rep}`, SESSIONS, N.batchTurns, 10);
      });
      steps.push(async () => {
        progress(`throughput ${tag}: idle-dispatch path`, true);
        dispatch = await dispatchPath(admin, redis.url, `${runId}-d${rep}`, N.dispatch);
      });
      if (!forward) steps.reverse();
      for (const step of steps) await step();
      perSecond.bullmq.push(bull.perSecond);
      perSecond.cycle.push(cycle.perSecond);
      perSecond.batch10.push(batch.perSecond);
      cycleRatios.push(cycle.perSecond / bull.perSecond);
      batchRatios.push(batch.perSecond / bull.perSecond);
      cpuPerCycle.push(cycle.cpuUs / cycle.units);
      cpuPerJob.push(bull.cpuUs / bull.units);
      if (dispatch) {
        perSecond.dispatch.push(dispatch.perSecond);
        dispatchRatios.push(dispatch.perSecond / bull.perSecond);
      } else dispatchAvailable = false;
    }
    let perScript: Record<string, number> | undefined;
    if (redis.private) {
      progress('Redis time per script of a cycle', true);
      for (let k = 0; k < 3; k++) {
        const t = await scriptTimes(admin, cycStore, `st${k}`, 2000);
        if (k > 0)
          for (const [op, us] of Object.entries(t))
            perScript = { ...perScript, [op]: Math.min(perScript?.[op] ?? us, us) };
      }
    }
    await enqStore.close();
    await cycStore.close();
    await raw.quit();

    // ---------------------------------------------------------------- dispatch latency and chatty sessions
    progress(`dispatch latency: ${N.latency} sequential samples of each`, true);
    const lat = await dispatchLatency(redis.url, `${runId}-lat`, N.latency);
    progress(`chatty dispatch: ${N.chattyRounds} rounds of each`, true);
    const chatty = await chattyDispatch(redis.url, `${runId}-chatty`, N.chattyRounds);

    // ---------------------------------------------------------------- scale and memory
    const scaleStore = await openStore(redis.url, `${runId}-scale`, false);
    progress(`memory + ${N.pending} pending inputs`, true);
    const mem = await fillPending(admin, scaleStore, `${runId}-scale`, 'pending-100k', 'pending-10', N.pending);
    const bullBytes = await bullmqBytesPerWaitingJob(admin, redis.url, `${runId}-bullmem`, 10_000);
    const spreadBytes = await bytesPerInputSpread(admin, scaleStore, 'spread', 1000, 10_000);
    progress('claimNext: 100k pending vs 10', true);
    const claim = await claimRatio(scaleStore, 'pending-100k', 'pending-10', N.paired, N.blocks);
    progress(`graphs: ${N.graph}, 100 and 10 nodes`, true);
    const g100k = await buildGraph(scaleStore, 'graph-100k', N.graph);
    const g100 = await buildGraph(scaleStore, 'graph-100', 100);
    const g10 = await buildGraph(scaleStore, 'graph-10', 10, 10);
    const active = await activePathRatio(scaleStore, g100, g100k, N.paired, N.blocks);
    progress('memory per committed graph node', true);
    const graphMem = await graphNodeMemory(admin, scaleStore, `${runId}-scale`, 'graph-mem', 1000);
    const commit = await commitRatio(scaleStore, g10, g100k, N.paired, N.blocks);
    await scaleStore.close();
    progressDone();

    // ---------------------------------------------------------------- the table
    const allOne = Object.values(rt.perOp).every((n) => n === 1);
    const notOne = Object.entries(rt.perOp).filter(([, n]) => n !== 1);
    const cpuCycle = spreadOf(cpuPerCycle);
    const cpuJob = spreadOf(cpuPerJob);
    const ratio = (xs: number[]) => spreadOf(xs);
    const pairedRow = (p: PairedResult) => p.ratio;
    rows.push({
      key: 'roundTripsPerOp',
      what: `client commands per call, ${Object.keys(rt.perOp).length} operations`,
      value: allOne ? 'all 1' : notOne.map(([k, n]) => `${k}=${n}`).join(', '),
      goal: '= 1 each',
      ok: allOne,
    });
    const e = ratio(enqRatios);
    rows.push({
      key: 'enqueueVsRawEvalsha',
      what: 'enqueue/s ÷ raw ZADD+HSET EVALSHA/s, 50 in flight',
      value: e,
      goal: '>= 0.6',
      ok: e.median >= 0.6,
    });
    const c = ratio(cycleRatios);
    rows.push({
      key: 'cycleVsBullmq',
      what: 'cycles/s (1 input/turn, 50 sessions) ÷ BullMQ jobs/s',
      value: c,
      goal: '>= 1.0',
      ok: c.median >= 1,
    });
    const b = ratio(batchRatios);
    rows.push({
      key: 'cycleBatch10VsBullmq',
      what: 'inputs/s (10 inputs/turn) ÷ BullMQ jobs/s',
      value: b,
      goal: '>= 3',
      ok: b.median >= 3,
    });
    rows.push({
      key: 'dispatchCycleVsBullmq',
      what: 'inputs/s via createIdleDispatchWorker (c=50) ÷ BullMQ jobs/s',
      value: dispatchAvailable ? ratio(dispatchRatios) : 'n/a (no createIdleDispatchWorker)',
      goal: '>= 0.6',
      ok: dispatchAvailable && spreadOf(dispatchRatios).median >= 0.6,
    });
    rows.push({
      key: 'redisCpuUsPerCycle',
      what: 'Redis CPU µs per full cycle (1 input/turn)',
      value: cpuCycle,
      goal: '<= 60',
      ok: cpuCycle.median <= 60,
    });
    rows.push({ key: 'bullmqRedisCpuUsPerJob', what: 'Redis CPU µs per BullMQ job', value: cpuJob, goal: 'measured' });
    rows.push({
      key: 'claimP50Ratio100kVs10',
      what: `claimNext p50, ${N.pending} pending ÷ 10 pending`,
      value: pairedRow(claim),
      goal: '<= 1.2',
      ok: claim.ratio.median <= 1.2,
    });
    rows.push({
      key: 'commitP50Ratio100kVs10',
      what: `1-node append p50, ${N.graph}-node graph ÷ 10-node`,
      value: pairedRow(commit),
      goal: '<= 1.2',
      ok: commit.ratio.median <= 1.2,
    });
    rows.push({
      key: 'activePathP50Ratio100kVs100',
      what: `active_path(50) p50, ${N.graph}-node graph ÷ 100-node`,
      value: pairedRow(active),
      goal: '<= 1.5',
      ok: active.ratio.median <= 1.5,
    });
    rows.push({
      key: 'bytesPerPendingInput',
      what: 'used_memory Δ per pending input (10k, 150-byte input)',
      value: mem.bytesPerPendingInput,
      goal: '<= 520',
      ok: mem.bytesPerPendingInput <= 520,
    });
    rows.push({
      key: 'bytesPerGraphNodeOverhead',
      what: `used_memory per committed node − its JSON (1000 nodes, ~1 KB text, mean JSON ${graphMem.meanJsonBytes} B)`,
      value: graphMem.bytesPerGraphNodeOverhead,
      goal: '<= 200',
      ok: graphMem.bytesPerGraphNodeOverhead <= 200,
    });
    const latP50 = lat ? percentile(lat.store, 50) : Number.NaN;
    const latP99 = lat ? percentile(lat.store, 99) : Number.NaN;
    const bullLatP50 = lat ? percentile(lat.bullmq, 50) : Number.NaN;
    rows.push({
      key: 'dispatchLatencyUs',
      what: 'enqueue resolved → runTurn called, idle worker, concurrency 1, sequential (µs)',
      value: lat ? `p50 ${Math.round(latP50)} / p99 ${Math.round(latP99)}` : 'n/a (no createIdleDispatchWorker)',
      goal: 'reported',
    });
    rows.push({
      key: 'dispatchLatencyP50VsBullmq',
      what: `that p50 ÷ BullMQ add → processor p50 (${Math.round(bullLatP50)} µs), same run`,
      value: lat ? round(latP50 / bullLatP50, 3) : 'n/a',
      goal: '<= 1.5',
      ok: lat ? latP50 / bullLatP50 <= 1.5 : undefined,
    });
    const chattyRatios = chatty ? chatty.store.map((x, i) => x / chatty.bullmq[i]) : [];
    const ch = chatty ? ratio(chattyRatios) : undefined;
    rows.push({
      key: 'chattyDispatchVsBullmq',
      what: '50 sessions × 5 inputs 2 ms apart, 5 ms turns: inputs/s ÷ BullMQ jobs/s',
      value: ch ?? 'n/a (no createIdleDispatchWorker)',
      goal: '>= 1.5',
      ok: ch ? ch.median >= 1.5 : undefined,
    });
    rows.push({ key: 'latencyUs', what: 'sequential p50 / p99 per operation (µs)', value: 'below', goal: 'reported' });
    progress(`interrupt latency: ${N.interrupts} turns`, true);
    const interruptLatencyUs = await interruptLatency(redis.url, `${runId}-int`, N.interrupts);
    rows.push({
      key: 'interruptLatencyUs',
      what: "enqueue whenBusy 'interrupt' resolved → running turn's signal aborted, p50 (p99 below)",
      value: interruptLatencyUs.p50,
      goal: 'p50 <= 5000',
      ok: interruptLatencyUs.p50 <= 5000,
    });
    notes.push(`interruptLatencyUs: p50 ${interruptLatencyUs.p50} / p99 ${interruptLatencyUs.p99}`);

    const fmt = (v: Row['value']) =>
      typeof v === 'object' ? `${round(v.median)} (${round(v.min)} – ${round(v.max)})` : String(v);
    const header = ['key', 'median (min – max)', 'goal', '', 'what'];
    const body = rows.map((r) => [
      r.key,
      fmt(r.value),
      r.goal,
      r.ok === undefined ? '' : r.ok ? 'met' : 'MISSED',
      r.what,
    ]);
    for (const [op, l] of Object.entries(rt.latencyUs)) {
      body.push([`  ${op}`, `p50 ${l.p50} / p99 ${l.p99}`, '', '', `round trips: ${rt.perOp[op]}`]);
    }
    const widths = header.map((h, i) => Math.max(h.length, ...body.map((r) => r[i].length)));
    const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`;
    const table = [line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...body.map(line)].join('\n');

    const machine = `${cpus().length} CPUs (${cpuModel()}), ${Math.round(totalmem() / 2 ** 30)} GiB RAM`;
    const versions = `node ${process.version}, redis-server ${redisVersion}, ioredis ${pkgVersion('ioredis')}, bullmq ${pkgVersion('bullmq')}`;
    const mean = (xs: number[]) => Math.round(xs.reduce((a, x) => a + x, 0) / Math.max(1, xs.length));
    const extras = [
      `machine: ${machine}`,
      `versions: ${versions}`,
      `redis: ${redis.how}${redis.private ? '' : ' (shared: CPU, memory and commandstats deltas include other clients)'}`,
      `repetitions: ${N.reps} throughput runs; ${N.paired} paired calls per scale ratio in ${N.blocks} blocks; ${N.latency} calls per latency figure${quick ? ' (QUICK MODE: reduced sizes, not the real figures)' : ''}`,
      `mean rates/s: enqueue ${mean(perSecond.enqueue)}, raw EVALSHA ${mean(perSecond.raw)}, cycles ${mean(perSecond.cycle)}, batch-10 inputs ${mean(perSecond.batch10)}, BullMQ jobs ${mean(perSecond.bullmq)}, dispatch inputs ${mean(perSecond.dispatch)}`,
      ...(perScript
        ? [
            `Redis time inside each script of a cycle (commandstats evalsha usec/call, best of 2 runs): ${Object.entries(
              perScript,
            )
              .map(([op, us]) => `${op} ${us}`)
              .join(', ')}`,
          ]
        : []),
      `p50 µs: claimNext ${Math.round(claim.smallP50)} (10 pending) vs ${Math.round(claim.largeP50)} (${N.pending}); commit ${Math.round(commit.smallP50)} (10 nodes) vs ${Math.round(commit.largeP50)} (${N.graph}); active_path ${Math.round(active.smallP50)} (100 nodes) vs ${Math.round(active.largeP50)} (${N.graph})`,
      `graph memory: ${graphMem.bytesPerGraphNodeOverhead} B per node above its JSON with texts of 768–1279 characters (mean JSON ${graphMem.meanJsonBytes} B); ${graphMem.fixed.map((f) => `${f.overhead} B with every text ${f.textLength} characters (JSON ${f.jsonBytes} B)`).join(', ')}; MEMORY USAGE per node: ${graphMem.perKey.map((k) => `${k.name} ${k.bytesPerNode} B`).join(', ')}`,
      ...(lat && chatty
        ? [
            `dispatch: latency p50/p99 µs store ${Math.round(latP50)}/${Math.round(latP99)}, BullMQ ${Math.round(bullLatP50)}/${Math.round(percentile(lat.bullmq, 99))}; chatty inputs/s store ${Math.round(spreadOf(chatty.store).median)}, BullMQ jobs/s ${Math.round(spreadOf(chatty.bullmq).median)}`,
          ]
        : []),
      `memory: ${mem.bytesPerPendingInput} B per pending input at 10k in one session, ${mem.bytesPerPendingInputAt100k} B at ${N.pending}; ${spreadBytes} B with 10k inputs over 1000 sessions (session keys included); BullMQ waiting job with the same data: ${bullBytes} B`,
      ...mem.keysAt10k.map(
        (k) =>
          `  ${k.key.replace(`${runId}-scale:`, '')} ${k.type}/${k.encoding}: ${k.bytes} B (${k.bytesPerInput} B per input)`,
      ),
      ...notes,
      `elapsed: ${Math.round((Date.now() - started) / 1000)} s`,
    ];
    process.stdout.write(`\n${table}\n\n${extras.join('\n')}\n`);

    if (wantJson) {
      if (quick) throw new Error('--json is refused with --quick: quick figures are not the real ones');
      const results = {
        roundTripsPerOp: rt.perOp,
        enqueueVsRawEvalsha: round(e.median, 3),
        cycleVsBullmq: round(c.median, 3),
        cycleBatch10VsBullmq: round(b.median, 3),
        dispatchCycleVsBullmq: dispatchAvailable ? round(spreadOf(dispatchRatios).median, 3) : null,
        redisCpuUsPerCycle: round(cpuCycle.median, 1),
        bullmqRedisCpuUsPerJob: round(cpuJob.median, 1),
        claimP50Ratio100kVs10: round(claim.ratio.median, 3),
        commitP50Ratio100kVs10: round(commit.ratio.median, 3),
        activePathP50Ratio100kVs100: round(active.ratio.median, 3),
        bytesPerPendingInput: mem.bytesPerPendingInput,
        bytesPerGraphNodeOverhead: graphMem.bytesPerGraphNodeOverhead,
        dispatchLatencyUs: lat ? { p50: Math.round(latP50), p99: Math.round(latP99) } : null,
        dispatchLatencyP50VsBullmq: lat ? round(latP50 / bullLatP50, 3) : null,
        chattyDispatchVsBullmq: ch ? round(ch.median, 3) : null,
        latencyUs: rt.latencyUs,
        interruptLatencyUs,
      };
      writeFileSync(join(BENCH_DIR, 'results.json'), `${JSON.stringify(results, null, 2)}\n`);
      process.stdout.write(`wrote ${join(BENCH_DIR, 'results.json')}\n`);
    }
  } finally {
    progressDone();
    if (!redis.private) await deleteKeys(admin, `${runId}*`).catch(() => 0);
    if (!redis.private) await deleteKeys(admin, `{${runId}*`).catch(() => 0);
    await admin.quit().catch(() => admin.disconnect());
    await redis.stop();
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    progressDone();
    console.error(e);
    process.exit(1);
  },
);
