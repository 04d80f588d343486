/**
 * createInMemoryRuntimeStore: the in-process reference backend (SPEC 8.2). Same contract, outcomes
 * and id / claimId formats as the Redis store; tier 'inline'; no dispatch queue.
 *
 * Every method validates its arguments and then runs as one synchronous step (no `await` between
 * the checks and the writes), so each operation is atomic with respect to every other. Stored data
 * is held as copies; every returned value is a fresh copy.
 *
 * Order inside each method, as on the Redis store: argument validation; the answers that need no
 * stored data (maxInputs 0, empty lists, session binding, a stamp naming another session); then
 * the closed gate (StoreClosed); then the atomic step on the store clock.
 */

import { args } from '../contract/arguments.js';
import { storeClosed } from '../contract/errors.js';
import { memoryOptionsSchema, parseArg } from '../contract/schemas.js';
import type {
  AbandonTurnInputClaimOptions,
  ClaimActiveTurnInputsRequest,
  ClaimNextTurnInputsRequest,
  DeleteSessionOptions,
  DurabilityTier,
  FailedTurnInputRetryResult,
  InMemoryRuntimeStoreOptions,
  JsonPayload,
  JsonValue,
  LeaseOwnerIdentity,
  PendingTurnInput,
  PendingTurnInputCancelOutcome,
  PendingTurnInputCancelResult,
  PendingTurnInputCancelTarget,
  PendingTurnInputDraft,
  PendingTurnInputSuffixCancelOutcome,
  RequestTurnInterruptOptions,
  RuntimeStore,
  SessionCommitStore,
  SessionDeletion,
  SessionExecutionLease,
  SessionExecutionLeaseClaimOutcome,
  SessionExecutionLeaseCompletion,
  SessionExecutionLeaseFence,
  StoreStats,
  TraceContext,
  TurnInputClaim,
  TurnInterruptOutcome,
  VacuumResult,
} from '../contract/types.js';
import { DEFAULT_ACTIVE_INPUT_GRACE_MS, DEFAULT_TOMBSTONE_RETENTION_MS } from '../core/defaults.js';
import { instrumentStoreSync } from '../telemetry/instrument-store.js';
import { ENQUEUE_TRACED, type TracedEnqueue, type TracedEnqueueResult } from '../telemetry/internal.js';
import { loadOtelApi } from '../telemetry/otel-api.js';
import { MemorySessionCommitStore } from './memory-commit.js';
import * as erase from './memory-erase.js';
import * as leases from './memory-leases.js';
import { storeStats } from './memory-stats.js';
import * as inputs from './memory-turn-inputs.js';
import { emptyStoreState, type MemoryContext, type MemoryStoreState } from './session-state.js';

// Start loading the optional OpenTelemetry API now, so a store made a moment later is instrumented
// from its first call.
void loadOtelApi();

class MemoryRuntimeStore implements RuntimeStore, TracedEnqueue {
  private closed = false;
  readonly ctx: MemoryContext;

  constructor(
    now: () => number,
    requeue: boolean,
    activeInputGraceMs: number,
    tombstoneRetentionMs: number,
    sessionRetentionMs?: number,
    maxPendingPerSession?: number,
    pendingTtlMs?: number,
  ) {
    const state = emptyStoreState();
    this.ctx = {
      state,
      clock: () => Math.floor(now()),
      requeue,
      activeInputGraceMs,
      tombstoneRetentionMs,
      sessionRetentionMs,
      maxPendingPerSession,
      pendingTtlMs,
      assertOpen: () => {
        if (this.closed) throw storeClosed();
      },
    };
  }

  session(sessionId: string): SessionCommitStore {
    return new MemorySessionCommitStore(this.ctx, args.sessionId(sessionId));
  }

  durabilityTier(): DurabilityTier {
    return 'inline';
  }

  async tryClaimSessionExecutionLease(
    sessionId: string,
    owner: LeaseOwnerIdentity,
    leaseTtlMs: number,
  ): Promise<SessionExecutionLeaseClaimOutcome> {
    return leases.tryClaimLease(this.ctx, sessionId, owner, leaseTtlMs);
  }

  async reclaimSessionExecutionLease(
    sessionId: string,
    owner: LeaseOwnerIdentity,
    observedHolder: SessionExecutionLeaseFence,
    leaseTtlMs: number,
  ): Promise<SessionExecutionLeaseClaimOutcome> {
    return leases.reclaimLease(this.ctx, sessionId, owner, observedHolder, leaseTtlMs);
  }

  async renewSessionExecutionLease(
    fence: SessionExecutionLeaseFence,
    leaseTtlMs: number,
  ): Promise<SessionExecutionLease> {
    return leases.renewLease(this.ctx, fence, leaseTtlMs);
  }

  async releaseSessionExecutionLease(completion: SessionExecutionLeaseCompletion): Promise<void> {
    leases.releaseLease(this.ctx, completion);
  }

  async requestTurnInterrupt(sessionId: string, options?: RequestTurnInterruptOptions): Promise<TurnInterruptOutcome> {
    return leases.requestInterrupt(this.ctx, sessionId, options);
  }

  async pauseSessionDispatch(sessionId: string): Promise<{ changed: boolean }> {
    return leases.pauseDispatch(this.ctx, sessionId);
  }

  async resumeSessionDispatch(sessionId: string): Promise<{ changed: boolean }> {
    return leases.resumeDispatch(this.ctx, sessionId);
  }

  async enqueuePendingTurnInput(draft: PendingTurnInputDraft): Promise<PendingTurnInput> {
    return inputs.enqueue(this.ctx, draft);
  }

  async [ENQUEUE_TRACED](draft: PendingTurnInputDraft, trace: TraceContext | undefined): Promise<TracedEnqueueResult> {
    return inputs.enqueueTraced(this.ctx, draft, trace);
  }

  async stats(): Promise<StoreStats> {
    return storeStats(this.ctx);
  }

  async listPendingTurnInputs(sessionId: string): Promise<PendingTurnInput[]> {
    return inputs.list(this.ctx, sessionId);
  }

  async cancelPendingTurnInputs(
    sessionId: string,
    targets: PendingTurnInputCancelTarget[],
  ): Promise<PendingTurnInputCancelResult[]> {
    return inputs.cancel(this.ctx, sessionId, targets);
  }

  async cancelPendingTurnInput(sessionId: string, inputId: string): Promise<PendingTurnInputCancelOutcome> {
    return inputs.cancelOne(this.ctx, sessionId, inputId);
  }

  async cancelPendingTurnInputSuffix(
    sessionId: string,
    anchor: PendingTurnInputCancelTarget,
  ): Promise<PendingTurnInputSuffixCancelOutcome> {
    return inputs.cancelSuffix(this.ctx, sessionId, anchor);
  }

  async claimActiveTurnInputs(request: ClaimActiveTurnInputsRequest): Promise<TurnInputClaim | null> {
    return inputs.claimActive(this.ctx, request);
  }

  async claimNextTurnInputs(request: ClaimNextTurnInputsRequest): Promise<TurnInputClaim | null> {
    return inputs.claimNext(this.ctx, request);
  }

  async abandonTurnInputClaim(claim: TurnInputClaim, options?: AbandonTurnInputClaimOptions): Promise<void> {
    inputs.abandonOne(this.ctx, claim, options);
  }

  async abandonTurnInputClaims(claims: TurnInputClaim[], options?: AbandonTurnInputClaimOptions): Promise<void> {
    inputs.abandonMany(this.ctx, claims, options);
  }

  async listFailedTurnInputs(sessionId: string): Promise<PendingTurnInput[]> {
    return inputs.listFailed(this.ctx, sessionId);
  }

  async retryFailedTurnInputs(sessionId: string, inputIds: string[]): Promise<FailedTurnInputRetryResult[]> {
    return inputs.retryFailed(this.ctx, sessionId, inputIds);
  }

  async vacuum(options?: { olderThanMs?: number }): Promise<VacuumResult> {
    return inputs.vacuum(this.ctx, options);
  }

  async deleteSession(sessionId: string, options?: DeleteSessionOptions): Promise<SessionDeletion> {
    return erase.deleteSession(this.ctx, sessionId, options);
  }

  async close(): Promise<void> {
    // Every operation is synchronous after validation, so nothing is ever in flight.
    this.closed = true;
  }
}

/**
 * `TInput` types the payloads (`input`) of drafts, listed rows and claims; default JsonValue. Any
 * JSON-shaped type is accepted, interfaces included (see JsonPayload). The store does not check
 * payloads against it at run time beyond their being JSON.
 */
export function createInMemoryRuntimeStore<TInput extends JsonPayload<TInput> = JsonValue>(
  options: InMemoryRuntimeStoreOptions = {},
): RuntimeStore<TInput> {
  const opts = parseArg(memoryOptionsSchema, options ?? {}, 'options');
  const store: RuntimeStore = new MemoryRuntimeStore(
    opts.now ?? Date.now,
    (opts.strandedTurnInputs ?? 'requeue') === 'requeue',
    opts.activeInputGraceMs ?? DEFAULT_ACTIVE_INPUT_GRACE_MS,
    opts.tombstoneRetentionMs ?? DEFAULT_TOMBSTONE_RETENTION_MS,
    opts.sessionRetentionMs,
    opts.maxPendingPerSession,
    opts.pendingTtlMs,
  );
  // SPEC 17: spans and metrics when @opentelemetry/api is installed (a no-op without an SDK).
  return instrumentStoreSync(store, opts.telemetry) as unknown as RuntimeStore<TInput>;
}

/**
 * The live internal state of an in-memory store, for white-box tests (not exported from the
 * package entry point). Take a deep snapshot with `structuredClone`.
 */
export function memoryStoreState(store: RuntimeStore): MemoryStoreState {
  if (!(store instanceof MemoryRuntimeStore)) throw new TypeError('not an in-memory runtime store');
  return store.ctx.state;
}
