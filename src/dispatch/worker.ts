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
 *   runTurn throws (a failed run, SPEC 11.1): abandon the claims with a failure report (an
 *   attempt per input; an input out of attempts becomes `failed`), release the lease, complete
 *   the job, and wake the session again after a backoff (its next claim isolates the inputs).
 *   any other error on the way: abandon the claims, release the lease, rethrow (BullMQ retries
 *   with backoff; the sweeper re-signals if the retries run out).
 *
 *   interrupted (SPEC 3.9: a pub/sub notice, a renewal's mark, or a claim's TurnInterrupted):
 *   abort `signal` with TurnInterrupted, abandon the claims (the store requeues or, on
 *   rollback, cancels them), release; the job completes, and the release's wake-up starts the
 *   next turn at once (the interrupt functions at the end of this file).
 *
 * BullMQ may re-run a stalled job; the lease and the fenced commit make a second run `busy` or a
 * no-op. The helper also runs the dispatch sweeper every sweepIntervalMs (and once at start) and
 * `store.vacuum()` every vacuumIntervalMs.
 *
 * Shutdown is bounded (closeTimeoutMs): BullMQ 6.7's graceful Worker.close() waits for an ioredis
 * `end` event that a reconnecting client never emits (taskforcesh/bullmq#4656), and store calls
 * hang while Redis is stopped. Whatever has not finished by the deadline is abandoned: the helper's
 * own BullMQ connections are disconnected, and leases and claims not released are left to expire;
 * a `close_timeout` event says which.
 */
import { DelayedError, type Job, UnrecoverableError, Worker } from 'bullmq';
import { z } from 'zod';
import { isStoreError, StoreError } from '../contract/errors.js';
import {
  leaseTtlSchema,
  maxAttemptsSchema,
  maxInputsSchema,
  ownerSchema,
  parseArgs,
  unknownKeyIssues,
} from '../contract/schemas.js';
import type {
  CheckpointKind,
  JsonValue,
  LeaseOwnerIdentity,
  PendingTurnInput,
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
import { traceTurn } from '../telemetry/turn-span.js';
import { InterruptListener, interruptedError } from './interrupt-listener.js';
import { dispatchQueueOf, type RedisBackedStore, requireRedisStore } from './redis-store-access.js';
import { type SweepReport, sweepDispatchIndex } from './sweeper.js';

/** What runTurn receives for one turn. `TInput`: the store's payload type. */
export interface RunTurnContext<TInput = JsonValue> {
  sessionId: string;
  /** The fence of the lease this run holds; pass it to claims. */
  fence: SessionExecutionLeaseFence;
  /** The next-turn input this turn consumes (claimed with the worker's maxInputs). */
  claim: TurnInputClaim<TInput>;
  /**
   * Aborted when a lease renewal fails, the worker closes, or the turn is interrupted (SPEC 3.8;
   * the reason is then StoreError TurnInterrupted with details { sessionId, generation, policy,
   * reason?, inputId? }): stop, the run will not commit.
   */
  signal: AbortSignal;
  /** The lease as acquired. */
  lease: SessionExecutionLease;
  /**
   * Every claim this run holds so far: `claim` first, then each claim taken through
   * claimActiveTurnInputs (a live view). buildTurnCommit completes them all.
   */
  readonly claims: readonly TurnInputClaim[];
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

/**
 * What runTurn returns: a RuntimeCommit in which the helper fills what it knows. `sessionId` may
 * be left out (the run's session is used; naming another session fails the wake-up without
 * retries), and `completedTurnInputClaims` too (the run's claims are added when missing). The
 * fence and the release are always the run's. buildTurnCommit builds one for the common case.
 */
export type RunTurnCommit = Omit<
  RuntimeCommit,
  'sessionId' | 'completedTurnInputClaims' | 'sessionExecutionLease' | 'releaseSessionExecutionLease'
> & {
  sessionId?: string;
  completedTurnInputClaims?: TurnInputCompletion[];
  /** Ignored: the helper sets the run's fence. */
  sessionExecutionLease?: SessionExecutionLeaseFence;
  /** Ignored: the helper sets the run's release. */
  releaseSessionExecutionLease?: SessionExecutionLeaseFence;
};

/** Produces the turn's commit. The helper sets the fence, the release and the claim completions. */
export type RunTurn<TInput = JsonValue> = (context: RunTurnContext<TInput>) => Promise<RunTurnCommit>;

/** A part of close() that did not finish within closeTimeoutMs. */
export type CloseStage = 'runs' | 'bullmq_worker' | 'sweep' | 'vacuum' | 'wake_queue';

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
  /** The session's dispatch is paused (pauseSessionDispatch): no turn was started. */
  | { type: 'paused'; sessionId: string }
  /** debounceMs: the wake-up was put off by delayMs (the job is delayed, not failed). */
  | { type: 'debounced'; sessionId: string; delayMs: number }
  | {
      /** The run was interrupted (SPEC 3.9): its claims were abandoned or cancelled, its lease released. */
      type: 'interrupted';
      sessionId: string;
      generation: number;
      /** The claimed input the run gave back (policy 'interrupt') or that was cancelled ('rollback'). */
      inputIds: string[];
      error: StoreError;
    }
  | { type: 'failed'; sessionId: string; generation?: number; error: unknown }
  | {
      /**
       * An input of a failed run ran out of attempts (maxAttempts) and is now `failed`: it is
       * no longer claimed; listFailedTurnInputs lists it, retryFailedTurnInputs puts it back.
       */
      type: 'input_failed';
      sessionId: string;
      generation: number;
      inputId: string;
      attempts: number;
      lastError: string;
      input: PendingTurnInput;
    }
  | { type: 'swept'; report: SweepReport }
  | { type: 'vacuumed'; removedPendingTurnInputTombstones: number }
  | { type: 'error'; during: 'sweep' | 'vacuum' | 'queue'; error: unknown }
  | {
      /**
       * close() gave up waiting after closeTimeoutMs (Redis down, stopped or reconnecting) and
       * resolved anyway. The helper's own BullMQ connections were disconnected; what it could
       * not release is left to expire.
       */
      type: 'close_timeout';
      timeoutMs: number;
      /** What had not finished by the deadline. */
      unfinished: CloseStage[];
      /** Sessions whose lease release did not complete: another worker can take them after leaseTtlMs. */
      leasesLeftToExpire: string[];
      /** Claims not abandoned: their inputs are claimable again once the claims stall (leaseTtlMs). */
      claimsLeftToExpire: Array<{ sessionId: string; claimId: string; inputIds: string[] }>;
    };

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
  /**
   * Failing runs (SPEC 11.1): when runTurn throws (or returns a commit that can never be
   * accepted), the run's claims are abandoned with a failure report, which counts an attempt for
   * each of its inputs; an input tried alone this many times becomes `failed` (an `input_failed`
   * event). 1..1000, default 3.
   */
  maxAttempts?: number;
  /**
   * After a failed run the session is woken again after this delay, doubled for every attempt its
   * inputs already had (at most 30 s; the sweeper may wake it sooner). 0..60000, default 500.
   */
  failureBackoffMs?: number;
  /** Wake-ups processed at once (different sessions); default 1. */
  concurrency?: number;
  /** Dispatch sweeper period; default 5000. */
  sweepIntervalMs?: number;
  /** store.vacuum() period; default one hour. */
  vacuumIntervalMs?: number;
  /**
   * The most close() waits, whatever Redis does; default 10000. Past it, close() disconnects the
   * helper's own BullMQ connections, leaves unreleased leases and claims to expire, emits
   * `close_timeout` and resolves.
   */
  closeTimeoutMs?: number;
  /**
   * The most waitUntilReady() waits for BullMQ to connect (and the first sweep); default 10000.
   * Past it, waitUntilReady() rejects with StoreError `Backend` (the worker keeps trying; close it
   * if you give up).
   */
  readyTimeoutMs?: number;
  /** Progress and diagnostics; exceptions thrown by the listener are ignored. */
  onEvent?: (event: IdleDispatchEvent) => void;
  /**
   * Bursts (issue 18): a wake-up waits until the session's newest next-turn input is this old
   * (store clock), so a burst of messages becomes one turn. 0..600000, default 0 (off).
   */
  debounceMs?: number;
  /**
   * With debounceMs: the longest a wake-up waits, counted from the oldest next-turn input
   * waiting, so a steady stream still gets turns. debounceMs..3600000, default 4 x debounceMs.
   */
  maxDebounceMs?: number;
}

export interface IdleDispatchWorker {
  /** The underlying BullMQ worker. */
  readonly worker: Worker;
  /** `<keyPrefix>-idle-dispatch`. */
  readonly queueName: string;
  /** `{<keyPrefix>}`. */
  readonly queuePrefix: string;
  /**
   * Resolves once BullMQ is connected and the first sweep has run; rejects with StoreError
   * `Backend` when that takes longer than readyTimeoutMs.
   */
  waitUntilReady(): Promise<void>;
  /** Runs one sweep now (wake-ups go through the helper's queue handle). */
  sweep(): Promise<SweepReport>;
  /**
   * Stops taking jobs, aborts runs in flight (their claims are abandoned and their leases
   * released at once, so another worker can take the sessions), waits for them to settle, stops
   * the sweeper and vacuum timers and closes the helper's BullMQ handles. Idempotent. Resolves
   * within closeTimeoutMs whatever the connection does (see the `close_timeout` event).
   */
  close(): Promise<void>;
}

export type WakeOutcome =
  | { outcome: 'busy' }
  | { outcome: 'idle'; generation: number }
  | { outcome: 'committed'; generation: number; headRevision: number; inputIds: string[] }
  /** runTurn failed: its claims were abandoned with a failure report; `failedInputIds` ran out of attempts. */
  | { outcome: 'run_failed'; generation: number; inputIds: string[]; failedInputIds: string[] }
  /** The run was interrupted; `inputIds` are the inputs its claims held (requeued or cancelled). */
  | { outcome: 'interrupted'; generation: number; inputIds: string[] }
  | { outcome: 'paused' };

const positiveInt = (max: number) =>
  z
    .number({ error: `must be an integer in 1..${max}` })
    .refine((n) => Number.isInteger(n) && n >= 1 && n <= max, `must be an integer in 1..${max}`);

const optionsShape = {
  owner: ownerSchema,
  leaseTtlMs: leaseTtlSchema.refine((n) => n >= 3, 'must be at least 3 (renewals run every leaseTtlMs / 3)'),
  maxInputs: maxInputsSchema.refine((n) => n >= 1, 'must be at least 1'),
  maxAttempts: maxAttemptsSchema,
  failureBackoffMs: z
    .number({ error: 'must be an integer in 0..60000' })
    .refine((n) => Number.isInteger(n) && n >= 0 && n <= 60_000, 'must be an integer in 0..60000'),
  concurrency: positiveInt(1000),
  sweepIntervalMs: positiveInt(86_400_000),
  vacuumIntervalMs: positiveInt(2_147_483_647),
  closeTimeoutMs: positiveInt(2_147_483_647),
  readyTimeoutMs: positiveInt(2_147_483_647),
  debounceMs: z
    .number({ error: 'must be an integer in 0..600000' })
    .refine((n) => Number.isInteger(n) && n >= 0 && n <= 600_000, 'must be an integer in 0..600000'),
  maxDebounceMs: positiveInt(3_600_000),
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
  'maxAttempts',
  'failureBackoffMs',
  'concurrency',
  'sweepIntervalMs',
  'vacuumIntervalMs',
  'closeTimeoutMs',
  'readyTimeoutMs',
  'onEvent',
  'debounceMs',
  'maxDebounceMs',
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
    maxAttempts: options.maxAttempts ?? 3,
    failureBackoffMs: options.failureBackoffMs ?? 500,
    concurrency: options.concurrency ?? 1,
    sweepIntervalMs: options.sweepIntervalMs ?? 5000,
    vacuumIntervalMs: options.vacuumIntervalMs ?? 3_600_000,
    closeTimeoutMs: options.closeTimeoutMs ?? 10_000,
    readyTimeoutMs: options.readyTimeoutMs ?? 10_000,
    debounceMs: options.debounceMs ?? 0,
    maxDebounceMs: options.maxDebounceMs ?? Math.max(1, 4 * (options.debounceMs ?? 0)),
    runTurn: options.runTurn,
  });
  if (parsed.maxDebounceMs < parsed.debounceMs) {
    throw new StoreError('InvalidInput', { issues: ['maxDebounceMs: must be at least debounceMs'] });
  }
  const issues = connectionIssues(options.connection);
  if (issues.length > 0) throw new StoreError('InvalidInput', { issues });

  const owner = options.owner;
  const {
    leaseTtlMs,
    maxInputs,
    maxAttempts,
    failureBackoffMs,
    concurrency,
    sweepIntervalMs,
    vacuumIntervalMs,
    closeTimeoutMs,
    readyTimeoutMs,
  } = parsed;
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
  const interrupts = new InterruptListener(store);

  /**
   * A failed run (SPEC 11.1): abandons the run's claims with a failure report and releases the
   * lease; then reports the inputs that ran out of attempts. Rejects when the abandon does (the
   * caller falls back to the plain path, so BullMQ retries).
   */
  async function abandonFailedRun(
    run: InFlightRun,
    generation: number,
    error: unknown,
  ): Promise<{ inputIds: string[]; failedInputIds: string[]; attempts: number }> {
    const claims = [...run.claims.values()];
    const inputIds = claims.flatMap((c) => c.inputs.map((i) => i.inputId));
    // The most attempts an input of the run has now (the claim showed the count before it).
    const attempts = Math.max(1, ...claims.flatMap((c) => c.inputs.map((i) => (i.attempts ?? 0) + 1)));
    await store.abandonTurnInputClaims(claims, { failure: { error: describeError(error), maxAttempts } });
    run.claims.clear();
    await store.releaseSessionExecutionLease(run.completion).catch(warnAbout('releasing a lease'));
    const failedInputIds: string[] = [];
    const failed = await store.listFailedTurnInputs(run.sessionId).catch((e: unknown) => {
      warnAbout('listing failed inputs')(e);
      return [];
    });
    const claimed = new Set(inputIds);
    for (const input of failed) {
      if (!claimed.has(input.inputId)) continue;
      failedInputIds.push(input.inputId);
      emit({
        type: 'input_failed',
        sessionId: run.sessionId,
        generation,
        inputId: input.inputId,
        attempts: input.attempts ?? 0,
        lastError: input.lastError ?? '',
        input,
      });
    }
    return { inputIds, failedInputIds, attempts };
  }

  const retryTimers = new Set<NodeJS.Timeout>();
  /** The wake-up after a failed run, `delayMs` later (none once closing). */
  function scheduleRetryWake(sessionId: string, delayMs: number): void {
    const send = () => {
      if (!closing) wakeQueue.send(sessionId).catch(warnAbout('a wake-up after a failed run'));
    };
    if (delayMs === 0) {
      send();
      return;
    }
    const timer = setTimeout(() => {
      retryTimers.delete(timer);
      send();
    }, delayMs);
    timer.unref?.();
    retryTimers.add(timer);
  }
  /** failureBackoffMs doubled per attempt after the first, at most 30 s. */
  const retryDelay = (attempts: number): number =>
    Math.min(30_000, failureBackoffMs * 2 ** Math.min(20, Math.max(0, attempts - 1)));

  /** Abandons the run's claims and releases its lease; says which of the two went through. */
  async function releaseAndAbandon(run: InFlightRun): Promise<{ abandoned: boolean; released: boolean }> {
    const claims = [...run.claims.values()];
    run.claims.clear();
    const succeeded = () => true;
    const failed = (what: string) => (error: unknown) => {
      warnAbout(what)(error);
      return false;
    };
    const abandoned =
      claims.length === 0 || (await store.abandonTurnInputClaims(claims).then(succeeded, failed('abandoning a claim')));
    const released = await store
      .releaseSessionExecutionLease(run.completion)
      .then(succeeded, failed('releasing a lease'));
    return { abandoned, released };
  }

  async function processWake(job: Job, bullSignal?: AbortSignal, token?: string): Promise<WakeOutcome> {
    const sessionId = (job.data as { sessionId?: unknown } | undefined)?.sessionId;
    if (job.name !== WAKE_JOB || typeof sessionId !== 'string' || sessionId === '') {
      // Not ours to retry: a malformed job fails once.
      throw new UnrecoverableError('redis-turn-store: expected a `wake` job with data { sessionId }');
    }
    if (closing) throw new Error('redis-turn-store: the idle-dispatch worker is closing');
    // This worker already runs the session (a stalled-job re-run): the same owner would re-enter
    // its own lease, so treat it as busy; the running turn's release signals.
    if (runs.has(sessionId)) return { outcome: 'busy' };
    if (parsed.debounceMs > 0 && token !== undefined) {
      const delayMs = await debounceDelay(store, sessionId, parsed.debounceMs, parsed.maxDebounceMs);
      if (delayMs > 0) {
        // BullMQ's manual delay: the same job (its deduplication id kept, so wake-ups meanwhile
        // fold into it) runs again after delayMs and checks again.
        await job.moveToDelayed(Date.now() + delayMs, token);
        emit({ type: 'debounced', sessionId, delayMs });
        throw new DelayedError();
      }
    }

    const claimed = await store.tryClaimSessionExecutionLease(sessionId, owner, leaseTtlMs).catch((error: unknown) => {
      // Issue 18: a paused session starts no turn; resumeSessionDispatch sends the next wake-up.
      if (isStoreError(error, 'SessionPaused')) return undefined;
      throw error;
    });
    if (claimed === undefined) {
      emit({ type: 'paused', sessionId });
      return { outcome: 'paused' };
    }
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
    const watching = watchInterrupts(interrupts, run, generation);
    const renewals = startRenewals(
      store,
      fence,
      leaseTtlMs,
      run.abort,
      (error) => emit({ type: 'renewal_failed', sessionId, generation, error }),
      (renewed) => interruptFromRenewal(run, renewed),
    );
    const started = Date.now();
    try {
      if (closing) throw new Error('redis-turn-store: the idle-dispatch worker is closing');
      const claim = await store.claimNextTurnInputs({ sessionId, fence, owner, leaseTtlMs, maxInputs });
      await watching.ready;
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
        get claims() {
          return [...run.claims.values()];
        },
        claimActiveTurnInputs: async (turnId, checkpoint, max = maxInputs) => {
          if (run.abort.signal.aborted) throw run.abort.signal.reason;
          const active = await store
            .claimActiveTurnInputs({
              sessionId,
              fence,
              owner,
              turnId,
              checkpoint,
              leaseTtlMs,
              maxInputs: max,
            })
            .catch((error: unknown) => {
              interruptFromClaim(run, error);
              throw error;
            });
          if (active) {
            run.claims.set(active.claimId, active);
            const ids = active.inputs.map((i) => i.inputId);
            emit({ type: 'active_claimed', sessionId, generation, claimId: active.claimId, inputIds: ids, turnId });
          }
          return active;
        },
      };
      let returned: RunTurnCommit;
      try {
        returned = await raceAbort(runTurn(context), run.abort.signal);
      } catch (error) {
        // runTurn itself failed (not an abort of ours, nor closing): a failed run of its inputs.
        if (!run.abort.signal.aborted && !closing && error !== null && typeof error === 'object') {
          failedRuns.add(error);
        } else if (!run.abort.signal.aborted && !closing) {
          const wrapped = new Error(`runTurn rejected with ${describeError(error)}`);
          failedRuns.add(wrapped);
          throw wrapped;
        }
        throw error;
      }
      await renewals.stop();
      if (run.abort.signal.aborted) throw run.abort.signal.reason;
      if (closing) throw new Error('redis-turn-store: the idle-dispatch worker is closing');
      const commit = commitOfRun(returned, sessionId);

      const completions: TurnInputCompletion[] = [...(commit.completedTurnInputClaims ?? [])];
      for (const c of run.claims.values()) {
        if (!completions.some((x) => x.sessionId === c.sessionId && x.claimId === c.claimId)) {
          completions.push(claimCompletion(c));
        }
      }
      const result = await store.session(sessionId).commitRuntimeState({
        ...commit,
        sessionId,
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
      const interrupted = closing ? undefined : interruptionOf(run, error);
      if (interrupted) {
        const inputIds = [...run.claims.values()].flatMap((c) => c.inputs.map((i) => i.inputId));
        await releaseAndAbandon(run);
        emit({ type: 'interrupted', sessionId, generation, inputIds, error: interrupted });
        // Not a failure: the job completes, and the release's wake-up runs the next turn at once.
        return { outcome: 'interrupted', generation, inputIds };
      }
      const failedRun = failedRuns.has(error as object) || notRetryable.has(error as object);
      if (failedRun && run.claims.size > 0) {
        // SPEC 11.1: count the failure against the run's inputs instead of retrying blindly.
        const counted = await abandonFailedRun(run, generation, error).then(
          (r) => r,
          (e: unknown) => {
            warnAbout('abandoning a failed run')(e);
            return undefined;
          },
        );
        if (counted) {
          emit({ type: 'failed', sessionId, generation, error });
          if (notRetryable.has(error as object)) throw unrecoverable(error as Error);
          // The job succeeds (no BullMQ retry storm); a wake-up runs the session again, one input
          // at a time while an input that failed is pending (the claim isolates it).
          // It waits a backoff (doubling with the attempts, so a short outage does not use them up
          // at once); the sweeper may wake it sooner, and repairs a wake-up lost with this process.
          scheduleRetryWake(sessionId, retryDelay(counted.attempts));
          return {
            outcome: 'run_failed',
            generation,
            inputIds: counted.inputIds,
            failedInputIds: counted.failedInputIds,
          };
        }
      }
      await releaseAndAbandon(run);
      emit({ type: 'failed', sessionId, generation, error });
      // A commit that can never be accepted is not retried by BullMQ.
      if (notRetryable.has(error as object)) throw unrecoverable(error as Error);
      throw error;
    } finally {
      bullSignal?.removeEventListener('abort', onBullAbort);
      watching.stop();
      runs.delete(sessionId);
    }
  }

  // A crashed worker's wake job stays active until BullMQ declares it stalled, and deduplication
  // holds every later wake-up of that session until then. So the stall timers follow the lease:
  // a session whose worker died is re-dispatched within about two lease TTLs (bounded to 5-30 s
  // each, BullMQ's default being 30 s), not a fixed minute.
  const stallMs = Math.min(30_000, Math.max(5_000, leaseTtlMs));
  // SPEC 17: the turn span (a no-op without an OpenTelemetry SDK), wrapped around the whole wake-up.
  const traced = (job: Job, signal?: AbortSignal, token?: string) =>
    traceTurn(store, (job.data as { sessionId?: unknown } | undefined)?.sessionId, () =>
      processWake(job, signal, token),
    );
  const worker = new Worker(queueName, (job, token, signal) => traced(job, signal, token), {
    connection: options.connection as never,
    prefix: queuePrefix,
    concurrency,
    autorun: true,
    lockDuration: stallMs,
    stalledInterval: stallMs,
  });
  let lastQueueError: unknown;
  worker.on('error', (error) => {
    lastQueueError = error;
    emit({ type: 'error', during: 'queue', error });
  });

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
    for (const t of retryTimers) clearTimeout(t);
    retryTimers.clear();
    closed = (async () => {
      // One deadline for the whole close: each step waits at most until it, then is abandoned.
      const deadline = startDeadline(closeTimeoutMs);
      const unfinished: CloseStage[] = [];
      const leasesLeftToExpire: string[] = [];
      const claimsLeftToExpire: Array<{ sessionId: string; claimId: string; inputIds: string[] }> = [];
      // Not forced: jobs whose run settles in time are finalised (failed, so BullMQ retries them).
      const stopped = worker.close();
      stopped.catch(() => undefined);
      const inFlight = [...runs.values()];
      for (const run of inFlight) run.abort.abort(new Error('redis-turn-store: the idle-dispatch worker is closing'));
      const runsDone = await Promise.all(
        inFlight.map(async (run) => {
          const claims = [...run.claims.values()];
          const outcome = await deadline.race(releaseAndAbandon(run));
          if (outcome === TIMED_OUT || !outcome.abandoned) {
            for (const c of claims) {
              claimsLeftToExpire.push({
                sessionId: c.sessionId,
                claimId: c.claimId,
                inputIds: c.inputs.map((i) => i.inputId),
              });
            }
          }
          if (outcome === TIMED_OUT || !outcome.released) leasesLeftToExpire.push(run.sessionId);
          return outcome !== TIMED_OUT;
        }),
      );
      if (runsDone.includes(false)) unfinished.push('runs');
      if ((await deadline.race(stopped)) === TIMED_OUT) {
        unfinished.push('bullmq_worker');
        disconnectOwnedConnections(worker);
      }
      if ((await deadline.race(Promise.allSettled([firstSweep, sweeping]))) === TIMED_OUT) unfinished.push('sweep');
      if (vacuuming && (await deadline.race(vacuuming)) === TIMED_OUT) unfinished.push('vacuum');
      await deadline.race(interrupts.close());
      const queueClosed = wakeQueue.close().catch(() => undefined);
      if ((await deadline.race(queueClosed)) === TIMED_OUT) {
        unfinished.push('wake_queue');
        disconnectOwnedConnections(wakeQueue.queue);
      }
      deadline.clear();
      if (unfinished.length > 0) {
        emit({ type: 'close_timeout', timeoutMs: closeTimeoutMs, unfinished, leasesLeftToExpire, claimsLeftToExpire });
      }
    })();
    return closed;
  };

  return {
    worker,
    queueName,
    queuePrefix,
    async waitUntilReady() {
      const deadline = startDeadline(readyTimeoutMs);
      try {
        const ready = worker.waitUntilReady().then(() => firstSweep);
        ready.catch(() => undefined);
        if ((await deadline.race(ready)) === TIMED_OUT) {
          const last = lastQueueError === undefined ? '' : `; last error: ${describeError(lastQueueError)}`;
          throw new StoreError('Backend', {
            cause: `idle dispatch: BullMQ did not connect (and sweep once) within readyTimeoutMs=${readyTimeoutMs}${last}`,
            timeoutMs: readyTimeoutMs,
          });
        }
      } finally {
        deadline.clear();
      }
    },
    sweep,
    close,
  };
}

/** Errors of a run that no retry can fix (a commit for another session, a non-object). */
const notRetryable = new WeakSet<object>();
/** Errors runTurn rejected with (failed runs, SPEC 11.1). */
const failedRuns = new WeakSet<object>();

function unrecoverable(error: Error): UnrecoverableError {
  const wrapped = new UnrecoverableError(error.message);
  (wrapped as { cause?: unknown }).cause = error;
  return wrapped;
}

/** What runTurn returned, as the commit of this run's session (the helper adds the rest). */
function commitOfRun(returned: RunTurnCommit, sessionId: string): Omit<RunTurnCommit, 'sessionId'> {
  if (typeof returned !== 'object' || returned === null || Array.isArray(returned)) {
    const error = new StoreError('InvalidInput', {
      issues: ['runTurn: must resolve to a commit object (buildTurnCommit makes one)'],
    });
    notRetryable.add(error);
    throw error;
  }
  if (returned.sessionId !== undefined && returned.sessionId !== sessionId) {
    const error = new StoreError('SessionBindingMismatch', {
      boundSessionId: sessionId,
      attemptedSessionId: returned.sessionId,
      hint: 'runTurn returned a commit for another session; leave sessionId out (the helper fills in the run’s)',
    });
    notRetryable.add(error);
    throw error;
  }
  const { sessionId: _ignored, ...rest } = returned;
  return rest;
}

const TIMED_OUT = Symbol('timed out');

/** A deadline shared by several waits: race(p) settles with p, or TIMED_OUT once the deadline passed. */
function startDeadline(ms: number): { race<T>(work: Promise<T>): Promise<T | typeof TIMED_OUT>; clear(): void } {
  let timer: NodeJS.Timeout | undefined;
  let expired = false;
  const passed = new Promise<typeof TIMED_OUT>((resolve) => {
    timer = setTimeout(() => {
      expired = true;
      resolve(TIMED_OUT);
    }, ms);
  });
  return {
    race<T>(work: Promise<T>) {
      // Past the deadline, work that is already settled still counts (one macrotask of grace).
      const limit = expired ? new Promise<typeof TIMED_OUT>((r) => setImmediate(() => r(TIMED_OUT))) : passed;
      return Promise.race([work, limit]);
    },
    clear() {
      if (timer) clearTimeout(timer);
    },
  };
}

/**
 * Disconnects the ioredis clients a BullMQ Worker or Queue opened itself (not a shared instance
 * the caller passed). Synchronous, no waiting for `end`: it clears ioredis's reconnect timer, so
 * nothing of the helper keeps the process alive. Reaches into BullMQ 6.7 internals defensively.
 */
function disconnectOwnedConnections(handle: unknown): void {
  const backend = (
    handle as { backend?: { ownsConnection?: boolean; connection?: unknown; blockingConnection?: unknown } }
  )?.backend;
  if (!backend || backend.ownsConnection === false) return;
  for (const connection of [backend.blockingConnection, backend.connection]) {
    const c = connection as
      | { extraOptions?: { shared?: boolean }; _client?: { disconnect?: () => void }; initializing?: Promise<unknown> }
      | undefined;
    if (c?.extraOptions?.shared !== false) continue;
    c.initializing?.catch(() => undefined);
    try {
      c._client?.disconnect?.();
    } catch {
      // Already gone.
    }
  }
}

function describeError(error: unknown): string {
  const e = error as { message?: unknown; code?: unknown } | null;
  const message = typeof e?.message === 'string' ? e.message : String(error);
  return typeof e?.code === 'string' && !message.includes(e.code) ? `${e.code} ${message}` : message;
}

/** Renews the lease every leaseTtlMs / 3 until stopped; a failure aborts the run's signal. */
function startRenewals(
  store: RuntimeStore,
  fence: SessionExecutionLeaseFence,
  leaseTtlMs: number,
  abort: AbortController,
  onFailure: (error: unknown) => void,
  onRenewed: (lease: SessionExecutionLease) => void = () => undefined,
): { stop(): Promise<void> } {
  const every = Math.max(1, Math.floor(leaseTtlMs / 3));
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let inFlight: Promise<void> | undefined;
  const schedule = () => {
    timer = setTimeout(() => {
      inFlight = store.renewSessionExecutionLease(fence, leaseTtlMs).then(
        (renewed) => {
          if (!stopped) onRenewed(renewed);
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

// ---------------------------------------------------------------- interrupts (SPEC 3.9)
// Kept apart from the run's state machine above: these only ever abort the run's signal with a
// TurnInterrupted reason, and the catch path settles an interrupted run.

interface RunWatch {
  /** Settles once the subscription is in place (or failed: renewals still deliver). */
  ready: Promise<void>;
  stop(): void;
}

/** Subscribes to the session's interrupt notices for this run; a notice for its generation aborts it. */
function watchInterrupts(listener: InterruptListener, run: InFlightRun, generation: number): RunWatch {
  let stopFn: (() => void) | undefined;
  let stopped = false;
  const ready = listener
    .watch(run.sessionId, (notice) => {
      if (notice.generation === generation) abortInterrupted(run, interruptedError(run.sessionId, notice));
    })
    .then((stop) => {
      stopFn = stop;
      if (stopped) stop();
    });
  return {
    ready,
    stop() {
      stopped = true;
      stopFn?.();
    },
  };
}

function abortInterrupted(run: InFlightRun, reason: StoreError): void {
  if (!run.abort.signal.aborted) run.abort.abort(reason);
}

/** A renewal's reply says this generation was interrupted. */
function interruptFromRenewal(run: InFlightRun, renewed: SessionExecutionLease): void {
  if (renewed.interrupt && renewed.interrupt.generation === run.completion.fencingToken) {
    abortInterrupted(run, interruptedError(run.sessionId, renewed.interrupt));
  }
}

/** A claim under the run's fence failed with TurnInterrupted. */
function interruptFromClaim(run: InFlightRun, error: unknown): void {
  if (isStoreError(error, 'TurnInterrupted')) abortInterrupted(run, error);
}

/** The TurnInterrupted that ended the run, if that is what ended it. */
function interruptionOf(run: InFlightRun, error: unknown): StoreError | undefined {
  const reason = run.abort.signal.aborted ? run.abort.signal.reason : error;
  if (isStoreError(reason, 'TurnInterrupted')) return reason;
  if (isStoreError(error, 'TurnInterrupted')) return error;
  return undefined;
}

// ---------------------------------------------------------------- debounce (issue 18)

/**
 * How long a wake-up should still wait: until the newest next-turn input is debounceMs old, but
 * never past maxDebounceMs after the oldest one (both on the store clock, Redis TIME). 0: run now
 * (nothing waits, or the session is quiet or waited long enough).
 */
async function debounceDelay(
  store: RedisBackedStore,
  sessionId: string,
  debounceMs: number,
  maxDebounceMs: number,
): Promise<number> {
  const rows = (await store.listPendingTurnInputs(sessionId)).filter((r) => r.state === 'deferred_next_turn');
  if (rows.length === 0) return 0;
  const [sec, usec] = (await store.ctx.client.time()) as unknown as [string | number, string | number];
  const now = Number(sec) * 1000 + Math.floor(Number(usec) / 1000);
  let newest = 0;
  let oldest = Number.POSITIVE_INFINITY;
  for (const r of rows) {
    newest = Math.max(newest, r.enqueuedAtMs);
    oldest = Math.min(oldest, r.enqueuedAtMs);
  }
  const quietFor = debounceMs - (now - newest);
  const capLeft = maxDebounceMs - (now - oldest);
  const wait = Math.min(quietFor, capLeft);
  return Math.max(wait, 0);
}
