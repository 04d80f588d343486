/**
 * The Redis store on a real 3-master Redis Cluster (SPEC 10.2-10.4, 11, 12):
 *   - 1000 sessions spread over every master (the distribution is printed);
 *   - a full workload on each of them with no CROSSSLOT/MOVED (or any other) error escaping;
 *   - store-wide features across masters: attachment manifest queries, the dispatch sweeper,
 *     vacuum; the BullMQ dispatch queue's keys all in one slot;
 *   - a failover drill on a cluster of its own: one master stopped, sessions of the surviving
 *     masters carry on, sessions of the stopped master reject with Backend (never hang), and come
 *     back (with their acknowledged writes, AOF always) once the master returns.
 */
import type { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { isStoreError, StoreError } from '../../src/contract/errors.js';
import type {
  LeaseOwnerIdentity,
  RuntimeCommit,
  RuntimeStore,
  SessionExecutionLease,
  TurnInputClaim,
} from '../../src/contract/types.js';
import { claimCompletion, leaseCompletion, leaseFence } from '../../src/core/projections.js';
import { sweepDispatchIndex } from '../../src/dispatch/sweeper.js';
import { createIdleDispatchWorker } from '../../src/dispatch/worker.js';
import { keySlot } from '../../src/redis/cluster-slot.js';
import type { RedisContext } from '../../src/redis/context.js';
import { encodeId } from '../../src/redis/key-encoding.js';
import { createRedisRuntimeStore } from '../../src/redis/redis-store.js';
import { clusterNodes, dropPrefix, prefixFor, sharedCluster } from '../support/prefix.js';
import {
  clusterClient,
  parseNodes,
  readSlotMap,
  type SlotMap,
  type SpawnedCluster,
  startCluster,
  TEST_CLUSTER_OPTIONS,
  waitForClusterOk,
} from './cluster-harness.js';

type RedisStore = RuntimeStore & { readonly ctx: RedisContext };

const N = 1000;
const TTL = 60_000;
const CONCURRENCY = 64;

function owner(x: string): LeaseOwnerIdentity {
  return { ownerId: x, incarnationId: `${x}:1`, liveness: { kind: 'opaque' } };
}

/** Mostly plain ids, every 7th one hostile (separators, braces, %, spaces, non-ASCII). */
function sessionIdFor(i: number): string {
  return i % 7 === 0 ? `user:${i}/a b{x}}%-é` : `cl-${i}`;
}

function sessionSlot(sessionId: string): number {
  return keySlot(`{${encodeId(sessionId)}}`);
}

async function pool<T>(items: T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await work(items[next++]);
    }),
  );
}

/** host:port → count, over `sessionIds`, with every master present (0 when it got none). */
function distribution(map: SlotMap, sessionIds: string[]): Record<string, number> {
  const out: Record<string, number> = Object.fromEntries(map.masters.map((m) => [m, 0]));
  for (const id of sessionIds) {
    const node = map.ownerOf(sessionSlot(id)) ?? 'unserved';
    out[node] = (out[node] ?? 0) + 1;
  }
  return out;
}

/** Every key matching `pattern`, per master (SCAN on each master of the cluster). */
async function keysPerMaster(cluster: Cluster, pattern: string): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  for (const node of cluster.nodes('master')) {
    const name = `${node.options.host}:${node.options.port}`;
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      cursor = next;
      keys.push(...batch);
    } while (cursor !== '0');
    out.set(name, keys);
  }
  return out;
}

function commitFor(
  lease: SessionExecutionLease,
  claims: TurnInputClaim[],
  extra: Partial<RuntimeCommit>,
): RuntimeCommit {
  return {
    sessionId: lease.sessionId,
    sessionExecutionLease: leaseFence(lease),
    config: { model: 'm' },
    agentFrames: [],
    currentAgentFrameId: 'f',
    graph: { kind: 'unchanged' },
    checkpoint: { turnState: { step: 1 } },
    usageDeltas: [],
    completedTurnInputClaims: claims.map(claimCompletion),
    committedAttachmentIds: [],
    ...extra,
  };
}

async function acquire(store: RuntimeStore, sessionId: string, who: string, ttl = TTL): Promise<SessionExecutionLease> {
  const r = await store.tryClaimSessionExecutionLease(sessionId, owner(who), ttl);
  if (r.outcome !== 'acquired') throw new Error(`lease on ${sessionId} is busy`);
  return r.lease;
}

/**
 * One session's workload: every kind of per-session script. Leaves 4 tombstones (2 cancelled,
 * 2 completed), one attachment entry (committed when i is even), one deferred next-turn row
 * (so the session is in the dispatch index) and, when i % 10 === 0, a held lease.
 */
async function sessionWorkload(store: RuntimeStore, i: number): Promise<void> {
  const sid = sessionIdFor(i);
  const step = async <T>(name: string, work: () => Promise<T>): Promise<T> => {
    try {
      return await work();
    } catch (e) {
      throw new Error(`${name} on ${JSON.stringify(sid)}: ${(e as Error).message}`, { cause: e });
    }
  };
  const a = await step('enqueue a', () =>
    store.enqueuePendingTurnInput({
      sessionId: sid,
      sourceKey: `src-${i}`,
      ingress: { scope: 'next_turn' },
      input: { t: 'a' },
    }),
  );
  // A source-key replay returns the stored row.
  const again = await step('enqueue a again', () =>
    store.enqueuePendingTurnInput({
      sessionId: sid,
      sourceKey: `src-${i}`,
      ingress: { scope: 'next_turn' },
      input: { t: 'a' },
    }),
  );
  expect(again.inputId).toBe(a.inputId);
  const b = await step('enqueue b', () =>
    store.enqueuePendingTurnInput({ sessionId: sid, ingress: { scope: 'next_turn' }, input: { t: 'b' } }),
  );
  await step('enqueue c', () =>
    store.enqueuePendingTurnInput({
      sessionId: sid,
      ingress: { scope: 'active_turn', turnId: 't1', minBoundary: 'after_work' },
      input: { t: 'c' },
    }),
  );
  const d = await step('enqueue d', () =>
    store.enqueuePendingTurnInput({ sessionId: sid, ingress: { scope: 'next_turn' }, input: { t: 'd' } }),
  );
  expect(await step('list', () => store.listPendingTurnInputs(sid))).toHaveLength(4);
  expect((await step('cancel b', () => store.cancelPendingTurnInput(sid, b.inputId))).outcome).toBe('cancelled');
  const suffix = await step('cancel suffix d', () =>
    store.cancelPendingTurnInputSuffix(sid, { kind: 'input_id', value: d.inputId }),
  );
  expect(suffix.outcome).toBe('outcomes');

  const lease = await step('tryClaim', () => acquire(store, sid, `w${i}`));
  await step('renew', () => store.renewSessionExecutionLease(leaseFence(lease), TTL));
  const next = await step('claimNext', () =>
    store.claimNextTurnInputs({
      sessionId: sid,
      fence: leaseFence(lease),
      owner: lease.owner,
      leaseTtlMs: TTL,
      maxInputs: 10,
    }),
  );
  expect(next?.inputs.map((x) => x.inputId)).toEqual([a.inputId]);
  const active = await step('claimActive', () =>
    store.claimActiveTurnInputs({
      sessionId: sid,
      fence: leaseFence(lease),
      owner: lease.owner,
      turnId: 't1',
      checkpoint: 'after_work',
      leaseTtlMs: TTL,
      maxInputs: 10,
    }),
  );
  expect(active?.inputs).toHaveLength(1);

  const facet = store.session(sid);
  await step('recordIntent', () =>
    facet.recordIntent({
      attachmentId: `att-${i}`,
      sessionId: sid,
      canonicalUri: `s3://b/${i}`,
      intentAtEpochMs: 1000 + i,
    }),
  );
  const result = await step('commit', () =>
    facet.commitRuntimeState(
      commitFor(lease, [next!, active!], {
        graph: {
          kind: 'append',
          nodes: [{ nodeId: `n${i}`, timestamp: '2025-01-01T00:00:00.000Z', text: `turn of ${i}` }],
          leafNodeId: `n${i}`,
        },
        usageDeltas: [
          {
            source: 'main',
            model: 'm',
            usage: {
              inputTokens: 10,
              outputTokens: 5,
              cacheReadInputTokens: 0,
              cacheWriteInputTokens: 0,
              reasoningOutputTokens: 1,
            },
          },
        ],
        releaseSessionExecutionLease: leaseCompletion(lease),
        committedAttachmentIds: i % 2 === 0 ? [`att-${i}`] : [],
      }),
    ),
  );
  expect(result.headRevision).toBe(1);
  const loaded = await step('loadSession', () => facet.loadSession({ kind: 'full_graph' }));
  expect(loaded?.headRevision).toBe(1);
  expect(loaded?.graph.nodes.map((n) => n.nodeId)).toEqual([`n${i}`]);
  expect((await step('loadNode', () => facet.loadNode(`n${i}`)))?.text).toBe(`turn of ${i}`);
  await step('saveSessionMeta', () =>
    facet.saveSessionMeta({
      sessionId: sid,
      sessionName: `s${i}`,
      createdAt: '2025-01-01T00:00:00.000Z',
      model: 'm',
      relation: { kind: 'root' },
    }),
  );
  expect((await step('loadSessionMeta', () => facet.loadSessionMeta()))?.sessionName).toBe(`s${i}`);

  // Released: a new next-turn row makes the session dispatchable (dispatch index).
  await step('enqueue e', () =>
    store.enqueuePendingTurnInput({ sessionId: sid, ingress: { scope: 'next_turn' }, input: { t: 'e' } }),
  );
  if (i % 10 === 0) await step('hold lease', () => acquire(store, sid, `holder${i}`, 600_000));
}

describe('Redis Cluster: no-lease active input (issue 17, defect 2)', () => {
  test('active input for turns nobody runs, on every master, is swept awake past its grace and moved to the next turn', async () => {
    const cluster = sharedCluster();
    const prefix = prefixFor('cluster-nogen');
    const store = (await createRedisRuntimeStore({
      redis: cluster,
      keyPrefix: prefix,
      idleDispatch: false,
      activeInputGraceMs: 300,
    })) as RedisStore;
    try {
      const slots = await readSlotMap(cluster);
      const ids = Array.from({ length: 30 }, (_, i) => `nogen-${i}`);
      const rows = await Promise.all(
        ids.map((sessionId) =>
          store.enqueuePendingTurnInput({ sessionId, ingress: { scope: 'active_turn', turnId: 'never' }, input: 1 }),
        ),
      );
      const wake = async () => undefined;
      const within = await sweepDispatchIndex(store, { wake });
      expect(within).toMatchObject({ waiting: ids.length, woken: [], failed: 0 });
      await new Promise((r) => setTimeout(r, 350));
      const past = await sweepDispatchIndex(store, { wake });
      expect(past.failed).toBe(0);
      expect(new Set(past.woken)).toEqual(new Set(ids));
      const dist = distribution(slots, past.woken);
      for (const node of slots.masters) expect(dist[node], node).toBeGreaterThan(0);
      for (const [i, sessionId] of ids.entries()) {
        const lease = await acquire(store, sessionId, 'w');
        const claim = await store.claimNextTurnInputs({
          sessionId,
          fence: leaseFence(lease),
          owner: lease.owner,
          leaseTtlMs: TTL,
          maxInputs: 10,
        });
        expect(claim?.inputs.map((x) => [x.inputId, x.enqueueSeq])).toEqual([[rows[i].inputId, rows[i].enqueueSeq]]);
      }
    } finally {
      await store.close();
      await dropPrefix(cluster, prefix);
    }
  });
});

describe('Redis Cluster: 1000 sessions across three masters', () => {
  let cluster: Cluster;
  let store: RedisStore;
  let prefix: string;
  let slots: SlotMap;
  const sessionIds = Array.from({ length: N }, (_, i) => sessionIdFor(i));

  beforeAll(async () => {
    cluster = sharedCluster();
    prefix = prefixFor('cluster-workload');
    store = (await createRedisRuntimeStore({ redis: cluster, keyPrefix: prefix, idleDispatch: true })) as RedisStore;
    slots = await readSlotMap(cluster);
  });

  afterAll(async () => {
    await store?.close();
    if (cluster && prefix) await dropPrefix(cluster, prefix);
  });

  test('the store runs in cluster mode, and every key of a session (with its shard keys) is in one slot', async () => {
    expect(store.ctx.layout.mode).toBe('cluster');
    // The spawned cluster runs without AOF: 'auto' resolves per primary to 'inline'.
    if (!process.env.REDIS_CLUSTER_NODES) expect(store.durabilityTier()).toBe('inline');
    expect(slots.masters.length).toBeGreaterThanOrEqual(3);
    for (const sid of sessionIds) {
      const keys = Object.values(store.ctx.layout.session(sid).byName);
      const slot = sessionSlot(sid);
      expect(
        keys.every((k) => keySlot(k) === slot),
        `keys of ${sid}`,
      ).toBe(true);
    }
    // Our CRC16 agrees with the server's (CLUSTER KEYSLOT) on a sample, hostile ids included.
    for (const sid of sessionIds.slice(0, 50)) {
      const key = store.ctx.layout.session(sid).byName.lease;
      expect(await cluster.cluster('KEYSLOT', key)).toBe(keySlot(key));
      const shard = store.ctx.layout.session(sid).byName.dispatch;
      expect(await cluster.cluster('KEYSLOT', shard)).toBe(keySlot(key));
    }
  });

  test('1000 sessions spread over all three masters', () => {
    const dist = distribution(slots, sessionIds);
    console.log(
      `[cluster] session distribution over ${slots.masters.length} masters (${N} sessions): ` +
        Object.entries(dist)
          .map(([node, n]) => `${node}=${n} (${((100 * n) / N).toFixed(1)}%)`)
          .join(', '),
    );
    expect(dist.unserved).toBeUndefined();
    for (const node of slots.masters) expect(dist[node], node).toBeGreaterThan(N * 0.2);
  });

  test('a full workload on every session: no CROSSSLOT, MOVED or any other error escapes', async () => {
    const errors: string[] = [];
    const started = Date.now();
    await pool(
      Array.from({ length: N }, (_, i) => i),
      CONCURRENCY,
      async (i) => {
        try {
          await sessionWorkload(store, i);
        } catch (e) {
          errors.push((e as Error).message);
        }
      },
    );
    console.log(`[cluster] workload: ${N} sessions in ${Date.now() - started} ms, ${errors.length} errors`);
    expect(errors.filter((m) => /CROSSSLOT|MOVED|ASK|TRYAGAIN|CLUSTERDOWN/.test(m))).toEqual([]);
    expect(errors.slice(0, 10)).toEqual([]);

    // Every key of the store lives on the master of its slot, and every shard index entry names a
    // session of the shard's own slot.
    const perMaster = await keysPerMaster(cluster, `${prefix}:*`);
    const shardKeys: string[] = [];
    for (const [node, keys] of perMaster) {
      expect(keys.length, `keys on ${node}`).toBeGreaterThan(0);
      for (const k of keys) {
        expect(slots.ownerOf(keySlot(k)), k).toBe(node);
        if (k.startsWith(`${prefix}:shard:`)) shardKeys.push(k);
      }
    }
    for (const k of shardKeys) {
      const slot = keySlot(k);
      let members: string[] = [];
      if (k.endsWith(':dispatch') || k.endsWith(':tombs')) members = await cluster.zrange(k, '0', '-1');
      else if (k.endsWith(':att')) members = (await cluster.hkeys(k)).map((f) => f.split(':')[0]);
      else if (k.endsWith(':att-uncommitted'))
        members = (await cluster.zrange(k, '0', '-1')).map((f) => f.split(':')[0]);
      else if (k.endsWith(':att-byid')) members = (await cluster.zrange(k, '0', '-1')).map((f) => f.split(':')[1]);
      for (const m of members) expect(keySlot(`{${m}}`), `${m} in ${k}`).toBe(slot);
    }
  });

  test('attachment manifest queries see the entries of sessions on every master', async () => {
    const facet = store.session(sessionIds[1]);
    const cutoff = 10_000_000;
    const uncommitted = await facet.listUncommitted(cutoff);
    expect(uncommitted).toHaveLength(N / 2);
    expect(uncommitted.map((e) => e.intentAtEpochMs)).toEqual(
      sessionIds
        .map((_, i) => i)
        .filter((i) => i % 2 === 1)
        .map((i) => 1000 + i),
    );
    const oddIds = sessionIds.filter((_, i) => i % 2 === 1);
    expect(
      Object.values(
        distribution(
          slots,
          uncommitted.map((e) => e.sessionId),
        ),
      ).every((n) => n > 0),
    ).toBe(true);
    expect(uncommitted.map((e) => e.sessionId)).toEqual(oddIds);

    const all = await facet.listAllRefs();
    expect(all).toEqual(sessionIds.map((_, i) => `att-${i}`).sort());

    // One committed and one uncommitted entry per master, looked up by id from another session's facet.
    for (const node of slots.masters) {
      const even = sessionIds.findIndex((id, i) => i % 2 === 0 && slots.ownerOf(sessionSlot(id)) === node);
      const odd = sessionIds.findIndex((id, i) => i % 2 === 1 && slots.ownerOf(sessionSlot(id)) === node);
      expect(await facet.hasLiveRefForId(`att-${even}`, cutoff)).toBe(true);
      expect(await facet.hasLiveRefForId(`att-${odd}`, cutoff)).toBe(false);
      expect(await facet.hasLiveRefForId(`att-${odd}`, 0)).toBe(true);
      expect(await facet.holdsRef(sessionIds[odd], `att-${odd}`)).toBe(true);
    }

    expect(await facet.forgetAgedUncommittedIntents(cutoff)).toBe(N / 2);
    expect(await facet.listUncommitted(cutoff)).toEqual([]);
    expect(await facet.listAllRefs()).toEqual(
      sessionIds
        .map((_, i) => i)
        .filter((i) => i % 2 === 0)
        .map((i) => `att-${i}`)
        .sort(),
    );
  });

  test('the dispatch sweeper visits the sessions of every master', async () => {
    const woken: string[] = [];
    const report = await sweepDispatchIndex(store, {
      wake: async (sessionId) => {
        woken.push(sessionId);
      },
    });
    expect(report.failed).toBe(0);
    const held = sessionIds.filter((_, i) => i % 10 === 0);
    expect(report.leased).toBe(held.length);
    expect(new Set(woken)).toEqual(new Set(sessionIds.filter((_, i) => i % 10 !== 0)));
    const dist = distribution(slots, woken);
    for (const node of slots.masters) expect(dist[node], node).toBeGreaterThan(0);
    console.log(
      `[cluster] sweeper: visited ${report.visited}, woke ${woken.length}, leased ${report.leased}, removed ${report.removed}`,
    );

    // The default sweep sends through a BullMQ queue on a duplicate of the Cluster client.
    const viaQueue = await sweepDispatchIndex(store);
    expect(viaQueue.failed).toBe(0);
    expect(viaQueue.woken.length).toBe(woken.length);
  });

  test("the BullMQ dispatch queue's keys are hash-tagged: all in one slot, on one master", async () => {
    const tagSlot = keySlot(`{${prefix}}`);
    let queueKeys: Map<string, string[]> = new Map();
    const deadline = Date.now() + 10_000;
    do {
      queueKeys = await keysPerMaster(cluster, `{${prefix}}:*`);
      if ([...queueKeys.values()].some((k) => k.length > 0)) break;
      await new Promise((r) => setTimeout(r, 100));
    } while (Date.now() < deadline);
    const holders = [...queueKeys].filter(([, keys]) => keys.length > 0);
    expect(holders.map(([node]) => node)).toEqual([slots.ownerOf(tagSlot)]);
    const keys = holders[0][1];
    expect(keys.some((k) => k.startsWith(`{${prefix}}:${prefix}-idle-dispatch:`))).toBe(true);
    for (const k of keys) expect(keySlot(k), k).toBe(tagSlot);
    console.log(`[cluster] dispatch queue: ${keys.length} keys, all in slot ${tagSlot} on ${holders[0][0]}`);
  });

  test('vacuum removes the tombstones of sessions on every master', async () => {
    const tombIndexes = await keysPerMaster(cluster, `${prefix}:shard:*:tombs`);
    for (const [node, keys] of tombIndexes) expect(keys.length, `tombs shards on ${node}`).toBeGreaterThan(0);

    const { removedPendingTurnInputTombstones } = await store.vacuum({ olderThanMs: 0 });
    expect(removedPendingTurnInputTombstones).toBe(4 * N);

    for (const [node, keys] of await keysPerMaster(cluster, `${prefix}:shard:*:tombs`)) {
      for (const k of keys) expect(await cluster.zcard(k), `${k} on ${node}`).toBe(0);
    }
    for (const [node, keys] of await keysPerMaster(cluster, `${prefix}:{*}:tomb`)) {
      for (const k of keys) expect(await cluster.zcard(k), `${k} on ${node}`).toBe(0);
    }
    // Live rows stay: each session still lists its deferred row.
    expect(await store.listPendingTurnInputs(sessionIds[3])).toHaveLength(1);
    expect((await store.vacuum({ olderThanMs: 0 })).removedPendingTurnInputTombstones).toBe(0);
  });
});

describe('idle dispatch on a Cluster connection', () => {
  test('a BullMQ worker on a Cluster connection runs the next-turn input of sessions on every master', async () => {
    const cluster = sharedCluster();
    const prefix = prefixFor('cluster-worker');
    const store = (await createRedisRuntimeStore({ redis: cluster, keyPrefix: prefix })) as RedisStore;
    const connection = clusterClient(clusterNodes()!, {
      ...TEST_CLUSTER_OPTIONS,
      redisOptions: { ...TEST_CLUSTER_OPTIONS.redisOptions, maxRetriesPerRequest: null },
    });
    const slots = await readSlotMap(cluster);
    const ids = Array.from({ length: 60 }, (_, i) => `wk-${i}`);
    const committed = new Set<string>();
    const worker = createIdleDispatchWorker({
      store,
      connection,
      owner: owner('cluster-worker'),
      leaseTtlMs: 10_000,
      concurrency: 8,
      sweepIntervalMs: 500,
      runTurn: async ({ lease }) => commitFor(lease, [], { checkpoint: { turnState: { by: 'worker' } } }),
      onEvent: (e) => {
        if (e.type === 'committed') committed.add(e.sessionId);
      },
    });
    try {
      await worker.waitUntilReady();
      for (const sid of ids) {
        await store.enqueuePendingTurnInput({ sessionId: sid, ingress: { scope: 'next_turn' }, input: { hi: sid } });
      }
      const deadline = Date.now() + 30_000;
      while (committed.size < ids.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      expect([...committed].sort()).toEqual([...ids].sort());
      for (const node of slots.masters) expect(distribution(slots, [...committed])[node], node).toBeGreaterThan(0);
      for (const sid of ids) {
        expect(await store.listPendingTurnInputs(sid)).toEqual([]);
        expect((await store.session(sid).loadSession({ kind: 'full_graph' }))?.headRevision).toBe(1);
      }
    } finally {
      await worker.close();
      await store.close();
      connection.disconnect();
      await dropPrefix(cluster, prefix);
    }
  });
});

describe('Redis Cluster: interrupts (issue 18)', () => {
  test('whenBusy interrupt reaches the running turn on every master through SPUBLISH, and the next turn runs', async () => {
    const cluster = sharedCluster();
    const prefix = prefixFor('cluster-interrupt');
    const store = (await createRedisRuntimeStore({ redis: cluster, keyPrefix: prefix })) as RedisStore;
    const connection = clusterClient(clusterNodes()!, {
      ...TEST_CLUSTER_OPTIONS,
      redisOptions: { ...TEST_CLUSTER_OPTIONS.redisOptions, maxRetriesPerRequest: null },
    });
    const slots = await readSlotMap(cluster);
    const ids = Array.from({ length: 12 }, (_, i) => `int-${i}`);
    const started = new Map<string, () => void>();
    const startedP = new Map(ids.map((sid) => [sid, new Promise<void>((r) => started.set(sid, r))] as const));
    const abortedAfter = new Map<string, number>();
    const sentAt = new Map<string, number>();
    const runs = new Map<string, number>();
    const committed = new Map<string, string[]>();
    const worker = createIdleDispatchWorker({
      store,
      connection,
      owner: owner('cluster-interrupt'),
      // Renewals every 20 s: only pub/sub can deliver within the test's bound.
      leaseTtlMs: 60_000,
      concurrency: 16,
      sweepIntervalMs: 60_000,
      runTurn: async ({ sessionId, lease, claim, signal }) => {
        const n = (runs.get(sessionId) ?? 0) + 1;
        runs.set(sessionId, n);
        if (n === 1) {
          started.get(sessionId)!();
          await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
          abortedAfter.set(sessionId, performance.now() - (sentAt.get(sessionId) ?? 0));
          throw signal.reason;
        }
        return commitFor(lease, [], { checkpoint: { turnState: { inputs: claim.inputs.map((i) => i.inputId) } } });
      },
      onEvent: (e) => {
        if (e.type === 'committed') committed.set(e.sessionId, e.inputIds);
      },
    });
    try {
      await worker.waitUntilReady();
      const firsts = new Map<string, string>();
      for (const sid of ids) {
        const row = await store.enqueuePendingTurnInput({ sessionId: sid, ingress: { scope: 'next_turn' }, input: 1 });
        firsts.set(sid, row.inputId);
      }
      for (const sid of ids) await startedP.get(sid);
      const typed = new Map<string, string>();
      for (const sid of ids) {
        sentAt.set(sid, performance.now());
        const row = await store.enqueuePendingTurnInput({
          sessionId: sid,
          ingress: { scope: 'next_turn' },
          input: 2,
          whenBusy: 'interrupt',
        });
        typed.set(sid, row.inputId);
      }
      const deadline = Date.now() + 20_000;
      while (committed.size < ids.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect([...committed.keys()].sort()).toEqual([...ids].sort());
      for (const sid of ids) {
        expect(committed.get(sid)).toEqual([firsts.get(sid), typed.get(sid)]);
        expect(abortedAfter.get(sid)!).toBeLessThan(5000);
      }
      for (const node of slots.masters) expect(distribution(slots, ids)[node], node).toBeGreaterThan(0);
      // The stop button on an idle session marks nothing.
      expect(await store.requestTurnInterrupt(ids[0]!)).toEqual({ interrupted: false });
    } finally {
      await worker.close();
      await store.close();
      connection.disconnect();
      await dropPrefix(cluster, prefix);
    }
  });
});

describe('failover drill: one master of a cluster of its own stops', () => {
  let drill: SpawnedCluster | undefined;
  let client: Cluster | undefined;
  let store: RedisStore | undefined;

  afterAll(async () => {
    await store?.close().catch(() => undefined);
    client?.disconnect();
    await drill?.stop();
  });

  test('sessions of the surviving masters continue, the stopped master’s reject with Backend, then recover', async () => {
    drill = await startCluster({ masters: 3, nodeTimeoutMs: 2000, appendonly: true });
    client = clusterClient(drill.nodes);
    store = (await createRedisRuntimeStore({ redis: client, keyPrefix: 'drill', idleDispatch: false })) as RedisStore;
    const s = store;
    // appendonly yes + appendfsync always on every primary.
    expect(s.durabilityTier()).toBe('durable');
    const map = await readSlotMap(client);
    const victimIndex = 1;
    const victim = drill.nodes[victimIndex];
    const ids = Array.from({ length: 90 }, (_, i) => `drill-${i}`);
    const onVictim = ids.filter((id) => map.ownerOf(sessionSlot(id)) === victim);
    const onSurvivors = ids.filter((id) => map.ownerOf(sessionSlot(id)) !== victim);
    expect(onVictim.length).toBeGreaterThan(5);
    expect(onSurvivors.length).toBeGreaterThan(10);
    for (const sid of ids) {
      await s.enqueuePendingTurnInput({
        sessionId: sid,
        sourceKey: 'before',
        ingress: { scope: 'next_turn' },
        input: 1,
      });
    }
    // A committed attachment of a session on the master that will stop: attachment GC must never
    // be told it has no live ref (SPEC 7) just because its shard is unreachable.
    const victimFacet = s.session(onVictim[0]);
    await victimFacet.recordIntent({
      attachmentId: 'att-victim',
      sessionId: onVictim[0],
      canonicalUri: 's3://b/victim',
      intentAtEpochMs: 1000,
    });
    await victimFacet.commitRefs(onVictim[0], ['att-victim']);
    expect(await s.session(onSurvivors[0]).hasLiveRefForId('att-victim', 10_000_000)).toBe(true);

    await drill.servers[victimIndex].stop(); // SIGTERM
    const stoppedAt = Date.now();

    /** A full turn on a session: enqueue, lease, claim, commit with completion and release, read. */
    const turn = async (sid: string, tag: string) => {
      await s.enqueuePendingTurnInput({ sessionId: sid, sourceKey: tag, ingress: { scope: 'next_turn' }, input: tag });
      const lease = await acquire(s, sid, `drill-${tag}`);
      const claim = await s.claimNextTurnInputs({
        sessionId: sid,
        fence: leaseFence(lease),
        owner: lease.owner,
        leaseTtlMs: TTL,
        maxInputs: 10,
      });
      await s
        .session(sid)
        .commitRuntimeState(
          commitFor(lease, claim ? [claim] : [], { releaseSessionExecutionLease: leaseCompletion(lease) }),
        );
      return s.listPendingTurnInputs(sid);
    };

    // Right after the stop (before the cluster marks the node failed) and after node-timeout.
    for (const [p, phase] of ['immediately', 'after node timeout'].entries()) {
      if (p === 1) await new Promise((r) => setTimeout(r, 2500));
      const survivors = await Promise.allSettled(onSurvivors.map((sid) => turn(sid, `phase-${p}`)));
      const failed = survivors
        .filter((r) => r.status === 'rejected')
        .map((r) => String((r as PromiseRejectedResult).reason));
      expect(failed, phase).toEqual([]);

      const started = Date.now();
      const lost = await Promise.allSettled(
        onVictim.map((sid) =>
          s.enqueuePendingTurnInput({ sessionId: sid, ingress: { scope: 'next_turn' }, input: 'during' }),
        ),
      );
      const elapsed = Date.now() - started;
      for (const r of lost) {
        expect(r.status, phase).toBe('rejected');
        const reason = (r as PromiseRejectedResult).reason;
        expect(isStoreError(reason, 'Backend'), String(reason)).toBe(true);
        expect(reason).toBeInstanceOf(StoreError);
      }
      const reads = await Promise.allSettled(onVictim.map((sid) => s.listPendingTurnInputs(sid)));
      expect(reads.every((r) => r.status === 'rejected' && isStoreError(r.reason, 'Backend'))).toBe(true);
      // Store-wide manifest reads need every master: they reject rather than answer without the
      // stopped master's shards (a `false` here would let GC delete a committed attachment).
      const survivorFacet = s.session(onSurvivors[0]);
      for (let k = 0; k < 5; k++) {
        const live = await survivorFacet.hasLiveRefForId('att-victim', 10_000_000).then(
          (v) => `resolved ${v}`,
          (e) => `rejected ${isStoreError(e) ? e.code : String(e)}`,
        );
        const refs = await survivorFacet.listAllRefs().then(
          (v) => `resolved ${JSON.stringify(v)}`,
          (e) => `rejected ${isStoreError(e) ? e.code : String(e)}`,
        );
        expect(live, `${phase} hasLiveRefForId #${k}`).toBe('rejected Backend');
        expect(refs, `${phase} listAllRefs #${k}`).toBe('rejected Backend');
        await new Promise((r) => setTimeout(r, 100));
      }
      console.log(
        `[cluster drill] ${phase} (${Date.now() - stoppedAt} ms after SIGTERM): ${onSurvivors.length} surviving-master sessions ok; ` +
          `${onVictim.length} stopped-master sessions rejected with Backend in ${elapsed} ms`,
      );
      expect(elapsed).toBeLessThan(15_000);
    }

    // Store-wide work needs every master: while one is down, vacuum rejects with Backend (never hangs,
    // never reports a partial count as the whole).
    const storeWide = await Promise.race([
      s.vacuum({ olderThanMs: 0 }).then(
        (r) => `resolved ${JSON.stringify(r)}`,
        (e) => `rejected ${isStoreError(e) ? e.code : String(e)}`,
      ),
      new Promise<string>((r) => setTimeout(() => r('timed out'), 20_000)),
    ]);
    console.log(`[cluster drill] vacuum with a master down: ${storeWide}`);
    expect(storeWide).toBe('rejected Backend');

    // The master comes back on its dir (AOF, appendfsync always): its sessions answer again and
    // every write acknowledged before the stop is there.
    await drill.restart(victimIndex);
    await waitForClusterOk(parseNodes(drill.nodes.join(',')));
    const deadline = Date.now() + 20_000;
    let back: unknown[] = [];
    for (;;) {
      try {
        back = await Promise.all(onVictim.map((sid) => s.listPendingTurnInputs(sid)));
        break;
      } catch (e) {
        if (Date.now() > deadline) throw e;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    for (const rows of back) expect((rows as { sourceKey?: string }[]).map((r) => r.sourceKey)).toEqual(['before']);
    expect((await turn(onVictim[0], 'after-restart')).length).toBe(0);
  }, 120_000);
});
