/**
 * Worker crash (issue 7, SPEC 3.5 T9): a dispatch worker process is SIGKILLed mid-turn, after an
 * active claim, holding its lease, a next-turn claim and an `accepted` active claim. Once its lease
 * expires, another worker process takes the session with a fresh generation, which requeues the
 * accepted input and the active input addressed to the dead turn (T9), and processes every input
 * exactly once.
 */
import { Queue } from 'bullmq';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { createRedisRuntimeStore, type RuntimeStore } from '../../src/index.js';
import { redisUrl, testPrefix } from '../support/prefix.js';
import { buildLibrary } from './build.js';
import { consumedFromGraphs, spawnWorker, type WorkerProcess } from './processes.js';

let build: string;
const spawned: WorkerProcess[] = [];

beforeAll(() => {
  build = buildLibrary();
}, 120_000);

afterAll(async () => {
  await Promise.all(spawned.map((w) => w.kill()));
});

test('SIGKILL mid-turn after an active claim: after lease expiry another worker processes every input exactly once (T9)', {
  timeout: 150_000,
}, async (ctx) => {
  const prefix = testPrefix(ctx);
  const url = redisUrl();
  const store: RuntimeStore = await createRedisRuntimeStore({ redis: url, keyPrefix: prefix, durability: 'inline' });
  ctx.onTestFinished(() => store.close());
  const sessionId = 'crash}:{session';
  const leaseTtlMs = 1500;

  const a = spawnWorker({
    build,
    redisUrl: url,
    prefix,
    name: 'A',
    mode: 'hang-after-active',
    leaseTtlMs,
    sweepMs: 300,
  });
  spawned.push(a);
  await a.waitFor((m) => m.type === 'ready');

  const n1 = await store.enqueuePendingTurnInput({
    sessionId,
    sourceKey: 'n1',
    ingress: { scope: 'next_turn' },
    input: { text: 'first' },
  });
  const start = await a.waitFor((m) => m.type === 'turn-start');
  expect(start.inputIds).toEqual([n1.inputId]);
  expect(start.generation).toBe(1);
  const turnId = String(start.turnId);
  // Mid-turn input for A's running turn: one admitted at after_work, one only at before_completion.
  const a1 = await store.enqueuePendingTurnInput({
    sessionId,
    sourceKey: 'a1',
    ingress: { scope: 'active_turn', turnId },
    input: { text: 'mid-turn' },
  });
  const a2 = await store.enqueuePendingTurnInput({
    sessionId,
    sourceKey: 'a2',
    ingress: { scope: 'active_turn', turnId, minBoundary: 'before_completion' },
    input: { text: 'late' },
  });
  expect(a1.state).toBe('pending_active');
  a.send({ type: 'go' });
  const claimed = await a.waitFor((m) => m.type === 'active-claimed');
  expect(claimed.inputIds).toEqual([a1.inputId]);

  await a.kill('SIGKILL');
  const killedAt = Date.now();
  expect(a.child.signalCode).toBe('SIGKILL');

  // While A's lease is live: its claims still hide n1 and a1 (accepted), a2 is listed.
  const cancelA1 = await store.cancelPendingTurnInput(sessionId, a1.inputId);
  expect(cancelA1.outcome).toBe('already_claimed');
  expect((await store.listPendingTurnInputs(sessionId)).map((r) => r.inputId)).toEqual([a2.inputId]);

  const b = spawnWorker({ build, redisUrl: url, prefix, name: 'B', leaseTtlMs, sweepMs: 300 });
  spawned.push(b);
  await b.waitFor((m) => m.type === 'ready');
  // Diagnostics only: where the session's wake-up sits once A's lease has long expired.
  const queue = new Queue(`${prefix}-idle-dispatch`, { prefix: `{${prefix}}`, connection: { url } as never });
  ctx.onTestFinished(() => queue.close());
  const probe = setTimeout(async () => {
    const counts = await queue.getJobCounts('active', 'waiting', 'delayed', 'completed', 'failed').catch(() => ({}));
    console.log(
      `[worker-crash] ${Date.now() - killedAt} ms after the kill, lease expired, B running: BullMQ job counts ${JSON.stringify(counts)}`,
    );
  }, 5000);
  const done = await b.waitFor((m) => m.type === 'committed' && m.sessionId === sessionId, 120_000);
  clearTimeout(probe);
  const recoveredMs = Date.now() - killedAt;
  expect(done.generation).toBeGreaterThanOrEqual(2);
  expect([...(done.inputIds as string[])].sort()).toEqual([n1.inputId, a1.inputId, a2.inputId].sort());
  await b.close();

  const { count } = await consumedFromGraphs(store, [sessionId]);
  expect(Object.fromEntries(count)).toEqual({ [n1.inputId]: 1, [a1.inputId]: 1, [a2.inputId]: 1 });
  const read = await store.session(sessionId).loadSession({ kind: 'full_graph' });
  expect(read?.headRevision).toBe(1);
  expect(read?.graph.nodes.every((n) => n.worker === 'B')).toBe(true);
  const outcomes = await store.cancelPendingTurnInputs(
    sessionId,
    [n1, a1, a2].map((r) => ({ kind: 'input_id' as const, value: r.inputId })),
  );
  expect(outcomes.map((o) => o.outcome.outcome)).toEqual([
    'already_completed',
    'already_completed',
    'already_completed',
  ]);
  // The source-key replays return the rows as they are now.
  const replay = await store.enqueuePendingTurnInput({
    sessionId,
    sourceKey: 'a1',
    ingress: { scope: 'active_turn', turnId },
    input: { text: 'mid-turn' },
  });
  expect(replay.inputId).toBe(a1.inputId);
  expect(replay.state).toBe('completed');
  console.log(
    `[worker-crash] A SIGKILLed holding generation 1; B committed all 3 inputs under generation ${done.generation} ${recoveredMs} ms after the kill (lease TTL ${leaseTtlMs} ms)`,
  );
});
