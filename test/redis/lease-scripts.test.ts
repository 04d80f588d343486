/**
 * Redis-only tests of the lease scripts (lua/*-lease.lua) and vacuum (lua/vacuum-*.lua): what
 * they leave in the keys of docs/KEYS.md, races across separate connections, and the behaviour
 * the shared conformance suite cannot see (stored forms, wake-ups, the shard tombstone index).
 * Every test runs in its own key prefix (test/support/prefix.ts).
 */
import { existsSync } from 'node:fs';
import { describe, expect, type TestContext, test, vi } from 'vitest';
import { isStoreError } from '../../src/contract/errors.js';
import type {
  LeaseOwnerIdentity,
  RuntimeStore,
  SessionExecutionLease,
  SessionExecutionLeaseClaimOutcome,
} from '../../src/contract/types.js';
import { currentProcessLiveness } from '../../src/core/liveness.js';
import { leaseCompletion, leaseFence } from '../../src/core/projections.js';
import { KeyLayout } from '../../src/redis/keys.js';
import { createRedisRuntimeStore, type RedisRuntimeStore } from '../../src/redis/redis-store.js';
import { adminClient, clusterNodes, redisTarget, testPrefix } from '../support/prefix.js';

const LONG = 60_000;
const HAS_PROC = existsSync('/proc/self/stat');

function O(x: string): LeaseOwnerIdentity {
  return { ownerId: x, incarnationId: `${x}:1`, liveness: { kind: 'opaque' } };
}

async function openStore(
  prefix: string,
  ctx: TestContext,
  options: { strandedTurnInputs?: 'requeue' | 'keep' } = {},
): Promise<RedisRuntimeStore> {
  const store = await createRedisRuntimeStore({
    redis: redisTarget(),
    keyPrefix: prefix,
    idleDispatch: false,
    ...options,
  });
  ctx.onTestFinished(() => store.close());
  return store as RedisRuntimeStore;
}

async function fresh(
  ctx: TestContext,
  options: { strandedTurnInputs?: 'requeue' | 'keep' } = {},
): Promise<{ store: RedisRuntimeStore; prefix: string; layout: KeyLayout }> {
  const prefix = testPrefix(ctx);
  return {
    store: await openStore(prefix, ctx, options),
    prefix,
    layout: new KeyLayout(prefix, clusterNodes() ? 'cluster' : 'standalone'),
  };
}

async function serverNow(): Promise<number> {
  const [s, us] = await adminClient().time();
  return Number(s) * 1000 + Math.floor(Number(us) / 1000);
}

function acquired(o: SessionExecutionLeaseClaimOutcome): SessionExecutionLease {
  if (o.outcome !== 'acquired') throw new Error(`expected acquired, got busy: ${JSON.stringify(o.holder)}`);
  return o.lease;
}

function busyHolder(o: SessionExecutionLeaseClaimOutcome): SessionExecutionLease {
  if (o.outcome !== 'busy') throw new Error(`expected busy, got acquired: ${JSON.stringify(o.lease)}`);
  return o.holder;
}

/** A local_process identity on this host whose pid has no /proc entry: definitely dead. */
function deadProcessOwner(name: string): LeaseOwnerIdentity {
  const me = currentProcessLiveness('test-host');
  if (me.kind !== 'local_process') throw new Error('no /proc');
  let pid = 4_000_000;
  while (existsSync(`/proc/${pid}`)) pid++;
  return { ownerId: name, incarnationId: `${name}:1`, liveness: { ...me, pid } };
}

/** This very process as a local_process identity: alive. */
function liveProcessOwner(name: string): LeaseOwnerIdentity {
  const me = currentProcessLiveness('test-host');
  if (me.kind !== 'local_process') throw new Error('no /proc');
  return { ownerId: name, incarnationId: `${name}:1`, liveness: me };
}

describe('lease scripts: stored form (docs/KEYS.md)', () => {
  test('a fresh acquisition writes the documented lease hash; liveness is canonical JSON', async (ctx) => {
    const { store, layout } = await fresh(ctx);
    const before = await serverNow();
    const owner: LeaseOwnerIdentity = {
      ownerId: 'w',
      incarnationId: 'w:1',
      liveness: { processStart: '77', pid: 12, kind: 'local_process', hostId: 'h', bootId: 'b' },
    };
    const lease = acquired(await store.tryClaimSessionExecutionLease('s', owner, 30_000));
    const after = await serverNow();
    expect(lease.owner).toEqual(owner);
    expect(lease.fencingToken).toBe(1);
    expect(lease.leaseToken).toMatch(/^[0-9a-f]{32}$/);
    expect(lease.claimedAtEpochMs).toBeGreaterThanOrEqual(before);
    expect(lease.claimedAtEpochMs).toBeLessThanOrEqual(after);
    expect(lease.expiresAtEpochMs).toBe(lease.claimedAtEpochMs + 30_000);

    const raw = await adminClient().hgetall(layout.session('s').byName.lease);
    expect(raw).toEqual({
      ownerId: 'w',
      incarnationId: 'w:1',
      liveness: '{"bootId":"b","hostId":"h","kind":"local_process","pid":12,"processStart":"77"}',
      leaseToken: lease.leaseToken,
      fencingToken: '1',
      claimedAtEpochMs: String(lease.claimedAtEpochMs),
      expiresAtEpochMs: String(lease.expiresAtEpochMs),
    });
  });

  test('an omitted liveness is stored and returned as opaque', async (ctx) => {
    const { store, layout } = await fresh(ctx);
    const lease = acquired(
      await store.tryClaimSessionExecutionLease('s', { ownerId: 'w', incarnationId: 'w:1' }, LONG),
    );
    expect(lease.owner).toEqual({ ownerId: 'w', incarnationId: 'w:1', liveness: { kind: 'opaque' } });
    expect(await adminClient().hget(layout.session('s').byName.lease, 'liveness')).toBe('{"kind":"opaque"}');
  });

  test('release blanks owner, token and liveness, zeroes both times and keeps the generation', async (ctx) => {
    const { store, layout } = await fresh(ctx);
    const lease = acquired(await store.tryClaimSessionExecutionLease('s', O('w'), LONG));
    await store.releaseSessionExecutionLease(leaseCompletion(lease));
    expect(await adminClient().hgetall(layout.session('s').byName.lease)).toEqual({
      ownerId: '',
      incarnationId: '',
      liveness: '',
      leaseToken: '',
      fencingToken: '1',
      claimedAtEpochMs: '0',
      expiresAtEpochMs: '0',
    });
    const next = acquired(await store.tryClaimSessionExecutionLease('s', O('w'), LONG));
    expect(next.fencingToken).toBe(2);
    expect(next.leaseToken).not.toBe(lease.leaseToken);
  });

  test('identifiers that are awkward for Lua and JSON round-trip exactly through the lease reply', async (ctx) => {
    const { store } = await fresh(ctx);
    const weird = [
      'a}:x',
      '{b}',
      'quote " backslash \\ slash /',
      'nul \u0000 bell \u0007 del \u007f',
      'line\nbreak\ttab',
      '日本語 😀 e\u0301',
      '%7B%25',
      'x'.repeat(4096),
    ];
    for (const [i, id] of weird.entries()) {
      const owner: LeaseOwnerIdentity = {
        ownerId: id,
        incarnationId: id.length > 100 ? `inc#${i}` : `${id}#${i}`,
        liveness: {
          kind: 'local_process',
          hostId: id,
          bootId: id.length > 100 ? 'boot' : `${id}b`,
          pid: 1 + i,
          processStart: `${i}`,
        },
      };
      const lease = acquired(await store.tryClaimSessionExecutionLease(id, owner, LONG));
      expect(lease.sessionId).toBe(id);
      expect(lease.owner).toEqual(owner);
      // Re-entry and busy echo the same stored owner.
      const reentered = acquired(await store.tryClaimSessionExecutionLease(id, owner, LONG));
      expect(reentered.owner).toEqual(owner);
      expect(busyHolder(await store.tryClaimSessionExecutionLease(id, O('other'), LONG))).toEqual(reentered);
      const renewed = await store.renewSessionExecutionLease(leaseFence(lease), LONG);
      expect(renewed.owner).toEqual(owner);
      await store.releaseSessionExecutionLease(leaseCompletion(lease));
      expect(acquired(await store.tryClaimSessionExecutionLease(id, O('next'), LONG)).fencingToken).toBe(2);
    }
  });
});

describe('lease scripts: semantics through the store', () => {
  test('fresh, re-entry, busy, release, stale release, renew of a superseded fence', async (ctx) => {
    const { store } = await fresh(ctx);
    const l1 = acquired(await store.tryClaimSessionExecutionLease('s', O('w1'), 30_000));
    const again = acquired(await store.tryClaimSessionExecutionLease('s', O('w1'), 5_000));
    expect(again.leaseToken).toBe(l1.leaseToken);
    expect(again.fencingToken).toBe(1);
    expect(again.claimedAtEpochMs).toBe(l1.claimedAtEpochMs);
    expect(again.expiresAtEpochMs).toBeLessThan(l1.expiresAtEpochMs); // re-entry may shorten

    expect(
      busyHolder(await store.tryClaimSessionExecutionLease('s', { ownerId: 'w1', incarnationId: 'w1:2' }, LONG)),
    ).toEqual(again);
    expect(busyHolder(await store.tryClaimSessionExecutionLease('s', O('w2'), LONG))).toEqual(again);

    await store.releaseSessionExecutionLease(leaseCompletion(l1));
    const l2 = acquired(await store.tryClaimSessionExecutionLease('s', O('w2'), LONG));
    expect(l2.fencingToken).toBe(2);

    await store.releaseSessionExecutionLease(leaseCompletion(l1)); // stale: no-op
    expect(busyHolder(await store.tryClaimSessionExecutionLease('s', O('w3'), LONG))).toEqual(l2);

    const err = await store.renewSessionExecutionLease(leaseFence(l1), LONG).catch((e: unknown) => e);
    expect(isStoreError(err, 'SessionExecutionLeaseExpired')).toBe(true);
    expect((err as { details: unknown }).details).toEqual({ sessionId: 's' });
  });

  test('TTL 0 is dead on arrival: not renewable, and the next claimant gets a new generation', async (ctx) => {
    const { store } = await fresh(ctx);
    const l1 = acquired(await store.tryClaimSessionExecutionLease('s', O('w1'), 0));
    expect(l1.expiresAtEpochMs).toBe(l1.claimedAtEpochMs);
    const err = await store.renewSessionExecutionLease(leaseFence(l1), LONG).catch((e: unknown) => e);
    expect(isStoreError(err, 'SessionExecutionLeaseExpired')).toBe(true);
    // Even its own owner starts a new generation.
    const l2 = acquired(await store.tryClaimSessionExecutionLease('s', O('w1'), LONG));
    expect(l2.fencingToken).toBe(2);
    expect(l2.leaseToken).not.toBe(l1.leaseToken);
  });

  test('renew of a lease that expired by the server clock fails even though nobody took it', async (ctx) => {
    const { store } = await fresh(ctx);
    const l1 = acquired(await store.tryClaimSessionExecutionLease('s', O('w'), 30));
    await new Promise((r) => setTimeout(r, 80));
    const err = await store.renewSessionExecutionLease(leaseFence(l1), LONG).catch((e: unknown) => e);
    expect(isStoreError(err, 'SessionExecutionLeaseExpired')).toBe(true);
    // The expired owner may still release it (expiry is not checked), and the generation stays.
    await store.releaseSessionExecutionLease(leaseCompletion(l1));
    expect(acquired(await store.tryClaimSessionExecutionLease('s', O('x'), LONG)).fencingToken).toBe(2);
  });

  test('invalid arguments are rejected before any script call', async (ctx) => {
    const { store } = await fresh(ctx);
    const run = vi.spyOn(store.ctx, 'run');
    for (const p of [
      store.tryClaimSessionExecutionLease('', O('w'), LONG),
      store.tryClaimSessionExecutionLease('s', O('w'), -1),
      store.tryClaimSessionExecutionLease('s', O('w'), 86_400_001),
      store.renewSessionExecutionLease({ sessionId: 's', owner: O('w'), leaseToken: 't', fencingToken: 1.5 }, LONG),
      store.releaseSessionExecutionLease({ sessionId: 's', owner: O('w'), leaseToken: '', fencingToken: 1 }),
    ]) {
      const e = await p.catch((x: unknown) => x);
      expect(isStoreError(e, 'InvalidInput')).toBe(true);
    }
    expect(run).not.toHaveBeenCalled();
  });

  test('each lease method is exactly one script call', async (ctx) => {
    const { store } = await fresh(ctx);
    const run = vi.spyOn(store.ctx, 'run');
    const l = acquired(await store.tryClaimSessionExecutionLease('s', O('w'), LONG));
    await store.reclaimSessionExecutionLease('s', O('x'), leaseFence(l), LONG);
    await store.renewSessionExecutionLease(leaseFence(l), LONG);
    await store.releaseSessionExecutionLease(leaseCompletion(l));
    expect(run.mock.calls.map((c) => c[0])).toEqual([
      'rts_try_claim_lease',
      'rts_reclaim_lease',
      'rts_renew_lease',
      'rts_release_lease',
    ]);
  });
});

describe('lease scripts: races across separate connections', () => {
  test('8 connections racing the first tryClaim: exactly one acquired, 7 busy with the winner as holder', async (ctx) => {
    const prefix = testPrefix(ctx);
    const stores = await Promise.all(Array.from({ length: 8 }, () => openStore(prefix, ctx)));
    for (let round = 0; round < 5; round++) {
      const sessionId = `race-${round}`;
      const outcomes = await Promise.all(
        stores.map((s, i) => s.tryClaimSessionExecutionLease(sessionId, O(`w${i}`), LONG)),
      );
      const winners = outcomes.filter((o) => o.outcome === 'acquired');
      expect(winners).toHaveLength(1);
      const lease = acquired(winners[0]);
      expect(lease.fencingToken).toBe(1);
      for (const o of outcomes.filter((x) => x.outcome === 'busy')) expect(busyHolder(o)).toEqual(lease);
    }
  });

  test.skipIf(!HAS_PROC)(
    '8 connections racing reclaims of a dead local_process holder: exactly one wins',
    async (ctx) => {
      const prefix = testPrefix(ctx);
      const stores = await Promise.all(Array.from({ length: 8 }, () => openStore(prefix, ctx)));
      const holder = acquired(await stores[0].tryClaimSessionExecutionLease('s', deadProcessOwner('dead'), LONG));
      const outcomes = await Promise.all(
        stores.map((s, i) => s.reclaimSessionExecutionLease('s', liveProcessOwner(`c${i}`), leaseFence(holder), LONG)),
      );
      const winners = outcomes.filter((o) => o.outcome === 'acquired');
      expect(winners).toHaveLength(1);
      const lease = acquired(winners[0]);
      expect(lease.fencingToken).toBe(2);
      // The losers' observation went stale the moment the winner took over.
      for (const o of outcomes.filter((x) => x.outcome === 'busy')) expect(busyHolder(o)).toEqual(lease);
    },
  );

  test.skipIf(!HAS_PROC)('a stale observedHolder never evicts a newer holder', async (ctx) => {
    const { store } = await fresh(ctx);
    const dead = deadProcessOwner('dead');
    const g1 = acquired(await store.tryClaimSessionExecutionLease('s', dead, LONG));
    // Another dead process took over by reclaim: generation 2, same host and boot.
    const dead2 = deadProcessOwner('dead2');
    const g2 = acquired(await store.reclaimSessionExecutionLease('s', dead2, leaseFence(g1), LONG));
    expect(g2.fencingToken).toBe(2);
    // Every claimant still holding the generation-1 observation is busy, although g2's holder is
    // dead too: the observation does not match what is stored.
    const stale = await store.reclaimSessionExecutionLease('s', liveProcessOwner('c'), leaseFence(g1), LONG);
    expect(busyHolder(stale)).toEqual(g2);
    // An observation that differs only in liveness is stale as well.
    const lv = g2.owner.liveness;
    if (lv?.kind !== 'local_process') throw new Error('expected local_process');
    for (const liveness of [
      { kind: 'opaque' as const },
      { ...lv, processStart: `${lv.processStart}1` },
      { ...lv, pid: lv.pid + 1 },
    ]) {
      const observed = { ...leaseFence(g2), owner: { ...g2.owner, liveness } };
      expect(busyHolder(await store.reclaimSessionExecutionLease('s', liveProcessOwner('c'), observed, LONG))).toEqual(
        g2,
      );
    }
    // The exact observation of the dead generation-2 holder wins.
    const g3 = acquired(await store.reclaimSessionExecutionLease('s', liveProcessOwner('c'), leaseFence(g2), LONG));
    expect(g3.fencingToken).toBe(3);
    // And a live holder (this process) is never evicted.
    expect(
      busyHolder(await store.reclaimSessionExecutionLease('s', liveProcessOwner('d'), leaseFence(g3), LONG)),
    ).toEqual(g3);
  });
});

describe('lease scripts: T9 and wake-ups', () => {
  async function strandAcceptedInput(store: RuntimeStore, sessionId: string): Promise<SessionExecutionLease> {
    await store.enqueuePendingTurnInput({
      sessionId,
      inputId: 'q1',
      sourceKey: 'k:q1',
      ingress: { scope: 'active_turn', turnId: 't1' },
      input: { text: 'q1' },
    });
    const l1 = acquired(await store.tryClaimSessionExecutionLease(sessionId, O('a'), LONG));
    const claim = await store.claimActiveTurnInputs({
      sessionId,
      fence: leaseFence(l1),
      owner: O('a'),
      turnId: 't1',
      checkpoint: 'after_work',
      maxInputs: 10,
      leaseTtlMs: LONG,
    });
    expect(claim?.inputs.map((i) => i.state)).toEqual(['accepted']);
    expect(claim?.inputs.map((i) => i.inputId)).toEqual(['q1']);
    return l1;
  }

  test('requeue: a fresh acquisition moves accepted input of a dead generation to the next turn', async (ctx) => {
    const { store, layout } = await fresh(ctx);
    const l1 = await strandAcceptedInput(store, 's');
    // Re-entry is not a fresh acquisition: nothing moves.
    acquired(await store.tryClaimSessionExecutionLease('s', O('a'), 0));
    const keys = layout.session('s').byName;
    expect(await adminClient().zcard(keys.accepted)).toBe(1);
    const l2 = acquired(await store.tryClaimSessionExecutionLease('s', O('b'), LONG));
    expect(l2.fencingToken).toBe(l1.fencingToken + 1);
    expect(await adminClient().zcard(keys.accepted)).toBe(0);
    expect(await adminClient().zrange(keys.next, '0', '-1', 'WITHSCORES')).toEqual(['q1', '1']);
    const list = await store.listPendingTurnInputs('s');
    expect(list.map((i) => [i.state, i.ingress])).toEqual([['deferred_next_turn', { scope: 'next_turn' }]]);
  });

  test('keep: a fresh acquisition leaves accepted input where it is', async (ctx) => {
    const { store, layout } = await fresh(ctx, { strandedTurnInputs: 'keep' });
    await strandAcceptedInput(store, 's');
    acquired(await store.tryClaimSessionExecutionLease('s', O('a'), 0));
    acquired(await store.tryClaimSessionExecutionLease('s', O('b'), LONG));
    const keys = layout.session('s').byName;
    expect(await adminClient().zrange(keys.accepted, '0', '-1', 'WITHSCORES')).toEqual(['q1', '1']);
    expect(await store.listPendingTurnInputs('s')).toEqual([]);
  });

  test('release sends a wake-up only when it leaves dispatchable input', async (ctx) => {
    const { store } = await fresh(ctx);
    const wake = vi.spyOn(store.ctx, 'wake');
    const l1 = acquired(await store.tryClaimSessionExecutionLease('quiet', O('w'), LONG));
    await store.releaseSessionExecutionLease(leaseCompletion(l1));
    expect(wake).not.toHaveBeenCalled();

    await store.enqueuePendingTurnInput({ sessionId: 'busy', ingress: { scope: 'next_turn' }, input: { text: 'n' } });
    wake.mockClear();
    const l2 = acquired(await store.tryClaimSessionExecutionLease('busy', O('w'), LONG));
    // A stale release leaves the live lease in place: not dispatchable.
    await store.releaseSessionExecutionLease({ ...leaseCompletion(l2), leaseToken: 'stale' });
    expect(wake).not.toHaveBeenCalled();
    await store.releaseSessionExecutionLease(leaseCompletion(l2));
    expect(wake.mock.calls).toEqual([['busy']]);
  });
});

describe('vacuum (lua/vacuum-scan.lua, lua/vacuum-session.lua)', () => {
  test('removes only due tombstones, with their id, source-key and index entries; keeps everything else', async (ctx) => {
    const { store, layout } = await fresh(ctx);
    const admin = adminClient();
    const keys = layout.session('v').byName;
    const a = await store.enqueuePendingTurnInput({
      sessionId: 'v',
      sourceKey: 'src:a',
      ingress: { scope: 'next_turn' },
      input: { text: 'a' },
    });
    const b = await store.enqueuePendingTurnInput({
      sessionId: 'v',
      sourceKey: 'src:b',
      ingress: { scope: 'next_turn' },
      input: { text: 'b' },
    });
    const c = await store.enqueuePendingTurnInput({
      sessionId: 'v',
      ingress: { scope: 'next_turn' },
      input: { text: 'c' },
    });
    const lease = acquired(await store.tryClaimSessionExecutionLease('v', O('w'), LONG));

    const enc = layout.session('v').encodedSessionId;
    /** The tomb list (docs/KEYS.md): one `<terminalAtMs>|<inputId>` per tombstone, oldest first. */
    const tomb = async () => await admin.lrange(keys.tomb, 0, -1);
    const terminalAt = (entry: string | undefined) => Number(entry?.slice(0, entry.indexOf('|')));

    await store.cancelPendingTurnInput('v', a.inputId);
    const aTerminal = terminalAt((await tomb())[0]);
    expect(await tomb()).toEqual([`${aTerminal}|${a.inputId}`]);
    expect(await admin.hget(keys.states, a.inputId)).toBe(`cancelled|1|0||${aTerminal}|n||src:a`);
    // Wait on the server clock (what vacuum measures age by), not on this process's.
    while ((await serverNow()) < aTerminal + 250) await new Promise((r) => setTimeout(r, 5));
    await store.cancelPendingTurnInput('v', b.inputId);
    const bTerminal = terminalAt((await tomb())[1]);
    expect(await tomb()).toEqual([`${aTerminal}|${a.inputId}`, `${bTerminal}|${b.inputId}`]);
    expect(bTerminal).toBeGreaterThanOrEqual(aTerminal + 250);
    expect(Number(await admin.zscore(keys.tombs, enc))).toBe(aTerminal);

    // Nothing is old enough yet under the default retention (7 days).
    expect(await store.vacuum()).toEqual({ removedPendingTurnInputTombstones: 0 });

    // Only a is at least 200 ms old.
    expect(await store.vacuum({ olderThanMs: 200 })).toEqual({ removedPendingTurnInputTombstones: 1 });
    expect(await admin.hexists(keys.inputs, a.inputId)).toBe(0);
    expect(await admin.hexists(keys.states, a.inputId)).toBe(0);
    expect(await admin.hexists(keys.src, 'src:a')).toBe(0);
    expect(await tomb()).toEqual([`${bTerminal}|${b.inputId}`]);
    expect(Number(await admin.zscore(keys.tombs, enc))).toBe(bTerminal);
    expect(await admin.hexists(keys.src, 'src:b')).toBe(1);
    expect(await store.cancelPendingTurnInput('v', a.inputId)).toEqual({ outcome: 'not_found' });
    expect((await store.cancelPendingTurnInput('v', b.inputId)).outcome).toBe('already_cancelled');

    // 0 removes every tombstone; the session leaves the shard index.
    expect(await store.vacuum({ olderThanMs: 0 })).toEqual({ removedPendingTurnInputTombstones: 1 });
    expect(await admin.exists(keys.tomb)).toBe(0);
    expect(await admin.zscore(keys.tombs, enc)).toBeNull();
    expect(await admin.hkeys(keys.inputs)).toEqual([c.inputId]);
    // c is a plain next-turn row that never moved: it has no state entry at all.
    expect(await admin.hlen(keys.states)).toBe(0);
    expect(await admin.hlen(keys.src)).toBe(0);

    // Untouched: the pending row, the counter, the lease.
    expect((await store.listPendingTurnInputs('v')).map((i) => i.inputId)).toEqual([c.inputId]);
    expect(await admin.hget(keys.lease, 'lastEnqueueSeq')).toBe('3');
    expect(busyHolder(await store.tryClaimSessionExecutionLease('v', O('x'), LONG))).toEqual(lease);
    expect(await store.vacuum({ olderThanMs: 0 })).toEqual({ removedPendingTurnInputTombstones: 0 });

    // An identical enqueue after vacuum is a new row with a new seq.
    const a2 = await store.enqueuePendingTurnInput({
      sessionId: 'v',
      sourceKey: 'src:a',
      ingress: { scope: 'next_turn' },
      input: { text: 'a' },
    });
    expect(a2.inputId).not.toBe(a.inputId);
    expect(a2.enqueueSeq).toBe(4);
  });

  test('vacuum covers every session of the store and leaves other prefixes alone', async (ctx) => {
    const { store, layout } = await fresh(ctx);
    const other = await fresh(ctx);
    const sessions = Array.from({ length: 300 }, (_, i) => (i % 3 === 0 ? `s:{${i}}` : `s ${i} é`));
    await Promise.all(
      sessions.map(async (sessionId) => {
        const row = await store.enqueuePendingTurnInput({
          sessionId,
          ingress: { scope: 'next_turn' },
          input: payload(1),
        });
        await store.cancelPendingTurnInput(sessionId, row.inputId);
      }),
    );
    const o = await other.store.enqueuePendingTurnInput({
      sessionId: 's 1 é',
      ingress: { scope: 'next_turn' },
      input: payload(2),
    });
    await other.store.cancelPendingTurnInput('s 1 é', o.inputId);

    expect(await store.vacuum({ olderThanMs: 0 })).toEqual({ removedPendingTurnInputTombstones: 300 });
    expect(await adminClient().zcard(layout.session('s 1 é').byName.tombs)).toBe(0);
    expect(await adminClient().zcard(other.layout.session('s 1 é').byName.tombs)).toBe(1);
    expect(await other.store.vacuum({ olderThanMs: 0 })).toEqual({ removedPendingTurnInputTombstones: 1 });
  });

  test('vacuum rejects a bad olderThanMs before any I/O', async (ctx) => {
    const { store } = await fresh(ctx);
    for (const olderThanMs of [-1, 1.5, Number.NaN, 2 ** 53]) {
      const e = await store.vacuum({ olderThanMs }).catch((x: unknown) => x);
      expect(isStoreError(e, 'InvalidInput')).toBe(true);
    }
  });
});

function payload(n: number): { n: number } {
  return { n };
}
