/**
 * createRedisRuntimeStore: validates options, connects, refuses Redis < 6.2, registers the Lua
 * scripts, checks the layout version, resolves the durability tier, and assembles the store from
 * the operation modules. Every method is one script call (SPEC 10.5).
 */

import { Cluster, Redis } from 'ioredis';
import { args } from '../contract/arguments.js';
import { invalidInput, StoreError } from '../contract/errors.js';
import { parseArg, redisOptionsSchema } from '../contract/schemas.js';
import type {
  AbandonTurnInputClaimOptions,
  ClaimActiveTurnInputsRequest,
  ClaimNextTurnInputsRequest,
  DeleteSessionOptions,
  DurabilityTier,
  FailedTurnInputRetryResult,
  JsonPayload,
  JsonValue,
  LeaseOwnerIdentity,
  PendingTurnInput,
  PendingTurnInputCancelOutcome,
  PendingTurnInputCancelResult,
  PendingTurnInputCancelTarget,
  PendingTurnInputDraft,
  PendingTurnInputSuffixCancelOutcome,
  RedisRuntimeStoreOptions,
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
import { instrumentStore, telemetryOf } from '../telemetry/instrument-store.js';
import { ENQUEUE_TRACED, type TracedEnqueue, type TracedEnqueueResult } from '../telemetry/internal.js';
import { RedisSessionCommitStore } from './commit-ops.js';
import { connectionAwareError, refuseMissingDatabase, untilReady, watchConnection } from './connection-errors.js';
import { isClusterClient, type RedisClient, RedisContext } from './context.js';
import { deleteSession } from './erase-ops.js';
import { KeyLayout } from './keys.js';
import * as lease from './lease-ops.js';
import { registerScripts } from './scripts/registry.js';
import { masterNodes } from './shards.js';
import { storeStats } from './stats-ops.js';
import * as inputs from './turn-input-ops.js';
import { vacuum } from './vacuum-ops.js';
import { WakeSender } from './wake-sender.js';
import { coalesceWrites } from './write-coalescing.js';

const LAYOUT_VERSION = '3';
const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

export class RedisRuntimeStore implements RuntimeStore, TracedEnqueue {
  constructor(
    readonly ctx: RedisContext,
    private readonly tier: DurabilityTier,
    private readonly ownsClient: boolean,
    private readonly wakeSender: WakeSender | undefined,
  ) {}

  session(sessionId: string): SessionCommitStore {
    const id = args.sessionId(sessionId);
    return new RedisSessionCommitStore(this.ctx, id, this.tier);
  }

  durabilityTier(): DurabilityTier {
    return this.tier;
  }

  tryClaimSessionExecutionLease(
    sessionId: string,
    owner: LeaseOwnerIdentity,
    leaseTtlMs: number,
  ): Promise<SessionExecutionLeaseClaimOutcome> {
    return lease.tryClaimLease(this.ctx, sessionId, owner, leaseTtlMs);
  }

  reclaimSessionExecutionLease(
    sessionId: string,
    owner: LeaseOwnerIdentity,
    observedHolder: SessionExecutionLeaseFence,
    leaseTtlMs: number,
  ): Promise<SessionExecutionLeaseClaimOutcome> {
    return lease.reclaimLease(this.ctx, sessionId, owner, observedHolder, leaseTtlMs);
  }

  renewSessionExecutionLease(fence: SessionExecutionLeaseFence, leaseTtlMs: number): Promise<SessionExecutionLease> {
    return lease.renewLease(this.ctx, fence, leaseTtlMs);
  }

  releaseSessionExecutionLease(completion: SessionExecutionLeaseCompletion): Promise<void> {
    return lease.releaseLease(this.ctx, completion);
  }

  requestTurnInterrupt(sessionId: string, options?: RequestTurnInterruptOptions): Promise<TurnInterruptOutcome> {
    return lease.requestInterrupt(this.ctx, sessionId, options);
  }

  pauseSessionDispatch(sessionId: string): Promise<{ changed: boolean }> {
    return lease.pauseDispatch(this.ctx, sessionId);
  }

  resumeSessionDispatch(sessionId: string): Promise<{ changed: boolean }> {
    return lease.resumeDispatch(this.ctx, sessionId);
  }

  enqueuePendingTurnInput(draft: PendingTurnInputDraft): Promise<PendingTurnInput> {
    return inputs.enqueue(this.ctx, draft);
  }

  [ENQUEUE_TRACED](draft: PendingTurnInputDraft, trace: TraceContext | undefined): Promise<TracedEnqueueResult> {
    return inputs.enqueueTraced(this.ctx, draft, trace);
  }

  stats(): Promise<StoreStats> {
    return storeStats(this.ctx);
  }

  listPendingTurnInputs(sessionId: string): Promise<PendingTurnInput[]> {
    return inputs.list(this.ctx, sessionId);
  }

  cancelPendingTurnInputs(
    sessionId: string,
    targets: PendingTurnInputCancelTarget[],
  ): Promise<PendingTurnInputCancelResult[]> {
    return inputs.cancel(this.ctx, sessionId, targets);
  }

  async cancelPendingTurnInput(sessionId: string, inputId: string): Promise<PendingTurnInputCancelOutcome> {
    const parsed = args.cancelOne(sessionId, inputId);
    const [result] = await inputs.cancelParsed(this.ctx, parsed.sessionId, [
      { kind: 'input_id', value: parsed.inputId },
    ]);
    return result.outcome;
  }

  cancelPendingTurnInputSuffix(
    sessionId: string,
    anchor: PendingTurnInputCancelTarget,
  ): Promise<PendingTurnInputSuffixCancelOutcome> {
    return inputs.cancelSuffix(this.ctx, sessionId, anchor);
  }

  claimActiveTurnInputs(request: ClaimActiveTurnInputsRequest): Promise<TurnInputClaim | null> {
    return inputs.claimActive(this.ctx, request);
  }

  claimNextTurnInputs(request: ClaimNextTurnInputsRequest): Promise<TurnInputClaim | null> {
    return inputs.claimNext(this.ctx, request);
  }

  // async: a validation failure must reject, never throw synchronously.
  async abandonTurnInputClaim(claim: TurnInputClaim, options?: AbandonTurnInputClaimOptions): Promise<void> {
    const parsed = args.abandon(claim);
    return inputs.abandon(this.ctx, [parsed], args.abandonOptions(options));
  }

  async abandonTurnInputClaims(claims: TurnInputClaim[], options?: AbandonTurnInputClaimOptions): Promise<void> {
    const parsed = args.abandonMany(claims);
    return inputs.abandon(this.ctx, parsed, args.abandonOptions(options));
  }

  listFailedTurnInputs(sessionId: string): Promise<PendingTurnInput[]> {
    return inputs.listFailed(this.ctx, sessionId);
  }

  retryFailedTurnInputs(sessionId: string, inputIds: string[]): Promise<FailedTurnInputRetryResult[]> {
    return inputs.retryFailed(this.ctx, sessionId, inputIds);
  }

  vacuum(options?: { olderThanMs?: number }): Promise<VacuumResult> {
    return vacuum(this.ctx, options);
  }

  deleteSession(sessionId: string, options?: DeleteSessionOptions): Promise<SessionDeletion> {
    return deleteSession(this.ctx, sessionId, options);
  }

  async close(): Promise<void> {
    if (this.ctx.isClosed) return;
    await this.ctx.close();
    await this.wakeSender?.close();
    if (this.ownsClient) {
      try {
        await this.ctx.client.quit();
      } catch {
        this.ctx.client.disconnect();
      }
    }
  }
}

function isIoredisClient(value: unknown): value is RedisClient {
  return (
    value instanceof Redis ||
    value instanceof Cluster ||
    (typeof value === 'object' &&
      value !== null &&
      typeof (value as { defineCommand?: unknown }).defineCommand === 'function' &&
      typeof (value as { evalsha?: unknown }).evalsha === 'function')
  );
}

function clientKeyPrefix(client: RedisClient): unknown {
  const o = (client as unknown as { options?: Record<string, unknown> }).options ?? {};
  const nested = (o.redisOptions as Record<string, unknown> | undefined) ?? {};
  return o.keyPrefix ?? nested.keyPrefix;
}

/** A standalone client on a cluster-mode server would fail every call with MOVED/CROSSSLOT later. */
async function refuseClusterServerOnPlainClient(client: RedisClient, isCluster: boolean): Promise<void> {
  if (isCluster) return;
  const info = await client.info('cluster');
  if (/cluster_enabled:1/.test(info)) {
    throw invalidInput([
      'redis: the server runs in cluster mode; pass an ioredis Cluster client (new Cluster([...])) instead of a URL or a standalone client',
    ]);
  }
}

async function serverVersionOk(client: RedisClient): Promise<string> {
  const info = await client.info('server');
  const m = /redis_version:(\d+)\.(\d+)/.exec(info);
  if (!m) throw new StoreError('Backend', { cause: 'could not read redis_version from INFO server' });
  const [major, minor] = [Number(m[1]), Number(m[2])];
  if (major < 6 || (major === 6 && minor < 2)) {
    throw new StoreError('Backend', { cause: `Redis ${m[1]}.${m[2]} is older than the required 6.2` });
  }
  return `${major}.${minor}`;
}

async function primaries(client: RedisClient): Promise<Redis[]> {
  return masterNodes(client as Redis | Cluster);
}

async function configValue(node: Redis, name: string): Promise<string | undefined> {
  const reply = (await node.config('GET', name)) as string[];
  return reply[1];
}

/** SPEC 12: 'durable' only with appendonly yes and appendfsync always on every primary. */
async function resolveTier(client: RedisClient, option: 'auto' | 'durable' | 'inline'): Promise<DurabilityTier> {
  if (option !== 'auto') return option;
  try {
    const nodes = await primaries(client);
    if (nodes.length === 0) return 'inline';
    for (const node of nodes) {
      if ((await configValue(node, 'appendonly')) !== 'yes') return 'inline';
      if ((await configValue(node, 'appendfsync')) !== 'always') return 'inline';
    }
    return 'durable';
  } catch (e) {
    process.emitWarning(
      `redis-turn-store: CONFIG GET was refused (${(e as Error).message}); reporting durability tier 'inline'`,
      { code: 'RTS_DURABILITY_UNKNOWN' },
    );
    return 'inline';
  }
}

async function checkLayout(client: RedisClient, layout: KeyLayout): Promise<void> {
  const key = layout.layoutKey();
  await client.set(key, LAYOUT_VERSION, 'NX');
  const actual = await client.get(key);
  if (actual !== LAYOUT_VERSION) {
    throw new StoreError('UnsupportedRecordSchemaVersion', {
      recordKind: 'key_layout',
      actual,
      expected: Number(LAYOUT_VERSION),
    });
  }
}

/**
 * `TInput` types the payloads (`input`) of drafts, listed rows and claims; default JsonValue. Any
 * JSON-shaped type is accepted, interfaces included (see JsonPayload). The store does not check
 * payloads against it at run time beyond their being JSON.
 */
export async function createRedisRuntimeStore<TInput extends JsonPayload<TInput> = JsonValue>(
  options: RedisRuntimeStoreOptions = {},
): Promise<RuntimeStore<TInput>> {
  const opts = parseArg(redisOptionsSchema, options ?? {}, 'options');
  const given = opts.redis;
  if (given !== undefined && typeof given !== 'string' && !isIoredisClient(given)) {
    throw invalidInput(['options.redis: must be an ioredis client (standalone or Cluster) or a redis:// URL']);
  }
  if (typeof given === 'string' && !/^rediss?:\/\//.test(given)) {
    throw invalidInput(['options.redis: a URL must start with redis:// or rediss://']);
  }
  if (
    given !== undefined &&
    typeof given !== 'string' &&
    clientKeyPrefix(given) !== undefined &&
    clientKeyPrefix(given) !== ''
  ) {
    throw invalidInput(["options.redis: the client must not set ioredis's own keyPrefix; use options.keyPrefix"]);
  }
  const ownsClient = given === undefined || typeof given === 'string';
  if (!ownsClient && opts.writeBatching !== undefined) {
    throw invalidInput(['options.writeBatching: applies only to a connection the store opens (a URL)']);
  }
  const connectTimeoutMs = opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const client: RedisClient =
    typeof given === 'object'
      ? given
      : new Redis((given as string | undefined) ?? process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', {
          lazyConnect: true,
          maxRetriesPerRequest: 2,
          connectTimeout: connectTimeoutMs,
        });
  // The store's own client: its connection errors (also what stops ioredis printing "Unhandled
  // error event") are remembered, so a failed call names the server and the system cause. A
  // caller's client is watched only while the store is created (its error events stay the caller's).
  const stopWatching = watchConnection(client);
  const isCluster = isClusterClient(client);
  // Only a client the store made: a caller's client keeps its own write behaviour.
  if (ownsClient && !isCluster && opts.writeBatching !== 'off') coalesceWrites(client as Redis);
  const layout = new KeyLayout(opts.keyPrefix ?? 'rts', isCluster ? 'cluster' : 'standalone');
  const settings = {
    keyPrefix: layout.prefix,
    strandedTurnInputs: opts.strandedTurnInputs ?? 'requeue',
    activeInputGraceMs: opts.activeInputGraceMs ?? DEFAULT_ACTIVE_INPUT_GRACE_MS,
    tombstoneRetentionMs: opts.tombstoneRetentionMs ?? DEFAULT_TOMBSTONE_RETENTION_MS,
    idleDispatch: opts.idleDispatch ?? true,
    sessionRetentionMs: opts.sessionRetentionMs,
    maxPendingPerSession: opts.maxPendingPerSession,
    pendingTtlMs: opts.pendingTtlMs,
  } as const;
  try {
    if (ownsClient) {
      try {
        await (client as Redis).connect();
      } catch (e) {
        throw connectionAwareError(client, e);
      }
    } else {
      await untilReady(client, connectTimeoutMs);
      stopWatching();
    }
    await refuseMissingDatabase(client);
    await serverVersionOk(client);
    await refuseClusterServerOnPlainClient(client, isCluster);
    registerScripts(client);
    await checkLayout(client, layout);
    const tier = await resolveTier(client, opts.durability ?? 'auto');
    const wakeSender = settings.idleDispatch ? new WakeSender(client, layout) : undefined;
    let onWake: (() => void) | undefined;
    const ctx = new RedisContext(client, layout, settings, (sessionId) => {
      if (wakeSender === undefined) return;
      wakeSender.send(sessionId);
      onWake?.();
    });
    const bare: RuntimeStore = new RedisRuntimeStore(ctx, tier, ownsClient, wakeSender);
    // SPEC 17: spans and metrics when @opentelemetry/api is installed (a no-op without an SDK).
    const store = await instrumentStore(bare, opts.telemetry);
    const telemetry = telemetryOf(store);
    if (telemetry !== undefined) onWake = () => telemetry.count('wakeupsSent');
    return store as unknown as RuntimeStore<TInput>;
  } catch (e) {
    if (ownsClient) client.disconnect();
    else stopWatching();
    throw connectionAwareError(client, e);
  }
}
