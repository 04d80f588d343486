/**
 * createIdleDispatchWorker (SPEC 11): turns idle-dispatch wake-ups into worker runs.
 *
 * One wake-up (job `wake`, data `{ sessionId }`) is processed as a small state machine:
 *
 *   acquire ── busy ──────────────────────────────────────────────▶ done (the holder signals)
 *      │ acquired
 *   claim next ── null ── release ────────────────────────────────▶ done
 *      │ claim
 *   runTurn({ sessionId, fence, claim, signal })   renew every leaseTtlMs/3 meanwhile;
 *      │ RuntimeCommit                             a failed renewal aborts `signal`
 *   commit (fence, release = completion, + claim completions) ────▶ done
 *
 *   any error on the way: abandon the claims, release the lease, rethrow (BullMQ retries with
 *   backoff; the sweeper re-signals if the retries run out).
 *
 * BullMQ may re-run a stalled job; the lease and the fenced commit make a second run `busy` or a
 * no-op. The helper also runs the dispatch sweeper every sweepIntervalMs (and once at start) and
 * `store.vacuum()` every vacuumIntervalMs.
 */
import { type Job, UnrecoverableError, Worker } from 'bullmq';
import { z } from 'zod';
import { isStoreError, StoreError } from '../contract/errors.js';
import { leaseTtlSchema, maxInputsSchema, ownerSchema, parseArgs, unknownKeyIssues } from '../contract/schemas.js';
import type {
  CheckpointKind,
  JsonValue,
  LeaseOwnerIdentity,
  RuntimeCommit,
  RuntimeCommitResult,
  RuntimeStore,
  SessionExecutionLease,
  SessionExecutionLeaseFence,
  TurnInputClaim,
  TurnInputCompletion,
} from '../contract/types.js';
import { claimCompletion, leaseCompletion, leaseFence } from '../core/projections.js';
import { type DispatchConnection, WAKE_JOB, WakeQueue } from '../redis/wake-queue.js';
import { dispatchQueueOf, type RedisBackedStore, requireRedisStore } from './redis-store-access.js';
import { type SweepReport, sweepDispatchIndex } from './sweeper.js';

/** What runTurn receives for one turn. `TInput`: the store's payload type. */
export interface RunTurnContext<TInput = JsonValue> {
  sessionId: string;
  /** The fence of the lease this run holds; pass it to claims. */
  fence: SessionExecutionLeaseFence;
  /** The next-turn input this turn consumes (claimed with the worker's maxInputs). */
  claim: TurnInputClaim<TInput>;
  /** Aborted when a lease renewal fails or the worker closes: stop, the run will not commit. */
  signal: AbortSignal;
  /** The lease as acquired. */
  lease: SessionExecutionLease;
  /**
   * claimActiveTurnInputs under this run's fence, owner and leaseTtlMs. Claims taken here are
   * tracked: completed by the commit (added to completedTurnInputClaims when missing) and
   * abandoned if the run fails. Returns null when the checkpoint admits nothing.
   */
  claimActiveTurnInputs(
    turnId: string,
    checkpoint: CheckpointKind,
    maxInputs?: number,
  ): Promise<TurnInputClaim<TInput> | null>;
}

/** Produces the turn's commit. The helper sets the fence, the release and the claim completions. */
export type RunTurn<TInput = JsonValue> = (context: RunTurnContext<TInput>) => Promise<RuntimeCommit>;

export type IdleDispatchEvent =
  | { type: 'busy'; sessionId: string; holder: SessionExecutionLease }
  | { type: 'idle'; sessionId: string; generation: number }
  | { type: 'claimed'; sessionId: string; generation: number; claimId: string; inputIds: string[] }
  | {
      type: 'active_claimed';
      sessionId: string;
      generation: number;
      claimId: string;
      inputIds: string[];
      turnId: string;
    }
  | {
      type: 'committed';
      sessionId: string;
      generation: number;
      claimId: string;
      inputIds: string[];
      result: RuntimeCommitResult;
      durationMs: number;
    }
  | { type: 'renewal_failed'; sessionId: string; generation: number; error: unknown }
  | { type: 'failed'; sessionId: string; generation?: number; error: unknown }
  | { type: 'swept'; report: SweepReport }
  | { type: 'vacuumed'; removedPendingTurnInputTombstones: number }
  | { type: 'error'; during: 'sweep' | 'vacuum' | 'queue'; error: unknown };

export interface IdleDispatchWorkerOptions<TInput = JsonValue> {
  /** A store made by createRedisRuntimeStore. */
  store: RuntimeStore<TInput>;
  /**
   * BullMQ's connection: an ioredis instance with `maxRetriesPerRequest: null` and no keyPrefix
   * (shared, not closed by the helper), or ioredis options (the helper's BullMQ objects open and
   * close their own connections).
   */
  connection: DispatchConnection;
  /**
   * The lease owner of every run of this worker. Give each worker instance its own incarnationId:
   * two instances with the same identity would re-enter each other's leases.
   */
  owner: LeaseOwnerIdentity;
  /** Lease TTL (and claim stall deadline); renewed every leaseTtlMs / 3 while a turn runs. */
  leaseTtlMs: number;
  runTurn: RunTurn<TInput>;
  /** Most next-turn inputs one turn claims; default 64. */
  maxInputs?: number;
  /** Wake-ups processed at once (different sessions); default 1. */
  concurrency?: number;
  /** Dispatch sweeper period; default 5000. */
  sweepIntervalMs?: number;
  /** store.vacuum() period; default one hour. */
  vacuumIntervalMs?: number;
  /** Progress and diagnostics; exceptions thrown by the listener are ignored. */
  onEvent?: (event: IdleDispatchEvent) => void;
}

export interface IdleDispatchWorker {
  /** The underlying BullMQ worker. */
  readonly worker: Worker;
  /** `<keyPrefix>-idle-dispatch`. */
  readonly queueName: string;
  /** `{<keyPrefix>}`. */
  readonly queuePrefix: string;
  /** Resolves once BullMQ is connected and the first sweep has run. */
  waitUntilReady(): Promise<void>;
  /** Runs one sweep now (wake-ups go through the helper's queue handle). */
  sweep(): Promise<SweepReport>;
  /**
   * Stops taking jobs, aborts runs in flight (their claims are abandoned and their leases
   * released at once, so another worker can take the sessions), waits for them to settle, stops
   * the sweeper and vacuum timers and closes the helper's BullMQ handles. Idempotent.
   */
  close(): Promise<void>;
}

export type WakeOutcome =
  | { outcome: 'busy' }
  | { outcome: 'idle'; generation: number }
  | { outcome: 'committed'; generation: number; headRevision: number; inputIds: string[] };

const positiveInt = (max: number) =>
  z
    .number({ error: `must be an integer in 1..${max}` })
    .refine((n) => Number.isInteger(n) && n >= 1 && n <= max, `must be an integer in 1..${max}`);

const optionsShape = {
  owner: ownerSchema,
  leaseTtlMs: leaseTtlSchema.refine((n) => n >= 3, 'must be at least 3 (renewals run every leaseTtlMs / 3)'),
  maxInputs: maxInputsSchema.refine((n) => n >= 1, 'must be at least 1'),
  concurrency: positiveInt(1000),
  sweepIntervalMs: positiveInt(86_400_000),
  vacuumIntervalMs: positiveInt(2_147_483_647),
  runTurn: z.custom<RunTurn>((v) => typeof v === 'function', 'must be a function'),
};

function connectionIssues(connection: unknown): string[] {
  if (typeof connection !== 'object' || connection === null) {
    return ['connection: must be an ioredis instance or ioredis connection options'];
  }
  const c = connection as { options?: Record<string, unknown>; keyPrefix?: unknown; isCluster?: boolean };
  const isInstance = typeof (connection as { duplicate?: unknown }).duplicate === 'function';
  const opts: Record<string, unknown> | undefined = isInstance
    ? c.isCluster
      ? (c.options?.redisOptions as Record<string, unknown>)
      : c.options
    : (connection as Record<string, unknown>);
  const issues: string[] = [];
  if (opts?.keyPrefix) {
    issues.push("connection: must not set ioredis's keyPrefix (the queue is prefixed with `{<keyPrefix>}` by BullMQ)");
  }
  if (isInstance && opts && opts.maxRetriesPerRequest !== null) {
    issues.push('connection: an ioredis instance given to BullMQ must have maxRetriesPerRequest: null');
  }
  return issues;
}

interface InFlightRun {
  sessionId: string;
  abort: AbortController;
  claims: Map<string, TurnInputClaim>;
  completion: SessionExecutionLeaseFence;
}

/** The keys of IdleDispatchWorkerOptions: any other key is InvalidInput (a misspelt option). */
const OPTION_KEYS = [
  'store',
  'connection',
  'owner',
  'leaseTtlMs',
  'runTurn',
  'maxInputs',
  'concurrency',
  'sweepIntervalMs',
  'vacuumIntervalMs',
  'onEvent',
] as const;

export function createIdleDispatchWorker<TInput = JsonValue>(
  typedOptions: IdleDispatchWorkerOptions<TInput>,
): IdleDispatchWorker {
  // The payload type is the caller's view only: the helper passes payloads through untouched.
  const options = typedOptions as unknown as IdleDispatchWorkerOptions;
  const unknownKeys = unknownKeyIssues(options, OPTION_KEYS, 'options');
  if (unknownKeys.length > 0) throw new StoreError('InvalidInput', { issues: unknownKeys });
  const store: RedisBackedStore = requireRedisStore(options?.store);
  const parsed = parseArgs(optionsShape, {
    owner: options.owner,
    leaseTtlMs: options.leaseTtlMs,
    maxInputs: options.maxInputs ?? 64,
    concurrency: options.concurrency ?? 1,
    sweepIntervalMs: options.sweepIntervalMs ?? 5000,
    vacuumIntervalMs: options.vacuumIntervalMs ?? 3_600_000,
    runTurn: options.runTurn,
  });
  const issues = connectionIssues(options.connection);
  if (issues.length > 0) throw new StoreError('InvalidInput', { issues });

  const owner = options.owner;
  const { leaseTtlMs, maxInputs, concurrency, sweepIntervalMs, vacuumIntervalMs } = parsed;
  const runTurn = options.runTurn;
  const { name: queueName, prefix: queuePrefix } = dispatchQueueOf(store);
  const runs = new Map<string, InFlightRun>();
  let closing = false;

  const emit = (event: IdleDispatchEvent): void => {
    try {
      options.onEvent?.(event);
    } catch {
      // A listener's failure never disturbs dispatch.
    }
  };

  const wakeQueue = new WakeQueue(queueName, queuePrefix, options.connection);

  async function releaseAndAbandon(run: InFlightRun): Promise<void> {
    const claims = [...run.claims.values()];
    run.claims.clear();
    if (claims.length > 0) await store.abandonTurnInputClaims(claims).catch(warnAbout('abandoning a claim'));
    await store.releaseSessionExecutionLease(run.completion).catch(warnAbout('releasing a lease'));
  }

  async function processWake(job: Job, bullSignal?: AbortSignal): Promise<WakeOutcome> {
    const sessionId = (job.data as { sessionId?: unknown } | undefined)?.sessionId;
    if (job.name !== WAKE_JOB || typeof sessionId !== 'string' || sessionId === '') {
      // Not ours to retry: a malformed job fails once.
      throw new UnrecoverableError('redis-turn-store: expected a `wake` job with data { sessionId }');
    }
    if (closing) throw new Error('redis-turn-store: the idle-dispatch worker is closing');
    // This worker already runs the session (a stalled-job re-run): the same owner would re-enter
    // its own lease, so treat it as busy; the running turn's release signals.
    if (runs.has(sessionId)) return { outcome: 'busy' };

    const claimed = await store.tryClaimSessionExecutionLease(sessionId, owner, leaseTtlMs);
    if (claimed.outcome === 'busy') {
      emit({ type: 'busy', sessionId, holder: claimed.holder });
      return { outcome: 'busy' };
    }
    const lease = claimed.lease;
    const generation = lease.fencingToken;
    const fence = leaseFence(lease);
    const run: InFlightRun = {
      sessionId,
      abort: new AbortController(),
      claims: new Map(),
      completion: leaseCompletion(lease),
    };
    runs.set(sessionId, run);
    const onBullAbort = () => run.abort.abort(bullSignal?.reason ?? new Error('job cancelled'));
    bullSignal?.addEventListener('abort', onBullAbort, { once: true });
    const renewals = startRenewals(store, fence, leaseTtlMs, run.abort, (error) =>
      emit({ type: 'renewal_failed', sessionId, generation, error }),
    );
    const started = Date.now();
    try {
      if (closing) throw new Error('redis-turn-store: the idle-dispatch worker is closing');
      const claim = await store.claimNextTurnInputs({ sessionId, fence, owner, leaseTtlMs, maxInputs });
      if (!claim) {
        await renewals.stop();
        await store.releaseSessionExecutionLease(run.completion);
        emit({ type: 'idle', sessionId, generation });
        return { outcome: 'idle', generation };
      }
      run.claims.set(claim.claimId, claim);
      const inputIds = claim.inputs.map((i) => i.inputId);
      emit({ type: 'claimed', sessionId, generation, claimId: claim.claimId, inputIds });

      const context: RunTurnContext = {
        sessionId,
        fence: leaseFence(lease),
        claim,
        signal: run.abort.signal,
        lease,
        claimActiveTurnInputs: async (turnId, checkpoint, max = maxInputs) => {
          if (run.abort.signal.aborted) throw run.abort.signal.reason;
          const active = await store.claimActiveTurnInputs({
            sessionId,
            fence,
            owner,
            turnId,
            checkpoint,
            leaseTtlMs,
            maxInputs: max,
          });
          if (active) {
            run.claims.set(active.claimId, active);
            const ids = active.inputs.map((i) => i.inputId);
            emit({ type: 'active_claimed', sessionId, generation, claimId: active.claimId, inputIds: ids, turnId });
          }
          return active;
        },
      };
      const commit = await raceAbort(runTurn(context), run.abort.signal);
      await renewals.stop();
      if (run.abort.signal.aborted) throw run.abort.signal.reason;
      if (closing) throw new Error('redis-turn-store: the idle-dispatch worker is closing');

      const completions: TurnInputCompletion[] = [...(commit.completedTurnInputClaims ?? [])];
      for (const c of run.claims.values()) {
        if (!completions.some((x) => x.sessionId === c.sessionId && x.claimId === c.claimId)) {
          completions.push(claimCompletion(c));
        }
      }
      const result = await store.session(sessionId).commitRuntimeState({
        ...commit,
        sessionExecutionLease: fence,
        releaseSessionExecutionLease: run.completion,
        completedTurnInputClaims: completions,
      });
      run.claims.clear();
      const allIds = completions.filter((c) => c.sessionId === sessionId).flatMap((c) => c.inputIds);
      emit({
        type: 'committed',
        sessionId,
        generation,
        claimId: claim.claimId,
        inputIds: allIds,
        result,
        durationMs: Date.now() - started,
      });
      return { outcome: 'committed', generation, headRevision: result.headRevision, inputIds: allIds };
    } catch (error) {
      await renewals.stop();
      await releaseAndAbandon(run);
      emit({ type: 'failed', sessionId, generation, error });
      throw error;
    } finally {
      bullSignal?.removeEventListener('abort', onBullAbort);
      runs.delete(sessionId);
    }
  }

  // A crashed worker's wake job stays active until BullMQ declares it stalled, and deduplication
  // holds every later wake-up of that session until then. So the stall timers follow the lease:
  // a session whose worker died is re-dispatched within about two lease TTLs (bounded to 5-30 s
  // each, BullMQ's default being 30 s), not a fixed minute.
  const stallMs = Math.min(30_000, Math.max(5_000, leaseTtlMs));
  const worker = new Worker(queueName, (job, _token, signal) => processWake(job, signal), {
    connection: options.connection as never,
    prefix: queuePrefix,
    concurrency,
    autorun: true,
    lockDuration: stallMs,
    stalledInterval: stallMs,
  });
  worker.on('error', (error) => emit({ type: 'error', during: 'queue', error }));

  // ------------------------------------------------------------ sweeper and vacuum
  let sweeping: Promise<SweepReport> | undefined;
  const sweep = (): Promise<SweepReport> => {
    if (sweeping) return sweeping;
    sweeping = sweepDispatchIndex(store, { wake: (sessionId) => wakeQueue.send(sessionId) })
      .then((report) => {
        emit({ type: 'swept', report });
        return report;
      })
      .finally(() => {
        sweeping = undefined;
      });
    return sweeping;
  };
  const sweepQuietly = (): Promise<void> =>
    sweep().then(
      () => undefined,
      (error) => {
        if (!closing) {
          emit({ type: 'error', during: 'sweep', error });
          warnAbout('a dispatch sweep')(error);
        }
      },
    );
  let vacuuming: Promise<void> | undefined;
  const vacuumQuietly = (): void => {
    if (vacuuming || closing) return;
    vacuuming = store
      .vacuum()
      .then(
        (r) => emit({ type: 'vacuumed', removedPendingTurnInputTombstones: r.removedPendingTurnInputTombstones }),
        (error) => {
          if (!closing) {
            emit({ type: 'error', during: 'vacuum', error });
            warnAbout('vacuum')(error);
          }
        },
      )
      .finally(() => {
        vacuuming = undefined;
      });
  };

  const firstSweep = sweepQuietly();
  const sweepTimer = setInterval(() => {
    if (!closing) void sweepQuietly();
  }, sweepIntervalMs);
  const vacuumTimer = setInterval(vacuumQuietly, vacuumIntervalMs);

  let closed: Promise<void> | undefined;
  const close = (): Promise<void> => {
    if (closed) return closed;
    closing = true;
    clearInterval(sweepTimer);
    clearInterval(vacuumTimer);
    closed = (async () => {
      const stopped = worker.close();
      const inFlight = [...runs.values()];
      for (const run of inFlight) run.abort.abort(new Error('redis-turn-store: the idle-dispatch worker is closing'));
      await Promise.allSettled(inFlight.map((run) => releaseAndAbandon(run)));
      await stopped;
      await Promise.allSettled([firstSweep, sweeping, vacuuming]);
      await wakeQueue.close().catch(() => undefined);
    })();
    return closed;
  };

  return {
    worker,
    queueName,
    queuePrefix,
    async waitUntilReady() {
      await worker.waitUntilReady();
      await firstSweep;
    },
    sweep,
    close,
  };
}

/** Renews the lease every leaseTtlMs / 3 until stopped; a failure aborts the run's signal. */
function startRenewals(
  store: RuntimeStore,
  fence: SessionExecutionLeaseFence,
  leaseTtlMs: number,
  abort: AbortController,
  onFailure: (error: unknown) => void,
): { stop(): Promise<void> } {
  const every = Math.max(1, Math.floor(leaseTtlMs / 3));
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let inFlight: Promise<void> | undefined;
  const schedule = () => {
    timer = setTimeout(() => {
      inFlight = store.renewSessionExecutionLease(fence, leaseTtlMs).then(
        () => {
          if (!stopped && !abort.signal.aborted) schedule();
        },
        (error: unknown) => {
          if (stopped) return;
          const reason =
            isStoreError(error) && error.code === 'SessionExecutionLeaseExpired'
              ? error
              : new StoreError('SessionExecutionLeaseExpired', { sessionId: fence.sessionId }, { cause: error });
          onFailure(error);
          abort.abort(reason);
        },
      );
    }, every);
  };
  schedule();
  return {
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await inFlight;
    },
  };
}

/** Settles with the work, or rejects with the signal's reason as soon as it aborts. */
function raceAbort<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  // A late rejection of the abandoned work must not become an unhandled rejection.
  work.catch(() => undefined);
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

function warnAbout(what: string): (error: unknown) => void {
  return (error) =>
    process.emitWarning(`redis-turn-store: idle dispatch: ${what} failed: ${(error as Error)?.message ?? error}`, {
      code: 'RTS_DISPATCH_WARNING',
    });
}
