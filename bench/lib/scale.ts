/**
 * Scale figures: claim cost with 100k pending inputs vs 10, commit cost on a 100k-node graph vs a
 * 10-node one, active_path on a 100k-node graph vs a 100-node one, and memory per pending input.
 * Small and large cases are measured alternately, call by call, so drift hits both alike; the
 * samples are cut into blocks and each block gives one ratio of p50s (median, min, max reported).
 */
import type { Redis } from 'ioredis';
import type { RuntimeStore, SessionExecutionLease } from '../../src/index.js';
import { leaseFence } from '../../src/index.js';
import { parseInfo, pool, usedMemory } from './env.js';
import { appendCommit, INPUT_150, node, OWNER, TTL } from './fixtures.js';
import { progress } from './progress.js';
import { percentile, type Spread, spreadOf, usSince } from './stats.js';

async function acquire(store: RuntimeStore, sessionId: string): Promise<SessionExecutionLease> {
  const c = await store.tryClaimSessionExecutionLease(sessionId, OWNER, TTL);
  if (c.outcome !== 'acquired') throw new Error(`bench: lease on ${sessionId} is busy`);
  return c.lease;
}

export interface MemoryReport {
  bytesPerPendingInput: number;
  /** used_memory delta per input after all 100k. */
  bytesPerPendingInputAt100k: number;
  /** Per key of the session at 10k: MEMORY USAGE bytes / count and encoding. */
  keysAt10k: { key: string; type: string; encoding: string; bytes: number; bytesPerInput: number }[];
}

async function keyBreakdown(admin: Redis, pattern: string, inputs: number): Promise<MemoryReport['keysAt10k']> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await admin.scan(cursor, 'MATCH', pattern, 'COUNT', 10_000);
    cursor = next;
    keys.push(...batch);
  } while (cursor !== '0');
  const out: MemoryReport['keysAt10k'] = [];
  for (const key of keys.sort()) {
    const bytes = Number(await admin.call('MEMORY', 'USAGE', key, 'SAMPLES', '0'));
    const type = await admin.type(key);
    const encoding = String(await admin.call('OBJECT', 'ENCODING', key));
    out.push({ key, type, encoding, bytes, bytesPerInput: Math.round((bytes / inputs) * 10) / 10 });
  }
  return out;
}

/**
 * Fills `sessionId` with 100k pending next-turn inputs (150-byte input), measuring used_memory per
 * input over the first 10k (and at 100k); then another session with 10.
 */
export async function fillPending(
  admin: Redis,
  store: RuntimeStore,
  prefix: string,
  bigSession: string,
  smallSession: string,
  total: number,
): Promise<MemoryReport> {
  const enqueue = (sessionId: string) =>
    store.enqueuePendingTurnInput({ sessionId, ingress: { scope: 'next_turn' }, input: INPUT_150 });
  // The session's keys exist before the baseline (one row), so the delta is per input only.
  await enqueue(bigSession);
  const m0 = await usedMemory(admin);
  const first = 10_000;
  await pool(first - 1, 50, async (i) => {
    await enqueue(bigSession);
    if (i % 1000 === 0) progress(`100k pending: ${i}/${total}`);
  });
  const m1 = await usedMemory(admin);
  const keysAt10k = await keyBreakdown(admin, `${prefix}:{${bigSession}}:*`, first);
  await pool(total - first, 100, async (i) => {
    await enqueue(bigSession);
    if (i % 2000 === 0) progress(`100k pending: ${first + i}/${total}`);
  });
  const m2 = await usedMemory(admin);
  for (let i = 0; i < 10; i++) await enqueue(smallSession);
  return {
    bytesPerPendingInput: Math.round((m1 - m0) / (first - 1)),
    bytesPerPendingInputAt100k: Math.round((m2 - m0) / (total - 1)),
    keysAt10k,
  };
}

/** used_memory per waiting BullMQ job with the same 150-byte data (for comparison only). */
export async function bullmqBytesPerWaitingJob(admin: Redis, url: string, name: string, jobs: number): Promise<number> {
  const { Queue } = await import('bullmq');
  const { Redis: IORedis } = await import('ioredis');
  const conn = new IORedis(url, { maxRetriesPerRequest: null });
  const queue = new Queue(name, { connection: conn as never });
  await queue.add('job', { input: INPUT_150 });
  const m0 = await usedMemory(admin);
  await pool(jobs, 50, async () => {
    await queue.add('job', { input: INPUT_150 }, { removeOnComplete: true });
  });
  const m1 = await usedMemory(admin);
  await queue.obliterate({ force: true });
  await queue.close();
  await conn.quit();
  return Math.round((m1 - m0) / jobs);
}

export interface PairedResult {
  ratio: Spread;
  smallP50: number;
  largeP50: number;
}

/** Alternates small/large calls `iterations` times; returns the ratio of p50s over `blocks` blocks. */
async function paired(
  label: string,
  iterations: number,
  blocks: number,
  small: () => Promise<void>,
  large: () => Promise<void>,
  after?: () => Promise<void>,
): Promise<PairedResult> {
  const s: number[] = [];
  const l: number[] = [];
  for (let i = 0; i < iterations + 10; i++) {
    const order = i % 2 === 0 ? [small, large] : [large, small];
    for (const f of order) {
      const t0 = process.hrtime.bigint();
      await f();
      const us = usSince(t0);
      if (i >= 10) (f === small ? s : l).push(us);
      if (after) await after();
    }
    if (i % 50 === 0) progress(`${label}: ${i}/${iterations + 10}`);
  }
  const per = Math.floor(s.length / blocks);
  const ratios: number[] = [];
  for (let b = 0; b < blocks; b++) {
    ratios.push(percentile(l.slice(b * per, (b + 1) * per), 50) / percentile(s.slice(b * per, (b + 1) * per), 50));
  }
  return { ratio: spreadOf(ratios), smallP50: percentile(s, 50), largeP50: percentile(l, 50) };
}

/** claimNext (maxInputs 10) with 100k pending vs 10 pending; each claim is abandoned (untimed). */
export async function claimRatio(
  store: RuntimeStore,
  bigSession: string,
  smallSession: string,
  iterations: number,
  blocks: number,
): Promise<PairedResult> {
  const bigLease = await acquire(store, bigSession);
  const smallLease = await acquire(store, smallSession);
  const claimAndAbandon = (sessionId: string, lease: SessionExecutionLease) => {
    const claims: Parameters<RuntimeStore['abandonTurnInputClaim']>[0][] = [];
    return {
      run: async () => {
        const claim = await store.claimNextTurnInputs({
          sessionId,
          fence: leaseFence(lease),
          owner: OWNER,
          leaseTtlMs: TTL,
          maxInputs: 10,
        });
        if (claim?.inputs.length !== 10) throw new Error(`bench: claim on ${sessionId} came back short`);
        claims.push(claim);
      },
      abandon: async () => {
        const c = claims.pop();
        if (c) await store.abandonTurnInputClaim(c);
      },
    };
  };
  const big = claimAndAbandon(bigSession, bigLease);
  const small = claimAndAbandon(smallSession, smallLease);
  return paired('claimNext 100k vs 10', iterations, blocks, small.run, big.run, async () => {
    await big.abandon();
    await small.abandon();
  });
}

interface Graph {
  sessionId: string;
  lease: SessionExecutionLease;
  leaf: string;
}

/**
 * A graph of `size` nodes in chains of 50 (node i's parent is i-1 unless i % 50 === 0), so the
 * head leaf's active path is 50 nodes long whatever the size. Built with appends of `batch` nodes.
 */
export async function buildGraph(store: RuntimeStore, sessionId: string, size: number, chain = 50): Promise<Graph> {
  const lease = await acquire(store, sessionId);
  const facet = store.session(sessionId);
  const batch = 1000;
  for (let start = 0; start < size; start += batch) {
    const nodes = [];
    for (let i = start; i < Math.min(size, start + batch); i++) {
      nodes.push(node(`n${i}`, i % chain === 0 ? undefined : `n${i - 1}`));
    }
    await facet.commitRuntimeState(appendCommit(lease, nodes, `n${Math.min(size, start + batch) - 1}`));
    if (size > batch && (start / batch) % 10 === 0) progress(`graph ${sessionId}: ${start}/${size} nodes`);
  }
  return { sessionId, lease, leaf: `n${size - 1}` };
}

/** loadSession active_path (path 50) on the large graph vs the small one. */
export async function activePathRatio(
  store: RuntimeStore,
  small: Graph,
  large: Graph,
  iterations: number,
  blocks: number,
): Promise<PairedResult> {
  const read = (g: Graph) => async () => {
    const r = await store.session(g.sessionId).loadSession({ kind: 'active_path' });
    if (r?.graph.nodes.length !== 50) throw new Error(`bench: active path on ${g.sessionId} is not 50 nodes`);
  };
  return paired('active_path 100k vs 100', iterations, blocks, read(small), read(large));
}

/** A fenced 1-node append on the large graph vs the small one. */
export async function commitRatio(
  store: RuntimeStore,
  small: Graph,
  large: Graph,
  iterations: number,
  blocks: number,
): Promise<PairedResult> {
  let k = 0;
  const append = (g: Graph) => async () => {
    const id = `a${k++}`;
    await store.session(g.sessionId).commitRuntimeState(appendCommit(g.lease, [node(id, g.leaf)], id));
    g.leaf = id;
  };
  return paired('commit 100k vs 10', iterations, blocks, append(small), append(large));
}

export async function serverVersion(admin: Redis): Promise<string> {
  return parseInfo(await admin.info('server')).redis_version ?? '?';
}

/** used_memory per pending input when `inputs` inputs are spread over `sessions` sessions (extra figure). */
export async function bytesPerInputSpread(
  admin: Redis,
  store: RuntimeStore,
  tag: string,
  sessions: number,
  inputs: number,
): Promise<number> {
  const m0 = await usedMemory(admin);
  await pool(inputs, 50, async (i) => {
    await store.enqueuePendingTurnInput({
      sessionId: `${tag}-${i % sessions}`,
      ingress: { scope: 'next_turn' },
      input: INPUT_150,
    });
  });
  return Math.round(((await usedMemory(admin)) - m0) / inputs);
}

export interface GraphMemory {
  /** used_memory (without client buffers) per committed node minus the node's JSON length. */
  bytesPerGraphNodeOverhead: number;
  meanJsonBytes: number;
  /** The same with every text exactly `fixedText` long, for each of these lengths. */
  fixed: { textLength: number; jsonBytes: number; overhead: number }[];
  /** MEMORY USAGE per node of each graph key, for the spread graph. */
  perKey: { name: string; bytesPerNode: number }[];
}

/** used_memory without the clients' buffers (a big commit leaves a query buffer behind a while). */
async function dataMemory(admin: Redis): Promise<number> {
  const info = parseInfo(await admin.info('memory'));
  return Number(info.used_memory) - Number(info.mem_clients_normal ?? 0);
}

/**
 * `count` committed nodes of ~1 KB text, in appends of 50, after a first commit that creates the
 * session's graph keys: the memory they add per node minus their JSON length. The headline figure
 * spreads the text length evenly over 768–1279 characters (mean ~1 KB), so the allocator's size
 * classes average out; the fixed-length figures show how much one size can differ.
 */
export async function graphNodeMemory(
  admin: Redis,
  store: RuntimeStore,
  prefix: string,
  tag: string,
  count: number,
): Promise<GraphMemory> {
  const build = async (sessionId: string, textOf: (i: number) => string) => {
    const lease = await acquire(store, sessionId);
    const facet = store.session(sessionId);
    const make = (i: number) => ({ ...node(`n${i}`, i === 0 ? undefined : `n${i - 1}`), text: textOf(i) });
    await facet.commitRuntimeState(appendCommit(lease, [make(0)], 'n0'));
    const m0 = await dataMemory(admin);
    let json = 0;
    for (let start = 1; start <= count; start += 50) {
      const nodes = [];
      for (let i = start; i < Math.min(count + 1, start + 50); i++) {
        const n = make(i);
        json += Buffer.byteLength(JSON.stringify(n));
        nodes.push(n);
      }
      await facet.commitRuntimeState(appendCommit(lease, nodes, nodes[nodes.length - 1].nodeId));
    }
    const m1 = await dataMemory(admin);
    return { overhead: Math.round((m1 - m0 - json) / count), jsonBytes: Math.round(json / count) };
  };
  // An untimed build first, then the median of three: single builds spread by up to 120 B per
  // node (the server's own tables growing, background frees), on either layout.
  const spreadText = (i: number) => 'x'.repeat(768 + ((i * 37) % 512));
  await build(`${tag}-warm`, spreadText);
  const runs = [];
  for (let k = 0; k < 3; k++) runs.push(await build(k === 0 ? `${tag}-spread` : `${tag}-spread${k}`, spreadText));
  const spread = runs.sort((a, b) => a.overhead - b.overhead)[1];
  const perKey: GraphMemory['perKey'] = [];
  for (const name of ['nodes', 'order', 'parents']) {
    const bytes = await admin.call('MEMORY', 'USAGE', `${prefix}:{${tag}-spread}:${name}`, 'SAMPLES', '0');
    if (bytes !== null) perKey.push({ name, bytesPerNode: Math.round(Number(bytes) / (count + 1)) });
  }
  const fixed: GraphMemory['fixed'] = [];
  for (const textLength of [1000, 1024]) {
    const f = [];
    for (let k = 0; k < 3; k++) f.push(await build(`${tag}-fixed${textLength}-${k}`, () => 'x'.repeat(textLength)));
    const mid = f.sort((a, b) => a.overhead - b.overhead)[1];
    fixed.push({ textLength, jsonBytes: mid.jsonBytes, overhead: mid.overhead });
  }
  return { bytesPerGraphNodeOverhead: spread.overhead, meanJsonBytes: spread.jsonBytes, fixed, perKey };
}
