/**
 * Exactly-once across processes (issue 7): WORKERS child processes, each with its own connections,
 * run createIdleDispatchWorker over INPUTS next-turn inputs spread over 50 sessions, enqueued while
 * they run. Afterwards every input appears exactly once in its own session's graph (counted from
 * the `user` nodes the toy turn appended), none is lost, none is there twice, and every row is
 * `completed`.
 *
 * With RTS_EO_KILL=1 (npm run test:soak), one worker is SIGKILLed half-way (mid-turn, holding
 * leases and claims) and a replacement starts. That run takes about a minute longer whatever the
 * input count: the dead worker's BullMQ jobs stay `active` until BullMQ's stalled-job check
 * (lockDuration and stalledInterval, 30 s each by default), and keepLastIfActive holds the
 * sessions' follow-up wake-ups until then (see test/RELIABILITY.md).
 *
 *   npm test                                  10 000 inputs, 4 processes (RTS_EO_INPUTS, RTS_EO_WORKERS)
 *   npm run test:soak -- --inputs 10000       the same with a worker SIGKILLed half-way
 *   npm run test:soak -- --poison-rate 0.02   and 2% poison inputs (runTurn throws on them): each
 *                                             ends `failed` with maxAttempts attempts
 *                                             (RTS_EO_POISON_RATE, RTS_EO_MAX_ATTEMPTS), every
 *                                             other input is still processed exactly once
 */
import { afterAll, beforeAll, expect, test } from 'vitest';
import { createRedisRuntimeStore, type RuntimeStore } from '../../src/index.js';
import { redisUrl, testPrefix } from '../support/prefix.js';
import { buildLibrary } from './build.js';
import { consumedFromGraphs, sleep, spawnWorker, type WorkerProcess } from './processes.js';

const INPUTS = Number(process.env.RTS_EO_INPUTS ?? 10_000);
const WORKERS = Number(process.env.RTS_EO_WORKERS ?? 4);
const SESSIONS = 50;
const KILL_ONE = process.env.RTS_EO_KILL === '1';
const POISON_RATE = Number(process.env.RTS_EO_POISON_RATE ?? 0);
const MAX_ATTEMPTS = Number(process.env.RTS_EO_MAX_ATTEMPTS ?? 3);
/** Input k is poison for a deterministic POISON_RATE share of k. */
const isPoison = (k: number): boolean => POISON_RATE > 0 && ((k * 2654435761) % 1_000_003) / 1_000_003 < POISON_RATE;

let build: string;
const spawned: WorkerProcess[] = [];

beforeAll(() => {
  build = buildLibrary();
}, 120_000);

afterAll(async () => {
  await Promise.all(spawned.map((w) => w.kill()));
});

async function pool<T>(items: T[], width: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < items.length) await fn(items[next++]);
    }),
  );
}

test(`exactly once: ${WORKERS} worker processes, ${INPUTS} inputs in ${SESSIONS} sessions${KILL_ONE ? ', one worker SIGKILLed half-way' : ''}${POISON_RATE > 0 ? `, poison rate ${POISON_RATE}` : ''}`, {
  timeout: (KILL_ONE ? 150_000 : 60_000) + INPUTS * 20,
}, async (ctx) => {
  const prefix = testPrefix(ctx);
  const url = redisUrl();
  const store: RuntimeStore = await createRedisRuntimeStore({ redis: url, keyPrefix: prefix, durability: 'inline' });
  ctx.onTestFinished(() => store.close());
  const sessions = Array.from({ length: SESSIONS }, (_, i) => (i % 5 === 0 ? `eo}:{${i}` : `eo-${i}`));

  const reported = new Map<string, number>();
  const turnsBy = new Map<string, number>();
  const failures: string[] = [];
  const poisonRuns = new Map<string, number>();
  const poisonBatches: number[] = [];
  const failedReported = new Map<string, number>();
  const onMessage = (m: { type: string; [k: string]: unknown }) => {
    if (m.type === 'poison-run') {
      for (const id of m.inputIds as string[]) poisonRuns.set(id, (poisonRuns.get(id) ?? 0) + 1);
      poisonBatches.push(Number(m.batch));
    } else if (m.type === 'input-failed') {
      failedReported.set(String(m.inputId), (failedReported.get(String(m.inputId)) ?? 0) + 1);
    } else if (m.type === 'committed') {
      for (const id of m.inputIds as string[]) reported.set(id, (reported.get(id) ?? 0) + 1);
      turnsBy.set(String(m.worker), (turnsBy.get(String(m.worker)) ?? 0) + 1);
    } else if (m.type === 'failed') failures.push(String(m.error));
  };
  const start = (name: string) => {
    const w = spawnWorker({
      build,
      redisUrl: url,
      prefix,
      name,
      concurrency: 3,
      leaseTtlMs: 2000,
      sweepMs: 500,
      maxAttempts: MAX_ATTEMPTS,
      onMessage,
    });
    spawned.push(w);
    return w;
  };
  const workers = Array.from({ length: WORKERS }, (_, i) => start(`w${i + 1}`));
  await Promise.all(workers.map((w) => w.waitFor((m) => m.type === 'ready')));

  const t0 = Date.now();
  // Inputs in a shuffled session order, enqueued 16 at a time while the workers consume them.
  const plan = Array.from({ length: INPUTS }, (_, k) => ({ k, sessionId: sessions[(k * 7919) % SESSIONS] }));
  const expected = new Map<string, string>();
  const poisoned = new Map<string, string>();
  let killed: WorkerProcess | undefined;
  await pool(plan, 16, async ({ k, sessionId }) => {
    const row = await store.enqueuePendingTurnInput({
      sessionId,
      sourceKey: `src-${k}`,
      ingress: { scope: 'next_turn' },
      input: isPoison(k) ? { k, poison: true } : { k },
    });
    if (isPoison(k)) poisoned.set(row.inputId, sessionId);
    else expected.set(row.inputId, sessionId);
    if (KILL_ONE && !killed && expected.size + poisoned.size >= INPUTS / 2) {
      killed = workers[0];
      void killed.kill('SIGKILL').then(() => {
        const replacement = start(`w${WORKERS + 1}`);
        workers.push(replacement);
      });
    }
  });
  const enqueueMs = Date.now() - t0;

  // Done when every input is in a graph (the IPC reports can miss the SIGKILLed worker's last commit).
  const deadline = Date.now() + (KILL_ONE ? 120_000 : 45_000) + INPUTS * 10;
  const failedRows = async () => {
    const rows = new Map<string, { sessionId: string; attempts?: number; state: string }>();
    for (const s of sessions) for (const f of await store.listFailedTurnInputs(s)) rows.set(f.inputId, f);
    return rows;
  };
  for (;;) {
    if (reported.size >= expected.size * 0.98) {
      const { count } = await consumedFromGraphs(store, sessions);
      if ([...expected.keys()].every((id) => count.has(id)) && (await failedRows()).size >= poisoned.size) break;
    }
    if (Date.now() > deadline) break;
    await sleep(reported.size >= expected.size * 0.98 ? 250 : 100);
  }
  const processMs = Date.now() - t0;
  await sleep(500); // anything still running would show up as a duplicate
  await Promise.all(workers.map((w) => w.close()));

  const failedNow = await failedRows();
  const { count, sessionOf, nodes } = await consumedFromGraphs(store, sessions);
  const lost = [...expected.keys()].filter((id) => !count.has(id));
  const twice = [...count.entries()].filter(([, n]) => n > 1);
  const strangers = [...count.keys()].filter((id) => !expected.has(id));
  const poisonNotFailed = [...poisoned.entries()].filter(
    ([id, s]) => failedNow.get(id)?.sessionId !== s || failedNow.get(id)?.attempts !== MAX_ATTEMPTS,
  );
  const failedButNotPoison = [...failedNow.keys()].filter((id) => !poisoned.has(id));
  const runsPerPoison = [...poisoned.keys()].map((id) => poisonRuns.get(id) ?? 0);
  const misplaced = [...sessionOf.entries()].filter(([id, s]) => expected.get(id) !== s);
  const notCompleted: string[] = [];
  for (const s of sessions) {
    const ids = [...expected.entries()].filter(([, sid]) => sid === s).map(([id]) => id);
    for (let i = 0; i < ids.length; i += 1000) {
      const results = await store.cancelPendingTurnInputs(
        s,
        ids.slice(i, i + 1000).map((value) => ({ kind: 'input_id' as const, value })),
      );
      for (const r of results)
        if (r.outcome.outcome !== 'already_completed')
          notCompleted.push(`${s}/${r.target.value}: ${r.outcome.outcome}`);
    }
    expect(await store.listPendingTurnInputs(s)).toEqual([]);
  }
  const turns = [...turnsBy.values()].reduce((a, b) => a + b, 0);
  if (POISON_RATE > 0) {
    const hist = new Map<number, number>();
    for (const n of runsPerPoison) hist.set(n, (hist.get(n) ?? 0) + 1);
    const soloRuns = poisonBatches.filter((b) => b === 1).length;
    console.log(
      `[exactly-once] poison: ${poisoned.size} poison inputs (rate ${POISON_RATE}), maxAttempts ${MAX_ATTEMPTS}: ` +
        `${failedNow.size} rows failed, ${poisonNotFailed.length} poison inputs not failed with ${MAX_ATTEMPTS} attempts, ` +
        `${failedButNotPoison.length} other inputs failed; runs per poison input ${[...hist.entries()]
          .sort(([a], [b]) => a - b)
          .map(([n, c]) => `${n}x: ${c}`)
          .join(', ')}; ${poisonBatches.length} failed runs (${soloRuns} of a single input); ` +
        `input_failed events ${[...failedReported.values()].reduce((a, b) => a + b, 0)}`,
    );
  }
  console.log(
    `[exactly-once] ${INPUTS} inputs, ${SESSIONS} sessions, ${WORKERS} worker processes` +
      `${killed ? ` (+1 replacement after SIGKILL of ${killed.name})` : ''}: enqueued in ${enqueueMs} ms, ` +
      `all reported committed after ${processMs} ms; ${turns} turns (${[...turnsBy.entries()].map(([w, n]) => `${w} ${n}`).join(', ')}); ` +
      `${nodes} graph nodes; lost ${lost.length}, twice ${twice.length}, strangers ${strangers.length}, ` +
      `misplaced ${misplaced.length}, not completed ${notCompleted.length}; turn failures retried: ${failures.length}`,
  );
  expect(expected.size + poisoned.size).toBe(INPUTS);
  expect(poisonNotFailed).toEqual([]);
  expect(failedButNotPoison).toEqual([]);
  // A poison input runs maxAttempts times, plus at most one run cut short by the SIGKILL.
  for (const n of runsPerPoison) expect(n).toBeGreaterThanOrEqual(MAX_ATTEMPTS);
  if (!killed) for (const n of runsPerPoison) expect(n).toBe(MAX_ATTEMPTS);
  expect(lost).toEqual([]);
  expect(twice).toEqual([]);
  expect(strangers).toEqual([]);
  expect(misplaced).toEqual([]);
  expect(notCompleted).toEqual([]);
  // What the workers reported committing agrees with the graphs.
  expect([...reported.entries()].filter(([, n]) => n !== 1)).toEqual([]);
  if (!killed) expect(reported.size).toBe(expected.size);
  // Every worker took part (the SIGKILLed one included, before it died).
  for (const w of workers)
    if (w !== killed) expect(turnsBy.get(w.name) ?? 0, `${w.name} committed no turn`).toBeGreaterThan(0);
});
