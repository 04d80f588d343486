/**
 * Dispatch figures of issue 21, each against BullMQ in the same run:
 *   - latency: enqueue resolved → runTurn called (idle createIdleDispatchWorker, concurrency 1,
 *     one input at a time, a fresh idle session each) against BullMQ `add` resolved → processor
 *     called (Worker concurrency 1), samples interleaved one by one;
 *   - chatty: 50 sessions each getting 5 inputs 2 ms apart while its turns (5 ms of work) run,
 *     inputs/s through the real path (concurrency 50) against BullMQ jobs/s with the same arrivals
 *     and a 5 ms processor (concurrency 50).
 */
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import type { RuntimeCommit, RuntimeStore } from '../../src/index.js';
import { baseCommit, INPUT_150, OWNER, TTL } from './fixtures.js';
import { progress } from './progress.js';
import { openStore } from './throughput.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const nowUs = () => performance.now() * 1000;

/** A promise with its resolve, for "the next time X happens". */
function signal<T = void>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([
    p,
    new Promise<T>((_r, reject) => setTimeout(() => reject(new Error(`bench: ${what} timed out`)), ms)),
  ]);
}

type DispatchModule = typeof import('../../src/dispatch/index.js');

interface StoreDispatch {
  store: RuntimeStore;
  close(): Promise<void>;
}

async function startDispatch(
  mod: DispatchModule,
  url: string,
  prefix: string,
  concurrency: number,
  runTurn: (sessionId: string) => Promise<void>,
  onCommitted: (sessionId: string, inputs: number) => void,
): Promise<StoreDispatch> {
  const store = await openStore(url, prefix, true);
  const conn = new Redis(url, { maxRetriesPerRequest: null });
  let failure: unknown;
  const worker = mod.createIdleDispatchWorker({
    store,
    connection: conn,
    owner: OWNER,
    leaseTtlMs: TTL,
    concurrency,
    sweepIntervalMs: 86_400_000,
    vacuumIntervalMs: 2_000_000_000,
    runTurn: async ({ sessionId }): Promise<RuntimeCommit> => {
      await runTurn(sessionId);
      return baseCommit(sessionId);
    },
    onEvent: (e) => {
      if (e.type === 'committed') onCommitted(e.sessionId, e.inputIds.length);
      else if (e.type === 'failed' || e.type === 'error') failure ??= (e as { error: unknown }).error;
    },
  });
  await worker.waitUntilReady();
  return {
    store,
    close: async () => {
      await worker.close();
      await store.close();
      await conn.quit().catch(() => conn.disconnect());
      if (failure) throw failure;
    },
  };
}

async function startBull(
  url: string,
  name: string,
  concurrency: number,
  processor: (data: { i: number }) => Promise<void>,
  onCompleted: () => void,
): Promise<{ queue: Queue; close(): Promise<void> }> {
  const queueConn = new Redis(url, { maxRetriesPerRequest: null });
  const workerConn = new Redis(url, { maxRetriesPerRequest: null });
  const queue = new Queue(name, { connection: queueConn as never });
  const worker = new Worker(name, async (job) => processor(job.data), { connection: workerConn as never, concurrency });
  let failure: unknown;
  worker.on('completed', onCompleted);
  worker.on('failed', (_job, err) => {
    failure ??= err;
  });
  await worker.waitUntilReady();
  await queue.waitUntilReady();
  return {
    queue,
    close: async () => {
      await worker.close();
      await queue.obliterate({ force: true });
      await queue.close();
      await queueConn.quit().catch(() => queueConn.disconnect());
      await workerConn.quit().catch(() => workerConn.disconnect());
      if (failure) throw failure;
    },
  };
}

async function dispatchModule(): Promise<DispatchModule | undefined> {
  try {
    const mod = await import('../../src/dispatch/index.js');
    return typeof mod.createIdleDispatchWorker === 'function' ? mod : undefined;
  } catch {
    return undefined;
  }
}

export interface LatencySamples {
  /** µs from enqueue resolved to runTurn called. */
  store: number[];
  /** µs from BullMQ add resolved to the processor called. */
  bullmq: number[];
}

/** `samples` sequential samples of each, interleaved (the order alternates every sample). */
export async function dispatchLatency(
  url: string,
  prefix: string,
  samples: number,
): Promise<LatencySamples | undefined> {
  const mod = await dispatchModule();
  if (!mod) return undefined;
  let turnStarted = signal<number>();
  let committed = signal();
  const d = await startDispatch(
    mod,
    url,
    prefix,
    1,
    async () => turnStarted.resolve(nowUs()),
    () => committed.resolve(),
  );
  let jobStarted = signal<number>();
  let completed = signal();
  const b = await startBull(
    url,
    `${prefix}-bull`,
    1,
    async () => jobStarted.resolve(nowUs()),
    () => completed.resolve(),
  );
  const out: LatencySamples = { store: [], bullmq: [] };
  const warm = 20;
  try {
    const storeSample = async (i: number) => {
      turnStarted = signal<number>();
      committed = signal();
      await d.store.enqueuePendingTurnInput({
        sessionId: `${prefix}-l${i}`,
        ingress: { scope: 'next_turn' },
        input: INPUT_150,
      });
      const resolved = nowUs();
      const started = await withTimeout(turnStarted.promise, 10_000, 'dispatch latency turn');
      await withTimeout(committed.promise, 10_000, 'dispatch latency commit');
      if (i >= warm) out.store.push(started - resolved);
    };
    const bullSample = async (i: number) => {
      jobStarted = signal<number>();
      completed = signal();
      await b.queue.add('job', { i, input: INPUT_150 }, { removeOnComplete: true, removeOnFail: true });
      const resolved = nowUs();
      const started = await withTimeout(jobStarted.promise, 10_000, 'BullMQ latency job');
      await withTimeout(completed.promise, 10_000, 'BullMQ latency completion');
      if (i >= warm) out.bullmq.push(started - resolved);
    };
    for (let i = 0; i < samples + warm; i++) {
      if (i % 2 === 0) {
        await storeSample(i);
        await bullSample(i);
      } else {
        await bullSample(i);
        await storeSample(i);
      }
      if (i % 50 === 0) progress(`dispatch latency: ${i}/${samples + warm}`);
    }
  } finally {
    await d.close();
    await b.close();
  }
  return out;
}

export interface ChattyResult {
  /** Inputs per second through the real path, per round. */
  store: number[];
  /** Jobs per second through BullMQ, per round (measured next to the store's round). */
  bullmq: number[];
}

const CHATTY = { sessions: 50, inputs: 5, gapMs: 2, workMs: 5 };

/** One chatty round of each, `rounds` times (the order alternating): the rates of each round. */
export async function chattyDispatch(url: string, prefix: string, rounds: number): Promise<ChattyResult | undefined> {
  const mod = await dispatchModule();
  if (!mod) return undefined;
  const perRound = CHATTY.sessions * CHATTY.inputs;
  let committedInputs = 0;
  let storeDone = signal();
  const d = await startDispatch(
    mod,
    url,
    prefix,
    CHATTY.sessions,
    () => sleep(CHATTY.workMs),
    (_s, n) => {
      committedInputs += n;
      if (committedInputs >= perRound) storeDone.resolve();
    },
  );
  let completedJobs = 0;
  let bullDone = signal();
  const b = await startBull(
    url,
    `${prefix}-bull`,
    CHATTY.sessions,
    () => sleep(CHATTY.workMs),
    () => {
      if (++completedJobs >= perRound) bullDone.resolve();
    },
  );
  let storeMs = 0;
  let bullMs = 0;
  const out: ChattyResult = { store: [], bullmq: [] };
  const arrivals = async (send: (s: number, k: number) => Promise<void>) => {
    await Promise.all(
      Array.from({ length: CHATTY.sessions }, async (_x, s) => {
        for (let k = 0; k < CHATTY.inputs; k++) {
          if (k > 0) await sleep(CHATTY.gapMs);
          await send(s, k);
        }
      }),
    );
  };
  try {
    const storeRound = async (r: number) => {
      committedInputs = 0;
      storeDone = signal();
      const t0 = performance.now();
      await arrivals((s) =>
        d.store
          .enqueuePendingTurnInput({
            sessionId: `${prefix}-r${r}-s${s}`,
            ingress: { scope: 'next_turn' },
            input: INPUT_150,
          })
          .then(() => undefined),
      );
      await withTimeout(storeDone.promise, 60_000, `chatty dispatch round ${r} (${committedInputs}/${perRound})`);
      storeMs = performance.now() - t0;
    };
    const bullRound = async (r: number) => {
      completedJobs = 0;
      bullDone = signal();
      const t0 = performance.now();
      await arrivals((s, k) =>
        b.queue
          .add('job', { i: s * CHATTY.inputs + k, input: INPUT_150 }, { removeOnComplete: true, removeOnFail: true })
          .then(() => undefined),
      );
      await withTimeout(bullDone.promise, 60_000, `chatty BullMQ round ${r}`);
      bullMs = performance.now() - t0;
    };
    // One untimed warm-up round of each.
    await storeRound(-1);
    await bullRound(-1);
    for (let r = 0; r < rounds; r++) {
      if (r % 2 === 0) {
        await storeRound(r);
        await bullRound(r);
      } else {
        await bullRound(r);
        await storeRound(r);
      }
      out.store.push((perRound / storeMs) * 1000);
      out.bullmq.push((perRound / bullMs) * 1000);
      progress(`chatty dispatch: round ${r + 1}/${rounds}`);
    }
  } finally {
    await d.close();
    await b.close();
  }
  return out;
}
