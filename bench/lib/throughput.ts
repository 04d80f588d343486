/**
 * Side-by-side throughput: the store's enqueue vs a raw EVALSHA, full store cycles vs BullMQ jobs,
 * and the real idle-dispatch path vs BullMQ. Everything runs against the same Redis in one process.
 */
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import type { RuntimeCommit, RuntimeStore, SessionExecutionLease, TurnInputClaim } from '../../src/index.js';
import { createRedisRuntimeStore, leaseFence } from '../../src/index.js';
import { pool, redisCpuUs } from './env.js';
import { baseCommit, finishingCommit, INPUT_150, OWNER, TTL } from './fixtures.js';
import { progress } from './progress.js';

export interface Measured {
  /** Units (inputs or jobs) per second. */
  perSecond: number;
  units: number;
  elapsedMs: number;
  /** Redis CPU (user + sys) in microseconds over the measurement. */
  cpuUs: number;
}

/** Runs `work` once, timed, with the Redis CPU it cost; `units` is what the rate counts. */
export async function measure(admin: Redis, units: number, work: () => Promise<void>): Promise<Measured> {
  const cpu0 = await redisCpuUs(admin);
  const t0 = performance.now();
  await work();
  const elapsedMs = performance.now() - t0;
  const cpuUs = (await redisCpuUs(admin)) - cpu0;
  return { perSecond: (units / elapsedMs) * 1000, units, elapsedMs, cpuUs };
}

export function openStore(url: string, prefix: string, idleDispatch: boolean): Promise<RuntimeStore> {
  return createRedisRuntimeStore({ redis: url, keyPrefix: prefix, durability: 'inline', idleDispatch });
}

/** Enqueue with `inFlight` calls in flight over `sessions` sessions (round-robin). */
export async function storeEnqueue(
  admin: Redis,
  store: RuntimeStore,
  tag: string,
  count: number,
  inFlight: number,
): Promise<Measured> {
  return measure(admin, count, () =>
    pool(count, inFlight, async (i) => {
      await store.enqueuePendingTurnInput({
        sessionId: `${tag}-${i % inFlight}`,
        ingress: { scope: 'next_turn' },
        input: INPUT_150,
      });
    }),
  );
}

const RAW_LUA =
  "redis.call('ZADD', KEYS[1], ARGV[1], ARGV[1])\nredis.call('HSET', KEYS[2], ARGV[1], ARGV[2])\nreturn 1";

/** A raw ioredis EVALSHA of a ZADD + HSET script (the least a durable enqueue can do). */
export async function rawEvalsha(
  admin: Redis,
  raw: Redis,
  prefix: string,
  count: number,
  inFlight: number,
  seqBase: number,
): Promise<Measured> {
  const r = raw as Redis & { benchZaddHset?: (...a: unknown[]) => Promise<unknown> };
  if (!r.benchZaddHset) raw.defineCommand('benchZaddHset', { numberOfKeys: 2, lua: RAW_LUA });
  const payload = JSON.stringify(INPUT_150);
  await r.benchZaddHset!(`${prefix}:{warm}:z`, `${prefix}:{warm}:h`, '0', payload);
  return measure(admin, count, () =>
    pool(count, inFlight, async (i) => {
      const tag = `{${i % inFlight}}`;
      await r.benchZaddHset!(`${prefix}:${tag}:z`, `${prefix}:${tag}:h`, String(seqBase + i), payload);
    }),
  );
}

/**
 * Full cycles: `sessions` sessions in parallel, each doing `turns` turns of: enqueue
 * `inputsPerTurn` next-turn inputs → tryClaim the lease → claimNext (all of them) → commit that
 * completes the claim and releases the lease. Counted per input.
 */
export async function storeCycles(
  admin: Redis,
  store: RuntimeStore,
  tag: string,
  sessions: number,
  turns: number,
  inputsPerTurn: number,
): Promise<Measured> {
  return measure(admin, sessions * turns * inputsPerTurn, () =>
    pool(sessions, sessions, async (s) => {
      const sessionId = `${tag}-${s}`;
      const facet = store.session(sessionId);
      for (let t = 0; t < turns; t++) {
        for (let k = 0; k < inputsPerTurn; k++) {
          await store.enqueuePendingTurnInput({ sessionId, ingress: { scope: 'next_turn' }, input: INPUT_150 });
        }
        const got = await store.tryClaimSessionExecutionLease(sessionId, OWNER, TTL);
        if (got.outcome !== 'acquired') throw new Error('bench: cycle lease busy');
        const claim = await store.claimNextTurnInputs({
          sessionId,
          fence: leaseFence(got.lease),
          owner: OWNER,
          leaseTtlMs: TTL,
          maxInputs: inputsPerTurn,
        });
        if (!claim || claim.inputs.length !== inputsPerTurn) throw new Error('bench: cycle claim came back short');
        await facet.commitRuntimeState(finishingCommit(got.lease, [claim]));
      }
    }),
  );
}

/**
 * The BullMQ baseline, kept honest: a fresh queue on the same Redis, `removeOnComplete`, a trivial
 * processor, a Worker at concurrency 50, jobs added one `add` at a time with 50 in flight while
 * the worker runs. Timed from the first add to the last completion.
 */
export async function bullmqJobs(admin: Redis, url: string, queueName: string, jobs: number): Promise<Measured> {
  const queueConn = new Redis(url, { maxRetriesPerRequest: null });
  const workerConn = new Redis(url, { maxRetriesPerRequest: null });
  const queue = new Queue(queueName, { connection: queueConn as never });
  let done = 0;
  let resolveDone: () => void = () => {};
  const allDone = new Promise<void>((r) => {
    resolveDone = r;
  });
  const worker = new Worker(queueName, async () => undefined, { connection: workerConn as never, concurrency: 50 });
  worker.on('completed', () => {
    if (++done === jobs) resolveDone();
  });
  let failure: unknown;
  worker.on('failed', (_job, err) => {
    failure ??= err;
    if (++done === jobs) resolveDone();
  });
  await worker.waitUntilReady();
  await queue.waitUntilReady();
  try {
    return await measure(admin, jobs, async () => {
      await pool(jobs, 50, async (i) => {
        await queue.add('job', { i, input: INPUT_150 }, { removeOnComplete: true, removeOnFail: true });
      });
      await allDone;
      if (failure) throw failure;
    });
  } finally {
    await worker.close();
    await queue.obliterate({ force: true });
    await queue.close();
    await queueConn.quit().catch(() => queueConn.disconnect());
    await workerConn.quit().catch(() => workerConn.disconnect());
  }
}

/**
 * The real path: a store with idleDispatch on and createIdleDispatchWorker at concurrency 50.
 * `sessions` sessions each get one input (so one input per turn); timed from the first enqueue
 * to the last committed turn.
 */
export async function dispatchPath(
  admin: Redis,
  url: string,
  prefix: string,
  sessions: number,
): Promise<Measured | undefined> {
  let mod: typeof import('../../src/dispatch/index.js');
  try {
    mod = await import('../../src/dispatch/index.js');
  } catch {
    return undefined;
  }
  if (typeof mod.createIdleDispatchWorker !== 'function') return undefined;
  const store = await openStore(url, prefix, true);
  const conn = new Redis(url, { maxRetriesPerRequest: null });
  let done = 0;
  let failure: unknown;
  let resolveDone: () => void = () => {};
  const allDone = new Promise<void>((r) => {
    resolveDone = r;
  });
  const worker = mod.createIdleDispatchWorker({
    store,
    connection: conn,
    owner: OWNER,
    leaseTtlMs: TTL,
    concurrency: 50,
    sweepIntervalMs: 86_400_000,
    vacuumIntervalMs: 2_000_000_000,
    runTurn: async ({ sessionId }): Promise<RuntimeCommit> => baseCommit(sessionId),
    onEvent: (e) => {
      if (e.type === 'committed') {
        done += e.inputIds.length;
        if (done >= sessions) resolveDone();
      } else if (e.type === 'failed' || e.type === 'error') {
        failure ??= (e as { error: unknown }).error;
      }
    },
  });
  await worker.waitUntilReady();
  try {
    return await measure(admin, sessions, async () => {
      await pool(sessions, 50, async (i) => {
        await store.enqueuePendingTurnInput({
          sessionId: `${prefix}-s${i}`,
          ingress: { scope: 'next_turn' },
          input: INPUT_150,
        });
      });
      const timer = setInterval(() => progress(`dispatch path: ${done}/${sessions} turns committed`), 500);
      try {
        await Promise.race([
          allDone,
          new Promise((_r, reject) =>
            setTimeout(
              () => reject(new Error(`bench: dispatch path stalled at ${done}/${sessions}: ${failure}`)),
              120_000,
            ),
          ),
        ]);
      } finally {
        clearInterval(timer);
      }
    });
  } finally {
    await worker.close();
    await store.close();
    await conn.quit().catch(() => conn.disconnect());
  }
}

/**
 * Where a cycle's Redis time goes: each of the four scripts of a cycle run alone over `sessions`
 * fresh sessions (50 in flight), with INFO commandstats evalsha usec per call (script execution
 * time inside Redis, without network I/O). Needs a private server (CONFIG RESETSTAT).
 */
export async function scriptTimes(
  admin: Redis,
  store: RuntimeStore,
  tag: string,
  sessions: number,
): Promise<Record<string, number>> {
  const { leaseFence: fenceOf } = await import('../../src/index.js');
  const leases: SessionExecutionLease[] = [];
  const claims: TurnInputClaim[] = [];
  const out: Record<string, number> = {};
  const phase = async (name: string, task: (i: number) => Promise<void>) => {
    await admin.config('RESETSTAT');
    await pool(sessions, 50, task);
    const m = /cmdstat_evalsha:calls=(\d+),usec=(\d+)/.exec(await admin.info('commandstats'));
    out[name] = m ? Math.round((Number(m[2]) / Number(m[1])) * 10) / 10 : Number.NaN;
  };
  const sid = (i: number) => `${tag}-${i}`;
  await phase('enqueue', async (i) => {
    await store.enqueuePendingTurnInput({ sessionId: sid(i), ingress: { scope: 'next_turn' }, input: INPUT_150 });
  });
  await phase('tryClaim', async (i) => {
    const got = await store.tryClaimSessionExecutionLease(sid(i), OWNER, TTL);
    if (got.outcome !== 'acquired') throw new Error('bench: lease busy');
    leases[i] = got.lease;
  });
  await phase('claimNext', async (i) => {
    const claim = await store.claimNextTurnInputs({
      sessionId: sid(i),
      fence: fenceOf(leases[i]),
      owner: OWNER,
      leaseTtlMs: TTL,
      maxInputs: 1,
    });
    if (!claim) throw new Error('bench: nothing claimed');
    claims[i] = claim;
  });
  await phase('commit', async (i) => {
    await store.session(sid(i)).commitRuntimeState(finishingCommit(leases[i], [claims[i]]));
  });
  return out;
}
