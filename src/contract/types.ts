/**
 * The public types of the store. These mirror the pinned contract (names, fields and
 * literals); the zod schemas in `schemas.ts` validate arguments against them at runtime.
 */
import type { Cluster, Redis } from 'ioredis';

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/**
 * The payload types a store accepts: `T extends JsonPayload<T>` holds for interfaces and type
 * aliases made of strings, numbers, booleans, null, arrays and plain objects (optional fields
 * included), and fails to compile for functions, Date, Map, typed arrays, bigint or symbol.
 * The payload type of a store is checked against it: `createRedisRuntimeStore<MyInput>()`.
 */
export type JsonPayload<T> = JsonValue | { [K in keyof T]: JsonMember<T[K]> };

/** One field or element of a JsonPayload (see there). */
export type JsonMember<V> = V extends string | number | boolean | null | undefined
  ? V
  : V extends bigint | symbol | ((...args: never[]) => unknown)
    ? never
    : V extends readonly (infer U)[]
      ? readonly JsonMember<U>[]
      : V extends object
        ? { [K in keyof V]: JsonMember<V[K]> }
        : never;

// ---------------------------------------------------------------- leases

export type LeaseOwnerLiveness =
  | { kind: 'opaque' }
  | { kind: 'local_process'; hostId: string; bootId: string; pid: number; processStart: string };

export interface LeaseOwnerIdentity {
  ownerId: string;
  incarnationId: string;
  /** Defaults to { kind: 'opaque' } when absent. */
  liveness?: LeaseOwnerLiveness;
}

export interface SessionExecutionLease {
  sessionId: string;
  owner: LeaseOwnerIdentity;
  leaseToken: string;
  /** The lease generation: strictly increases with every fresh acquisition of the session. */
  fencingToken: number;
  claimedAtEpochMs: number;
  expiresAtEpochMs: number;
  /**
   * Set on the lease `renewSessionExecutionLease` returns when this generation was marked
   * interrupted (SPEC 3.9): stop, settle the claims and release.
   */
  interrupt?: TurnInterruptMark;
}

/**
 * What to do with the input the interrupted turn claimed (SPEC 3.9): 'interrupt' puts it back in
 * order for the next turn, 'rollback' cancels it.
 */
export type TurnInterruptPolicy = 'interrupt' | 'rollback';

/** The interrupt mark of one lease generation (SPEC 3.9). */
export interface TurnInterruptMark {
  /** The interrupted generation (the lease's fencingToken). */
  generation: number;
  policy: TurnInterruptPolicy;
  /** The caller's reason, when one was given. */
  reason?: string;
  /** The input whose enqueue (whenBusy 'interrupt' / 'rollback') marked it, when one did. */
  inputId?: string;
  /** Store time of the (latest) mark. */
  atEpochMs: number;
}

export interface RequestTurnInterruptOptions {
  /** Free text carried to the holder (at most 1024 characters). */
  reason?: string;
  /** Default 'interrupt'. */
  policy?: TurnInterruptPolicy;
}

/** The answer of requestTurnInterrupt: whether a live turn was marked. */
export type TurnInterruptOutcome =
  | { interrupted: true; generation: number; policy: TurnInterruptPolicy }
  | { interrupted: false };

export interface SessionExecutionLeaseFence {
  sessionId: string;
  owner: LeaseOwnerIdentity;
  leaseToken: string;
  fencingToken: number;
}

export type SessionExecutionLeaseCompletion = SessionExecutionLeaseFence;

export type SessionExecutionLeaseClaimOutcome =
  | {
      outcome: 'acquired';
      lease: SessionExecutionLease;
      /** Inputs this fresh acquisition moved to the next turn (T9, SPEC 3.5); absent when none. */
      requeuedTurnInputs?: number;
    }
  | { outcome: 'busy'; holder: SessionExecutionLease };

export interface SessionExecutionLeaseStore {
  tryClaimSessionExecutionLease(
    sessionId: string,
    owner: LeaseOwnerIdentity,
    leaseTtlMs: number,
  ): Promise<SessionExecutionLeaseClaimOutcome>;
  reclaimSessionExecutionLease(
    sessionId: string,
    owner: LeaseOwnerIdentity,
    observedHolder: SessionExecutionLeaseFence,
    leaseTtlMs: number,
  ): Promise<SessionExecutionLeaseClaimOutcome>;
  renewSessionExecutionLease(fence: SessionExecutionLeaseFence, leaseTtlMs: number): Promise<SessionExecutionLease>;
  releaseSessionExecutionLease(completion: SessionExecutionLeaseCompletion): Promise<void>;
  /**
   * The stop button (SPEC 3.9): marks the live generation, if any, interrupted. Its holder learns
   * it from its next claim (TurnInterrupted), its next renewal (`lease.interrupt`) and, on Redis,
   * at once through pub/sub. No lease live: nothing is written and `{ interrupted: false }`.
   */
  requestTurnInterrupt(sessionId: string, options?: RequestTurnInterruptOptions): Promise<TurnInterruptOutcome>;
}

// ---------------------------------------------------------------- pending turn inputs

export type CheckpointKind = 'after_work' | 'before_completion';

export type TurnInputIngress =
  | { scope: 'active_turn'; turnId: string /** Defaults to 'after_work'. */; minBoundary?: CheckpointKind }
  | { scope: 'next_turn' };

/**
 * `cancelled`, `completed` and `failed` are terminal (tombstones). `failed`: the input's runs
 * failed `maxAttempts` times (SPEC 3.8); retryFailedTurnInputs puts it back, cancel cancels it.
 */
export type TurnInputState =
  | 'pending_active'
  | 'deferred_next_turn'
  | 'accepted'
  | 'cancelled'
  | 'completed'
  | 'failed';

/** `TInput`: the store's payload type (JsonValue unless the store was created with one). */
export interface PendingTurnInputDraft<TInput = JsonValue> {
  sessionId: string;
  /** Caller-chosen id; the store generates one when absent. */
  inputId?: string;
  /** Idempotency key of one submitted revision, unique per session. */
  sourceKey?: string;
  ingress: TurnInputIngress;
  /** The model-visible input, opaque to the store (any JSON value). */
  input: TInput;
  /**
   * What to do when a live lease holds the session (SPEC 5.1, 3.8). 'enqueue' (default): queue
   * it. 'reject': fail with SessionBusy, nothing written. 'interrupt': queue it and mark the live
   * generation interrupted (its claimed input goes back, in order, ahead of this one). 'rollback':
   * as 'interrupt', and the interrupted turn's claimed input is cancelled. Anything but 'enqueue'
   * needs `ingress: { scope: 'next_turn' }`. A source-key replay answers as always, whatever this says.
   */
  whenBusy?: WhenBusy;
}

export type WhenBusy = 'enqueue' | 'reject' | 'interrupt' | 'rollback';

export interface PendingTurnInput<TInput = JsonValue> {
  inputId: string;
  sessionId: string;
  /** Store-assigned admission order; strictly increasing, never reused. */
  enqueueSeq: number;
  sourceKey?: string;
  ingress: TurnInputIngress;
  state: TurnInputState;
  enqueuedAtMs: number;
  input: TInput;
  /**
   * Failed runs counted against this input (SPEC 3.8): set, with `lastError`, on the inputs of a
   * claim and of listFailedTurnInputs when the input has failed at least once; absent otherwise.
   */
  attempts?: number;
  /** The error text of the input's last failed run (at most 1000 characters), with `attempts`. */
  lastError?: string;
  /**
   * The W3C trace context of the span that enqueued the input (SPEC 17), stored in the input's
   * write-once record. Present only when an OpenTelemetry SDK was recording a span at enqueue.
   */
  traceContext?: TraceContext;
}

/** A W3C trace context (https://www.w3.org/TR/trace-context/), as its two header values. */
export interface TraceContext {
  traceparent: string;
  tracestate?: string;
}

/** A failed run, reported when abandoning its claims (SPEC 3.8). */
export interface TurnInputFailureReport {
  /** The run's error as text; stored truncated to its first 1000 characters. */
  error: string;
  /** An input whose attempts reach this, in a run that had it alone, becomes `failed`. 1..1000. */
  maxAttempts: number;
}

export interface AbandonTurnInputClaimOptions {
  /** The claims are abandoned because their run failed: count an attempt for each claimed input. */
  failure?: TurnInputFailureReport;
}

export type FailedTurnInputRetryOutcome<TInput = JsonValue> =
  | { outcome: 'retried'; input: PendingTurnInput<TInput> }
  | { outcome: 'not_failed'; input: PendingTurnInput<TInput> }
  | { outcome: 'not_found' };

export interface FailedTurnInputRetryResult<TInput = JsonValue> {
  inputId: string;
  outcome: FailedTurnInputRetryOutcome<TInput>;
}

export type PendingTurnInputCancelTarget = { kind: 'input_id'; value: string } | { kind: 'source_key'; value: string };

export interface PendingTurnInputClaimDiagnostics {
  state: TurnInputState;
  claimId?: string;
  claimOwner?: LeaseOwnerIdentity;
  /** The session-lease generation the claim pinned. */
  claimSessionLeaseGeneration?: number;
  /** The row's own claim counter: +1 on every claim of the row, never reset. */
  claimFencingToken: number;
}

export type PendingTurnInputCancelOutcome<TInput = JsonValue> =
  | { outcome: 'cancelled'; input: PendingTurnInput<TInput> }
  | { outcome: 'already_claimed'; input: PendingTurnInput<TInput>; claim?: PendingTurnInputClaimDiagnostics }
  | { outcome: 'already_completed'; input: PendingTurnInput<TInput> }
  | { outcome: 'already_cancelled'; input: PendingTurnInput<TInput> }
  | { outcome: 'not_found' };

export interface PendingTurnInputCancelResult<TInput = JsonValue> {
  target: PendingTurnInputCancelTarget;
  outcome: PendingTurnInputCancelOutcome<TInput>;
}

export type PendingTurnInputSuffixCancelOutcome<TInput = JsonValue> =
  | { outcome: 'anchor_not_found'; anchor: PendingTurnInputCancelTarget }
  | { outcome: 'outcomes'; anchor: PendingTurnInputCancelTarget; outcomes: PendingTurnInputCancelOutcome<TInput>[] };

export type TurnInputClaimMode =
  | { kind: 'active_turn'; turnId: string; checkpoint: CheckpointKind }
  | { kind: 'next_turn' };

export interface TurnInputClaim<TInput = JsonValue> {
  sessionId: string;
  claimId: string;
  owner: LeaseOwnerIdentity;
  /** The claim token: completion and abandon must present it. */
  leaseToken: string;
  /** The first claimed row's claim counter after this claim. */
  fencingToken: number;
  /** The fence.fencingToken the claim was taken under; live while that generation holds the lease. */
  sessionLeaseGeneration: number;
  claimedAtEpochMs: number;
  /** claimedAtEpochMs + leaseTtlMs: a stall deadline, reported, never a revocation. */
  expiresAtEpochMs: number;
  mode: TurnInputClaimMode;
  /** In enqueueSeq order, with the state written by the claim. */
  inputs: PendingTurnInput<TInput>[];
}

export interface TurnInputCompletion {
  sessionId: string;
  claimId: string;
  leaseToken: string;
  inputIds: string[];
}

export interface ClaimActiveTurnInputsRequest {
  sessionId: string;
  fence: SessionExecutionLeaseFence;
  owner: LeaseOwnerIdentity;
  turnId: string;
  checkpoint: CheckpointKind;
  leaseTtlMs: number;
  maxInputs: number;
}

export interface ClaimNextTurnInputsRequest {
  sessionId: string;
  fence: SessionExecutionLeaseFence;
  owner: LeaseOwnerIdentity;
  leaseTtlMs: number;
  maxInputs: number;
}

export interface TurnInputStore<TInput = JsonValue> {
  enqueuePendingTurnInput(draft: PendingTurnInputDraft<TInput>): Promise<PendingTurnInput<TInput>>;
  listPendingTurnInputs(sessionId: string): Promise<PendingTurnInput<TInput>[]>;
  cancelPendingTurnInputs(
    sessionId: string,
    targets: PendingTurnInputCancelTarget[],
  ): Promise<PendingTurnInputCancelResult<TInput>[]>;
  /** Exactly cancelPendingTurnInputs with one input_id target. */
  cancelPendingTurnInput(sessionId: string, inputId: string): Promise<PendingTurnInputCancelOutcome<TInput>>;
  cancelPendingTurnInputSuffix(
    sessionId: string,
    anchor: PendingTurnInputCancelTarget,
  ): Promise<PendingTurnInputSuffixCancelOutcome<TInput>>;
  claimActiveTurnInputs(request: ClaimActiveTurnInputsRequest): Promise<TurnInputClaim<TInput> | null>;
  claimNextTurnInputs(request: ClaimNextTurnInputsRequest): Promise<TurnInputClaim<TInput> | null>;
  abandonTurnInputClaim(claim: TurnInputClaim<TInput>, options?: AbandonTurnInputClaimOptions): Promise<void>;
  abandonTurnInputClaims(claims: TurnInputClaim<TInput>[], options?: AbandonTurnInputClaimOptions): Promise<void>;
  /** The session's `failed` inputs, ascending enqueueSeq, each with `attempts` and `lastError`. */
  listFailedTurnInputs(sessionId: string): Promise<PendingTurnInput<TInput>[]>;
  /**
   * Moves `failed` inputs back to `deferred_next_turn` at their original position (enqueueSeq
   * kept), attempts reset; one outcome per id, in order. One atomic step.
   */
  retryFailedTurnInputs(sessionId: string, inputIds: string[]): Promise<FailedTurnInputRetryResult<TInput>[]>;
}

// ---------------------------------------------------------------- session commit

export interface SessionNodeRecord {
  nodeId: string;
  parentNodeId?: string;
  timestamp: string;
  /** Everything else the runtime puts on a node is kept verbatim. */
  [field: string]: JsonValue | undefined;
}

export interface SessionGraph {
  nodes: SessionNodeRecord[];
  leafNodeId?: string;
}

export type GraphCommitDelta =
  | { kind: 'unchanged'; leafNodeId?: string }
  | { kind: 'append'; nodes: SessionNodeRecord[]; leafNodeId?: string }
  | { kind: 'replace_full'; graph: SessionGraph };

/** What the runtime sends: refs, and the snapshots that changed. */
export interface HydratedSessionCheckpoint {
  turnState: JsonValue;
  toolStateRef?: string;
  toolState?: JsonValue;
  pluginSnapshotRef?: string;
  pluginSnapshot?: JsonValue;
  pluginSnapshotRevision?: number;
  executionStateRef?: string;
  executionState?: Uint8Array;
}

/** What the store keeps as the checkpoint manifest: refs only. */
export interface SessionCheckpoint {
  schemaVersion: 1;
  turnState: JsonValue;
  toolStateRef?: string;
  pluginSnapshotRef?: string;
  pluginSnapshotRevision?: number;
  executionStateRef?: string;
}

export interface TokenUsage {
  inputTokens: number;
  outputTokens: number;
  cacheReadInputTokens: number;
  cacheWriteInputTokens: number;
  reasoningOutputTokens: number;
}

export interface TokenLedgerEntry {
  source: string;
  model: string;
  usage: TokenUsage;
}

export interface RuntimeTurnCommitStamp {
  sessionId: string;
  turnId: string;
  turnCommitHash: string;
}

export interface QueuedWorkCompletion {
  sessionId: string;
  claimId: string;
  leaseToken: string;
  batchIds: string[];
}

export interface RuntimeCommit {
  sessionId: string;
  /** Absent: no compare-and-set on the head revision. */
  expectedHeadRevision?: number;
  sessionExecutionLease?: SessionExecutionLeaseFence;
  releaseSessionExecutionLease?: SessionExecutionLeaseCompletion;
  config: JsonValue;
  agentFrames: JsonValue[];
  currentAgentFrameId: string;
  graph: GraphCommitDelta;
  checkpoint: HydratedSessionCheckpoint;
  usageDeltas: TokenLedgerEntry[];
  turnCommit?: RuntimeTurnCommitStamp;
  /** Settles claims of a queued-work store; neither backend has one, so a non-empty list is superseded. */
  completedQueueClaims?: QueuedWorkCompletion[];
  completedTurnInputClaims: TurnInputCompletion[];
  interruptedTurnInputTurnId?: string;
  committedAttachmentIds: string[];
}

export interface RuntimeCommitResult {
  headRevision: number;
  checkpointRef: string;
  manifest: SessionCheckpoint;
}

export type SessionReadScope = { kind: 'full_graph' } | { kind: 'active_path'; leafNodeId?: string };

export interface PersistedSessionRead {
  sessionId: string;
  headRevision: number;
  config: JsonValue;
  agentFrames: JsonValue[];
  currentAgentFrameId: string;
  graph: SessionGraph;
  checkpointRef?: string;
  checkpoint?: HydratedSessionCheckpoint;
  tokenLedger: TokenLedgerEntry[];
}

export type SessionRelation = { kind: 'root' } | { kind: 'child'; parentSessionId: string; causedBy?: JsonValue };

export interface SessionMeta {
  sessionId: string;
  sessionName: string;
  createdAt: string;
  model: string;
  cwd?: string;
  relation: SessionRelation;
}

export type DurabilityTier = 'inline' | 'durable';

// ---------------------------------------------------------------- attachment manifest

export interface AttachmentIntent {
  attachmentId: string;
  sessionId: string;
  canonicalUri: string;
  intentAtEpochMs: number;
}

export interface AttachmentManifestEntry extends AttachmentIntent {
  committedAtEpochMs?: number;
}

export interface AttachmentManifest {
  recordIntent(intent: AttachmentIntent): Promise<void>;
  commitRefs(sessionId: string, attachmentIds: string[]): Promise<void>;
  listUncommitted(olderThanEpochMs: number): Promise<AttachmentManifestEntry[]>;
  forgetAgedUncommittedIntents(cutoffEpochMs: number): Promise<number>;
  hasLiveRefForId(attachmentId: string, cutoffEpochMs: number): Promise<boolean>;
  forget(sessionId: string, attachmentId: string): Promise<void>;
  holdsRef(sessionId: string, attachmentId: string): Promise<boolean>;
  listAllRefs(): Promise<string[]>;
}

/** Bound to one session id: commitRuntimeState for any other id fails with SessionBindingMismatch. */
export interface SessionCommitStore extends AttachmentManifest {
  readonly sessionId: string;
  durabilityTier(): DurabilityTier;
  loadSession(scope: SessionReadScope): Promise<PersistedSessionRead | null>;
  loadNode(nodeId: string): Promise<SessionNodeRecord | null>;
  commitRuntimeState(commit: RuntimeCommit): Promise<RuntimeCommitResult>;
  saveSessionMeta(meta: SessionMeta): Promise<void>;
  loadSessionMeta(): Promise<SessionMeta | null>;
}

// ---------------------------------------------------------------- entry points

/** Everything one backend offers: the lease lane, turn inputs, and per-session commit stores. */
export interface RuntimeStore<TInput = JsonValue> extends TurnInputStore<TInput>, SessionExecutionLeaseStore {
  /** The commit/read facet bound to one session (cheap; no I/O). */
  session(sessionId: string): SessionCommitStore;
  durabilityTier(): DurabilityTier;
  /**
   * Removes cancelled/completed/failed input tombstones older than the cutoff; returns how many. With
   * `sessionRetentionMs` set, also deletes the sessions idle that long (SPEC 8.5).
   */
  vacuum(options?: { olderThanMs?: number }): Promise<VacuumResult>;
  /**
   * Deletes every stored trace of one session in one atomic step (SPEC 8.4): rows, lease,
   * settled state, meta, its attachment-manifest entries and its members of the store-wide
   * indexes. Refused with `SessionBusy` while a lease is live, unless `force`, which fences the
   * holder out. A missing session is a no-op.
   */
  deleteSession(sessionId: string, options?: DeleteSessionOptions): Promise<SessionDeletion>;
  /**
   * Gauge figures of the whole store (SPEC 17.4): one read-only script per shard on Redis, every
   * master of a Cluster. Figures are taken on each shard's clock; shards are read one after another.
   */
  stats(): Promise<StoreStats>;
  /**
   * Pauses one session's dispatch (issue 18): enqueues are still accepted, but no new turn starts:
   * a fresh lease acquisition (tryClaim, reclaim) rejects with `SessionPaused` until
   * resumeSessionDispatch. A turn already running carries on (its re-entry and renewals work).
   * `changed` is false when it was already paused.
   */
  pauseSessionDispatch(sessionId: string): Promise<{ changed: boolean }>;
  /** Ends a pause; a session left with dispatchable input gets a wake-up (Redis). */
  resumeSessionDispatch(sessionId: string): Promise<{ changed: boolean }>;
  close(): Promise<void>;
}

/** What stats() reports (SPEC 17.4). */
export interface StoreStats {
  /** Sessions with at least one pending input (`deferred_next_turn` or `pending_active`). */
  sessionsWithPendingInput: number;
  /** Inputs in `deferred_next_turn` or `pending_active`. */
  pendingInputs: number;
  /** now - enqueuedAtMs of the oldest pending input; 0 when there is none. */
  oldestPendingInputAgeMs: number;
  /** Sessions whose lease is live (held and not expired). */
  liveLeases: number;
  /** Live claims (under the session's live lease generation) past their stall deadline. */
  stalledClaims: number;
  /** The store clock when the figures were taken (the latest of the shards' clocks). */
  atEpochMs: number;
}

/**
 * OpenTelemetry instrumentation (SPEC 17). `@opentelemetry/api` is an optional peer: without it,
 * or without an SDK registered (and no provider given here), the store records nothing.
 */
export interface TelemetryOptions {
  /** Instrumentation off entirely (the store is not wrapped); default true. */
  enabled?: boolean;
  /** How spans carry the session id: 'raw', 'hashed' (default: sha256, first 16 hex digits) or 'omit'. */
  sessionId?: 'raw' | 'hashed' | 'omit';
  /** A TracerProvider to use instead of the global one (e.g. a test's). */
  tracerProvider?: { getTracer(name: string, version?: string): unknown };
  /** A MeterProvider to use instead of the global one. */
  meterProvider?: { getMeter(name: string, version?: string): unknown };
}

export interface DeleteSessionOptions {
  /**
   * Delete even while a lease is live. The holder is fenced out in the same step: its later
   * claims, renewals and commits fail with `SessionExecutionLeaseExpired`, its release is a no-op,
   * and the next acquisition continues the generation count (SPEC 8.4).
   */
  force?: boolean;
}

/** What deleteSession removed. */
export interface SessionDeletion {
  sessionId: string;
  /** false: nothing of the session was stored, and the call changed nothing that matters. */
  existed: boolean;
  /** Input rows removed, in any state (pending, claimed, tombstones). */
  removedTurnInputs: number;
  /** Whether the session had settled state (a head revision, graph, blobs, stamps). */
  removedSettledState: boolean;
  /** The attachment ids of the session's manifest entries, now removed; ascending. */
  removedAttachmentIds: string[];
  /**
   * The subset of removedAttachmentIds that no other session holds an entry for any more: the
   * blobs the host may delete (re-check with hasLiveRefForId first if other sessions may
   * record intents for the same ids concurrently). Ascending.
   */
  unreferencedAttachmentIds: string[];
  /**
   * Present when the call left a lease fence: the last generation, which a fenced holder can no
   * longer use and the next acquisition exceeds.
   */
  fencedGeneration?: number;
}

export interface VacuumResult {
  removedPendingTurnInputTombstones: number;
  /** Only with `sessionRetentionMs`: the idle sessions deleted (SPEC 8.5). */
  removedIdleSessions?: number;
  /** Only with `sessionRetentionMs`: unreferencedAttachmentIds of those deletions, ascending. */
  unreferencedAttachmentIds?: string[];
}

export interface RedisRuntimeStoreOptions {
  /**
   * A redis:// or rediss:// URL, or an ioredis client (standalone `Redis` or `Cluster`) you built.
   * Default: REDIS_URL, else redis://127.0.0.1:6379.
   */
  redis?: string | Redis | Cluster;
  /**
   * How long creation waits for Redis to answer before it rejects with `Backend` naming the server
   * and the cause; default 10000. Bounds a client you pass too (ioredis's defaults alone retry for
   * over a minute); calls after creation are bounded by your client's own retry options.
   */
  connectTimeoutMs?: number;
  /** Key namespace; default 'rts'. Two stores with different prefixes never see each other's data. */
  keyPrefix?: string;
  /** 'auto' (default) reports 'durable' only when the server's persistence makes it true. */
  durability?: 'auto' | 'durable' | 'inline';
  /** What a fresh lease generation does with input of dead turns (accepted, pending_active); default 'requeue'. */
  strandedTurnInputs?: 'requeue' | 'keep';
  /**
   * With 'requeue': how long active-turn input enqueued while no lease is live may wait for a turn
   * to take it (SPEC 3.5, T9). A fresh acquisition within this time adopts it (if that generation
   * ends without admitting it, the next acquisition moves it to the next turn); after it, the next
   * acquisition moves it at once, and the dispatch sweeper wakes the session. Set it to the lease
   * TTL your workers use. 0..86400000, default 30000.
   */
  activeInputGraceMs?: number;
  /** How long cancelled/completed/failed inputs are kept for source-key idempotency; default 7 days. */
  tombstoneRetentionMs?: number;
  /** Send BullMQ idle-dispatch wake-ups; default true. The dispatch index is kept either way. */
  idleDispatch?: boolean;
  /**
   * Idle-session expiry, default off: `vacuum()` deletes sessions without an enqueue, lease or
   * commit for this long (SPEC 8.5). Costs one ZADD per enqueue, fresh lease acquisition, release
   * and commit; with it unset those scripts send no extra key and make no extra call.
   */
  sessionRetentionMs?: number;
  /**
   * How the connection the store opens (from a URL) writes commands. 'coalesce' (default): the
   * commands of one event-loop tick are joined and written in pieces of about 2 KB (the socket's
   * `write` is wrapped, so its backpressure signal is not seen); 'off': ioredis's own behaviour,
   * one write per command. Refused with a client you pass, which keeps its own settings. Why the
   * default, measured: docs/DECISIONS.md.
   */
  writeBatching?: 'coalesce' | 'off';
  /** OpenTelemetry spans and metrics (SPEC 17); a no-op without an SDK. */
  telemetry?: TelemetryOptions;
  /**
   * Queue cap (issue 18): an enqueue that would leave the session with more than this many
   * non-terminal inputs (pending, deferred or accepted) fails with PendingTurnInputQueueFull
   * { sessionId, limit }, writing nothing. 1..1000000; default none.
   */
  maxPendingPerSession?: number;
  /**
   * Input expiry (issue 18): input still unclaimed this long after its enqueue becomes a cancelled
   * tombstone with reason 'expired' (inspect counts them), applied before every claim and list.
   * 1..2592000000 (30 days); default none.
   */
  pendingTtlMs?: number;
}

export interface InMemoryRuntimeStoreOptions {
  now?: () => number;
  strandedTurnInputs?: 'requeue' | 'keep';
  /** As for the Redis store: SPEC 3.5, T9. Default 30000. */
  activeInputGraceMs?: number;
  tombstoneRetentionMs?: number;
  /** Idle-session expiry by vacuum(), default off (SPEC 8.5). */
  sessionRetentionMs?: number;
  /** OpenTelemetry spans and metrics (SPEC 17); a no-op without an SDK. */
  telemetry?: TelemetryOptions;
  /**
   * Queue cap (issue 18): an enqueue that would leave the session with more than this many
   * non-terminal inputs (pending, deferred or accepted) fails with PendingTurnInputQueueFull
   * { sessionId, limit }, writing nothing. 1..1000000; default none.
   */
  maxPendingPerSession?: number;
  /**
   * Input expiry (issue 18): input still unclaimed this long after its enqueue becomes a cancelled
   * tombstone with reason 'expired' (inspect counts them), applied before every claim and list.
   * 1..2592000000 (30 days); default none.
   */
  pendingTtlMs?: number;
}
