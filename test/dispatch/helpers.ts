/**
 * Shared set-up for the idle-dispatch tests: a Redis store per test prefix, BullMQ connections,
 * a queue handle to look at the dispatch queue, a tiny turn that appends one node per input, and
 * graph read-back for exactly-once checks. Everything opened here closes when the test finishes
 * (before the prefix's keys are dropped).
 */
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import type { TestContext } from 'vitest';
import type {
  LeaseOwnerIdentity,
  RuntimeCommit,
  RuntimeStore,
  SessionNodeRecord,
  TelemetryOptions,
} from '../../src/contract/types.js';
import {
  createIdleDispatchWorker,
  type IdleDispatchEvent,
  type IdleDispatchWorker,
  type IdleDispatchWorkerOptions,
  type RunTurn,
} from '../../src/dispatch/index.js';
import { createRedisRuntimeStore, type RedisRuntimeStore } from '../../src/redis/redis-store.js';
import { redisUrl, testPrefix } from '../support/prefix.js';

export function owner(name: string): LeaseOwnerIdentity {
  return { ownerId: name, incarnationId: `${name}:1`, liveness: { kind: 'opaque' } };
}

export async function openStore(
  ctx: TestContext,
  prefix: string,
  options: {
    idleDispatch?: boolean;
    strandedTurnInputs?: 'requeue' | 'keep';
    activeInputGraceMs?: number;
    telemetry?: TelemetryOptions;
  } = {},
): Promise<RedisRuntimeStore> {
  const store = await createRedisRuntimeStore({
    redis: redisUrl(),
    keyPrefix: prefix,
    durability: 'inline',
    ...options,
  });
  ctx.onTestFinished(() => store.close());
  return store as RedisRuntimeStore;
}

export async function freshStore(
  ctx: TestContext,
  options: { idleDispatch?: boolean; strandedTurnInputs?: 'requeue' | 'keep'; activeInputGraceMs?: number } = {},
): Promise<{ store: RedisRuntimeStore; prefix: string }> {
  const prefix = testPrefix(ctx);
  return { store: await openStore(ctx, prefix, options), prefix };
}

/** A BullMQ-ready connection (maxRetriesPerRequest: null), quit when the test finishes. */
export function bullConnection(ctx: TestContext): Redis {
  const c = new Redis(redisUrl(), { maxRetriesPerRequest: null });
  ctx.onTestFinished(async () => {
    await c.quit().catch(() => c.disconnect());
  });
  return c;
}

/** A handle on the store's dispatch queue for assertions. */
export function dispatchQueue(ctx: TestContext, prefix: string): Queue {
  const q = new Queue(`${prefix}-idle-dispatch`, { connection: bullConnection(ctx) as never, prefix: `{${prefix}}` });
  ctx.onTestFinished(() => q.close());
  return q;
}

export interface StartedWorker {
  dispatch: IdleDispatchWorker;
  events: IdleDispatchEvent[];
}

/** Starts a worker (closed when the test finishes) that records its events. */
export async function startWorker(
  ctx: TestContext,
  store: RuntimeStore,
  name: string,
  runTurn: RunTurn,
  options: Partial<IdleDispatchWorkerOptions> = {},
): Promise<StartedWorker> {
  const events: IdleDispatchEvent[] = [];
  const dispatch = createIdleDispatchWorker({
    store,
    connection: bullConnection(ctx),
    owner: owner(name),
    leaseTtlMs: 5000,
    runTurn,
    sweepIntervalMs: 60_000,
    ...options,
    onEvent: (e) => {
      events.push(e);
      options.onEvent?.(e);
    },
  });
  ctx.onTestFinished(() => dispatch.close());
  await dispatch.waitUntilReady();
  return { dispatch, events };
}

/** A turn that appends one `user` node per claimed input and commits (the worker adds the rest). */
export function appendTurn(
  store: RuntimeStore,
  extra: (sessionId: string) => Record<string, unknown> = () => ({}),
): RunTurn {
  return async ({ sessionId, claim }) => {
    const head = await store.session(sessionId).loadSession({ kind: 'active_path' });
    let leaf = head?.graph.leafNodeId;
    const nodes: SessionNodeRecord[] = [];
    for (const input of claim.inputs) {
      const node: SessionNodeRecord = { nodeId: `u-${input.inputId}`, timestamp: 't', inputId: input.inputId };
      if (leaf) node.parentNodeId = leaf;
      nodes.push(node);
      leaf = node.nodeId;
    }
    return turnCommit(sessionId, nodes, leaf, head?.headRevision ?? 0, extra(sessionId));
  };
}

export function turnCommit(
  sessionId: string,
  nodes: SessionNodeRecord[],
  leafNodeId: string | undefined,
  expectedHeadRevision: number,
  config: Record<string, unknown> = {},
): RuntimeCommit {
  return {
    sessionId,
    expectedHeadRevision,
    config: config as never,
    agentFrames: [],
    currentAgentFrameId: 'main',
    graph: leafNodeId ? { kind: 'append', nodes, leafNodeId } : { kind: 'append', nodes },
    checkpoint: { turnState: null },
    usageDeltas: [],
    completedTurnInputClaims: [],
    committedAttachmentIds: [],
  };
}

/** How many times each input id appears in the session's graph. */
export async function inputsInGraph(store: RuntimeStore, sessionId: string): Promise<Map<string, number>> {
  const read = await store.session(sessionId).loadSession({ kind: 'full_graph' });
  const counts = new Map<string, number>();
  for (const node of read?.graph.nodes ?? []) {
    if (typeof node.inputId === 'string') counts.set(node.inputId, (counts.get(node.inputId) ?? 0) + 1);
  }
  return counts;
}

export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 10_000,
  everyMs = 25,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** A promise with its resolve function, for gating a turn. */
export function gate(): { promise: Promise<void>; open(): void } {
  let open!: () => void;
  const promise = new Promise<void>((r) => {
    open = r;
  });
  return { promise, open };
}
