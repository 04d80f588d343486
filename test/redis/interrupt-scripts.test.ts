/**
 * Redis-only tests of the interrupt mark (SPEC 3.9; lua/interrupt-turn.lua, enqueue-input-busy.lua):
 * what it leaves in the lease hash (readable with redis-cli), the notice on the session's
 * channel, and that a refused enqueue or a mark-free call writes and publishes nothing.
 */
import { Redis } from 'ioredis';
import { describe, expect, type TestContext, test } from 'vitest';
import type { LeaseOwnerIdentity } from '../../src/contract/types.js';
import { leaseCompletion } from '../../src/core/projections.js';
import { inspectSession } from '../../src/inspect/inspect-session.js';
import { formatInspect } from '../../src/inspect/inspect-view.js';
import { KeyLayout } from '../../src/redis/keys.js';
import { createRedisRuntimeStore, type RedisRuntimeStore } from '../../src/redis/redis-store.js';
import { adminClient, clusterNodes, redisTarget, redisUrl, snapshotPrefix, testPrefix } from '../support/prefix.js';

function O(x: string): LeaseOwnerIdentity {
  return { ownerId: x, incarnationId: `${x}:1`, liveness: { kind: 'opaque' } };
}

async function openStore(prefix: string, ctx: TestContext): Promise<RedisRuntimeStore> {
  const store = await createRedisRuntimeStore({ redis: redisTarget(), keyPrefix: prefix, idleDispatch: false });
  ctx.onTestFinished(() => store.close());
  return store as RedisRuntimeStore;
}

/** Collects the notices of one session's channel (standalone only: SUBSCRIBE). */
async function listen(ctx: TestContext, channel: string): Promise<string[]> {
  const sub = new Redis(redisUrl());
  ctx.onTestFinished(() => sub.quit().then(() => undefined));
  const got: string[] = [];
  sub.on('message', (c, m) => {
    if (c === channel) got.push(m);
  });
  await sub.subscribe(channel);
  return got;
}

async function until(check: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!check() && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
}

describe.skipIf(clusterNodes() !== undefined)('interrupt scripts (standalone)', () => {
  test('the mark lives in the lease hash as plain fields, and the notice names session, generation and policy', async (ctx) => {
    const prefix = testPrefix(ctx);
    const store = await openStore(prefix, ctx);
    const s = 'user:1/a b';
    const channel = new KeyLayout(prefix).interruptChannel(s);
    expect(channel).toBe(`${prefix}:{user%3A1%2Fa%20b}:interrupt`);
    const got = await listen(ctx, channel);
    const r = await store.tryClaimSessionExecutionLease(s, O('w'), 60_000);
    if (r.outcome !== 'acquired') throw new Error('unreachable');
    const row = await store.enqueuePendingTurnInput({
      sessionId: s,
      ingress: { scope: 'next_turn' },
      input: 'x',
      whenBusy: 'interrupt',
    });
    await until(() => got.length === 1);
    const notice = JSON.parse(got[0]!);
    expect(notice).toMatchObject({
      sessionId: s,
      generation: r.lease.fencingToken,
      policy: 'interrupt',
      reason: '',
      inputId: row.inputId,
    });
    const fields = await adminClient().hgetall(`${prefix}:{user%3A1%2Fa%20b}:lease`);
    expect(fields).toMatchObject({
      interruptGen: String(r.lease.fencingToken),
      interruptPolicy: 'interrupt',
      interruptReason: '',
      interruptInputId: row.inputId,
    });
    expect(fields.interruptAtMs).toMatch(/^\d+$/);
    await store.requestTurnInterrupt(s, { reason: 'stop', policy: 'rollback' });
    await until(() => got.length === 2);
    expect(JSON.parse(got[1]!)).toMatchObject({ policy: 'rollback', reason: 'stop', inputId: '' });
    // The operator view shows the mark of the live generation.
    const view = await inspectSession(store, s);
    expect(view.lease.interrupt).toMatchObject({ policy: 'rollback', reason: 'stop' });
    expect(formatInspect(view)).toMatch(/INTERRUPTED \(rollback\) at .*, reason "stop"/);
    // A new generation is shown unmarked.
    await store.releaseSessionExecutionLease(leaseCompletion(r.lease));
    await store.tryClaimSessionExecutionLease(s, O('w'), 60_000);
    expect((await inspectSession(store, s)).lease.interrupt).toBeUndefined();
  });

  test('reject while busy, a replay, and a stop without a lease write and publish nothing', async (ctx) => {
    const prefix = testPrefix(ctx);
    const store = await openStore(prefix, ctx);
    const s = 's';
    const got = await listen(ctx, new KeyLayout(prefix).interruptChannel(s));
    expect(await store.requestTurnInterrupt(s)).toEqual({ interrupted: false });
    await store.enqueuePendingTurnInput({ sessionId: s, sourceKey: 'k', ingress: { scope: 'next_turn' }, input: 1 });
    await store.tryClaimSessionExecutionLease(s, O('w'), 60_000);
    const before = await snapshotPrefix(adminClient(), prefix);
    await expect(
      store.enqueuePendingTurnInput({ sessionId: s, ingress: { scope: 'next_turn' }, input: 2, whenBusy: 'reject' }),
    ).rejects.toMatchObject({ code: 'SessionBusy' });
    await store.enqueuePendingTurnInput({
      sessionId: s,
      sourceKey: 'k',
      ingress: { scope: 'next_turn' },
      input: 1,
      whenBusy: 'rollback',
    });
    expect(await snapshotPrefix(adminClient(), prefix)).toEqual(before);
    await new Promise((r) => setTimeout(r, 50));
    expect(got).toEqual([]);
  });

  test('pendingTtlMs: deadlines in the expiry zset, expired rows in the expired zset; inspect counts them; vacuum and deleteSession clean up', async (ctx) => {
    const prefix = testPrefix(ctx);
    const store = await createRedisRuntimeStore({
      redis: redisTarget(),
      keyPrefix: prefix,
      idleDispatch: false,
      pendingTtlMs: 100,
    });
    ctx.onTestFinished(() => store.close());
    const admin = adminClient();
    const row = await store.enqueuePendingTurnInput({ sessionId: 's', ingress: { scope: 'next_turn' }, input: 1 });
    const act = await store.enqueuePendingTurnInput({
      sessionId: 's',
      ingress: { scope: 'active_turn', turnId: 't' },
      input: 2,
    });
    expect(Number(await admin.zscore(`${prefix}:{s}:expiry`, row.inputId))).toBe(row.enqueuedAtMs + 100);
    expect(Number(await admin.zscore(`${prefix}:{s}:expiry`, act.inputId))).toBe(act.enqueuedAtMs + 100);
    await new Promise((r) => setTimeout(r, 150));
    expect(await store.listPendingTurnInputs('s')).toEqual([]);
    expect(await admin.zcard(`${prefix}:{s}:expiry`)).toBe(0);
    expect((await admin.zrange(`${prefix}:{s}:expired`, '0', '-1')).sort()).toEqual([row.inputId, act.inputId].sort());
    const view = await inspectSession(store, 's');
    expect(view.counts).toMatchObject({ tombstones: 2, expired: 2, nonTerminal: 0 });
    expect(formatInspect(view)).toContain('2 tombstones (2 expired)');
    expect((await store.vacuum({ olderThanMs: 0 })).removedPendingTurnInputTombstones).toBe(2);
    expect(await admin.exists(`${prefix}:{s}:expired`)).toBe(0);
    await store.enqueuePendingTurnInput({ sessionId: 's', ingress: { scope: 'next_turn' }, input: 3 });
    await store.deleteSession('s');
    expect(await admin.keys(`${prefix}:{s}:*`)).toEqual([]);
  });
});
