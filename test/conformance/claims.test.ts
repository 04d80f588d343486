/**
 * SPEC.md sections 3.4 (claims and their liveness), 3.5 (T4-T9), 3.7 (boundary admission),
 * 5.6 (claims), 5.7 (abandon) and 5.8 (claimCompletion), against both backends.
 */
import { expect, type TestContext, test } from 'vitest';
import {
  claimCompletion,
  type LeaseOwnerIdentity,
  leaseCompletion,
  leaseFence,
  type PendingTurnInput,
  type SessionExecutionLeaseFence,
  type TurnInputClaim,
  turnCommitHash,
} from '../../src/index.js';
import { type Backend, describeBackends } from './backends.js';
import {
  acquire,
  at,
  claimActive,
  claimNext,
  enqueue,
  expectStoreError,
  ids,
  minimalCommit,
  nt,
  O,
} from './fixtures.js';

/** A lease that lives through a few round trips, then expires after `EXPIRE_WAIT` of store time. */
const SHORT_TTL = 300;
const EXPIRE_WAIT = 350;

const deferred = (r: PendingTurnInput): PendingTurnInput => ({
  ...r,
  state: 'deferred_next_turn',
  ingress: { scope: 'next_turn' },
});

describeBackends('claims', (b) => {
  // ------------------------------------------------------------------ identity (3.4)

  test('claimNextTurnInputs: identity fields, mode and inputs in enqueueSeq order', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const F = await enqueue(store, 's', nt('F'));
    const S = await enqueue(store, 's', nt('S', { sourceKey: 'ks' }));
    const lease = await acquire(store, 's', O('w'));
    const claimer: LeaseOwnerIdentity = { ownerId: 'claimer', incarnationId: 'claimer:7' };
    const claim = await claimNext(store, lease, { owner: claimer, leaseTtlMs: 5_000 });
    expect(claim).not.toBeNull();
    const k = claim!;
    expect(k.sessionId).toBe('s');
    expect(k.claimId).toBe('tic:1:1');
    expect(k.fencingToken).toBe(1);
    expect(k.sessionLeaseGeneration).toBe(1);
    expect(typeof k.leaseToken).toBe('string');
    expect(k.leaseToken.length).toBeGreaterThan(0);
    expect(k.leaseToken).not.toBe(lease.leaseToken);
    // The store records the request's owner (normalised), not the fence's.
    expect(k.owner).toEqual({ ...claimer, liveness: { kind: 'opaque' } });
    expect(k.claimedAtEpochMs).toBeGreaterThanOrEqual(lease.claimedAtEpochMs);
    expect(k.expiresAtEpochMs).toBe(k.claimedAtEpochMs + 5_000);
    expect(k.mode).toEqual({ kind: 'next_turn' });
    expect(k.inputs).toEqual([F, S]);
    expect(Object.keys(k).sort()).toEqual(
      [
        'claimId',
        'claimedAtEpochMs',
        'expiresAtEpochMs',
        'fencingToken',
        'inputs',
        'leaseToken',
        'mode',
        'owner',
        'sessionId',
        'sessionLeaseGeneration',
      ].sort(),
    );
    expect(claimCompletion(k)).toEqual({
      sessionId: 's',
      claimId: 'tic:1:1',
      leaseToken: k.leaseToken,
      inputIds: [F.inputId, S.inputId],
    });
    expect(Object.keys(claimCompletion(k)).sort()).toEqual(['claimId', 'inputIds', 'leaseToken', 'sessionId']);
  });

  test('claimActiveTurnInputs: accepted rows, mode carries turn and checkpoint', async (ctx) => {
    const { store } = await b.fresh(ctx);
    await enqueue(store, 's', nt('n'));
    const a = await enqueue(store, 's', at('t1', undefined, 'a'));
    await enqueue(store, 's', at('t2', undefined, 'other'));
    const lease = await acquire(store, 's');
    const k = await claimActive(store, lease, 't1', 'after_work', { leaseTtlMs: 0 });
    expect(k!.claimId).toBe('tic:2:1');
    expect(k!.mode).toEqual({ kind: 'active_turn', turnId: 't1', checkpoint: 'after_work' });
    expect(k!.inputs).toEqual([{ ...a, state: 'accepted' }]);
    expect(k!.expiresAtEpochMs).toBe(k!.claimedAtEpochMs);
  });

  // ------------------------------------------------------------------ selection (5.6)

  test('a generation never re-claims rows it holds: the second claim is null and the list is empty', async (ctx) => {
    const { store } = await b.fresh(ctx);
    await enqueue(store, 's', nt('1'));
    await enqueue(store, 's', at('t', undefined, '2'));
    const lease = await acquire(store, 's');
    expect(await claimNext(store, lease)).not.toBeNull();
    expect(await claimActive(store, lease, 't', 'before_completion')).not.toBeNull();
    expect(await claimNext(store, lease)).toBeNull();
    expect(await claimActive(store, lease, 't', 'before_completion')).toBeNull();
    expect(await claimActive(store, lease, 't', 'after_work')).toBeNull();
    expect(await store.listPendingTurnInputs('s')).toEqual([]);
    // Re-entry keeps the generation: still null.
    const again = await acquire(store, 's');
    expect(again.fencingToken).toBe(1);
    expect(await claimNext(store, again)).toBeNull();
  });

  test('next mode takes only deferred_next_turn rows; active mode only pending_active rows of its turn', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const a1 = await enqueue(store, 's', at('t1', undefined, 'a1'));
    const n1 = await enqueue(store, 's', nt('n1'));
    const o1 = await enqueue(store, 's', at('t-other', undefined, 'o1'));
    const n2 = await enqueue(store, 's', nt('n2'));
    const a2 = await enqueue(store, 's', at('t1', undefined, 'a2'));
    const lease = await acquire(store, 's');
    const kn = await claimNext(store, lease);
    expect(ids(kn!.inputs)).toEqual([n1.inputId, n2.inputId]);
    expect(kn!.claimId).toBe(`tic:${n1.enqueueSeq}:1`);
    const ka = await claimActive(store, lease, 't1', 'after_work');
    expect(ids(ka!.inputs)).toEqual([a1.inputId, a2.inputId]);
    expect(ka!.claimId).toBe(`tic:${a1.enqueueSeq}:1`);
    expect(await store.listPendingTurnInputs('s')).toEqual([o1]);
    expect(await claimActive(store, lease, 'no-such-turn', 'before_completion')).toBeNull();
  });

  test('maxInputs limits the selection, which skips ineligible rows instead of stopping at them', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const rows: PendingTurnInput[] = [];
    for (let i = 0; i < 6; i++) {
      rows.push(await enqueue(store, 's', nt(`n${i}`)));
      await enqueue(store, 's', at('t', 'before_completion', `x${i}`));
    }
    await store.cancelPendingTurnInput('s', rows[1]!.inputId);
    const lease = await acquire(store, 's');
    const k1 = await claimNext(store, lease, { maxInputs: 2 });
    expect(ids(k1!.inputs)).toEqual(ids([rows[0]!, rows[2]!]));
    const k2 = await claimNext(store, lease, { maxInputs: 2 });
    expect(ids(k2!.inputs)).toEqual(ids([rows[3]!, rows[4]!]));
    expect(k2!.claimId).toBe(`tic:${rows[3]!.enqueueSeq}:1`);
    const k3 = await claimNext(store, lease, { maxInputs: 1000 });
    expect(ids(k3!.inputs)).toEqual(ids([rows[5]!]));
  });

  test('34 successive maxInputs:1 next claims under one lease return the 34 inputs in order', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const eligible: PendingTurnInput[] = [];
    for (let i = 0; i < 34; i++) {
      // Ineligible rows in between: active input and cancelled input.
      if (i % 3 === 0) await enqueue(store, 's', at('t', undefined, `active-${i}`));
      if (i % 5 === 0) {
        const c = await enqueue(store, 's', nt(`cancelled-${i}`));
        await store.cancelPendingTurnInput('s', c.inputId);
      }
      eligible.push(await enqueue(store, 's', nt(`n-${i}`)));
    }
    const lease = await acquire(store, 's');
    const got: string[] = [];
    for (let i = 0; i < 34; i++) {
      const k = await claimNext(store, lease, { maxInputs: 1 });
      expect(k, `claim ${i + 1}`).not.toBeNull();
      expect(k!.inputs).toHaveLength(1);
      expect(k!.claimId).toBe(`tic:${eligible[i]!.enqueueSeq}:1`);
      got.push(k!.inputs[0]!.inputId);
    }
    expect(got).toEqual(ids(eligible));
    expect(await claimNext(store, lease, { maxInputs: 1 })).toBeNull();
  });

  test('k successive maxInputs:1 active claims at after_work return the k admitted inputs in order', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const eligible: PendingTurnInput[] = [];
    for (let i = 0; i < 34; i++) {
      await enqueue(store, 's', at('t1', 'before_completion', `bc-${i}`));
      if (i % 2 === 0) await enqueue(store, 's', at('t2', undefined, `other-${i}`));
      if (i % 4 === 0) await enqueue(store, 's', nt(`next-${i}`));
      eligible.push(await enqueue(store, 's', at('t1', i % 2 ? 'after_work' : undefined, `aw-${i}`)));
    }
    const lease = await acquire(store, 's');
    for (let i = 0; i < 34; i++) {
      const k = await claimActive(store, lease, 't1', 'after_work', { maxInputs: 1 });
      expect(k, `claim ${i + 1}`).not.toBeNull();
      expect(ids(k!.inputs)).toEqual([eligible[i]!.inputId]);
      expect(k!.inputs[0]!.state).toBe('accepted');
    }
    expect(await claimActive(store, lease, 't1', 'after_work', { maxInputs: 1 })).toBeNull();
  });

  test('the scan never misses an eligible row behind many held or ineligible rows', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const lease = await acquire(store, 's');
    // 150 next-turn rows, all held by this generation.
    for (let i = 0; i < 150; i++) await enqueue(store, 's', nt(`held-${i}`));
    const held = await claimNext(store, lease, { maxInputs: 1000 });
    expect(held!.inputs).toHaveLength(150);
    // 150 rows the next scan must skip: active input of the same and other turns, and tombstones.
    for (let i = 0; i < 50; i++) {
      await enqueue(store, 's', at('t1', 'before_completion', `bc-${i}`));
      await enqueue(store, 's', at('t2', undefined, `other-${i}`));
      const c = await enqueue(store, 's', nt(`cancelled-${i}`));
      await store.cancelPendingTurnInput('s', c.inputId);
    }
    const lateNext = await enqueue(store, 's', nt('late next'));
    const lateActive = await enqueue(store, 's', at('t1', 'after_work', 'late active'));
    const kn = await claimNext(store, lease, { maxInputs: 1 });
    expect(ids(kn!.inputs)).toEqual([lateNext.inputId]);
    expect(kn!.claimId).toBe(`tic:${lateNext.enqueueSeq}:1`);
    const ka = await claimActive(store, lease, 't1', 'after_work', { maxInputs: 1 });
    expect(ids(ka!.inputs)).toEqual([lateActive.inputId]);
    expect(await claimNext(store, lease, { maxInputs: 1 })).toBeNull();
    expect(await claimActive(store, lease, 't1', 'after_work', { maxInputs: 1 })).toBeNull();
  });

  test('a selection that spans several scan batches takes each row once, in order', async (ctx) => {
    // Redis scans `next` in batches of maxInputs + 32 rows: with 33 held rows ahead, the first
    // batch of a maxInputs:2 claim ends on an eligible row, and the rest is in later batches.
    const { store } = await b.fresh(ctx);
    const lease = await acquire(store, 's');
    for (let i = 0; i < 33; i++) await enqueue(store, 's', nt(`held-${i}`));
    expect((await claimNext(store, lease, { maxInputs: 33 }))!.inputs).toHaveLength(33);
    const free: PendingTurnInput[] = [];
    for (let i = 0; i < 80; i++) free.push(await enqueue(store, 's', nt(`free-${i}`)));
    const two = await claimNext(store, lease, { maxInputs: 2 });
    expect(ids(two!.inputs)).toEqual(ids(free.slice(0, 2)));
    // 35 held now: a maxInputs:40 claim reads two batches of 72 (ranks 0-71, then 72-112).
    const rest = await claimNext(store, lease, { maxInputs: 40 });
    expect(ids(rest!.inputs)).toEqual(ids(free.slice(2, 42)));
    const all = await claimNext(store, lease, { maxInputs: 1000 });
    expect(ids(all!.inputs)).toEqual(ids(free.slice(42)));
  });

  test('a claim whose lease expired, or whose generation was superseded, no longer hides or protects its rows', async (ctx) => {
    const { store, advance } = await b.fresh(ctx);
    const n = await enqueue(store, 's', nt('n'));
    const m = await enqueue(store, 's', nt('m'));
    const l1 = await acquire(store, 's', O('w1'), SHORT_TTL);
    await claimNext(store, l1);
    expect(await store.listPendingTurnInputs('s')).toEqual([]);
    await advance(EXPIRE_WAIT);
    // Expired: the claim is dead for lease-less paths.
    expect(await store.listPendingTurnInputs('s')).toEqual([n, m]);
    expect(await store.cancelPendingTurnInput('s', n.inputId)).toEqual({
      outcome: 'cancelled',
      input: { ...n, state: 'cancelled' },
    });
    // Superseded: generation 2 is live but has not claimed m, whose claim is generation 1's.
    const l2 = await acquire(store, 's', O('w2'));
    expect(l2.fencingToken).toBe(2);
    expect(await store.listPendingTurnInputs('s')).toEqual([m]);
    expect(await store.cancelPendingTurnInput('s', m.inputId)).toEqual({
      outcome: 'cancelled',
      input: { ...m, state: 'cancelled' },
    });
    expect(await claimNext(store, l2)).toBeNull();
  });

  test('vacuum never touches claim counters, non-terminal rows or settled state', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const n = await enqueue(store, 's', nt('n'));
    const done = await enqueue(store, 's', nt('done'));
    const lease = await acquire(store, 's');
    const k1 = await claimNext(store, lease, { maxInputs: 1 });
    expect(ids(k1!.inputs)).toEqual([n.inputId]);
    const k2 = await claimNext(store, lease, { maxInputs: 1 });
    await store.session('s').commitRuntimeState(minimalCommit(lease, [k2!]));
    await store.abandonTurnInputClaim(k1!);
    expect(await store.vacuum({ olderThanMs: 0 })).toEqual({ removedPendingTurnInputTombstones: 1 });
    expect(await store.listPendingTurnInputs('s')).toEqual([n]);
    const again = await claimNext(store, lease);
    expect(again!.claimId).toBe(`tic:${n.enqueueSeq}:2`);
    const head = await store.session('s').loadSession({ kind: 'full_graph' });
    expect(head!.headRevision).toBe(1);
    expect(await store.cancelPendingTurnInput('s', done.inputId)).toEqual({ outcome: 'not_found' });
  });

  // ------------------------------------------------------------------ boundary admission (3.7)

  test('after_work input is admitted at both checkpoints; before_completion input only at before_completion', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const a1 = await enqueue(store, 's', at('t1', 'after_work', 'a1'));
    const a2 = await enqueue(store, 's', at('t1', 'before_completion', 'a2'));
    const a3 = await enqueue(store, 's', at('t1', undefined, 'a3'));
    const lease = await acquire(store, 's');
    const k = await claimActive(store, lease, 't1', 'before_completion');
    expect(k!.inputs).toEqual([a1, a2, a3].map((r) => ({ ...r, state: 'accepted' })));
    expect(k!.claimId).toBe('tic:1:1');

    const { store: s2 } = await b.fresh(ctx);
    const c1 = await enqueue(s2, 's', at('t1', 'after_work', 'a1'));
    const c2 = await enqueue(s2, 's', at('t1', 'before_completion', 'a2'));
    const c3 = await enqueue(s2, 's', at('t1', undefined, 'a3'));
    const l2 = await acquire(s2, 's');
    const kAw = await claimActive(s2, l2, 't1', 'after_work');
    expect(ids(kAw!.inputs)).toEqual([c1.inputId, c3.inputId]);
    expect(await claimActive(s2, l2, 't1', 'after_work')).toBeNull();
    expect(await s2.listPendingTurnInputs('s')).toEqual([c2]);
    const kBc = await claimActive(s2, l2, 't1', 'before_completion');
    expect(ids(kBc!.inputs)).toEqual([c2.inputId]);
    expect(kBc!.claimId).toBe('tic:2:1');
  });

  // ------------------------------------------------------------------ the fence (3.3)

  test('maxInputs 0 returns null at once, even with a garbage-but-valid fence', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const n = await enqueue(store, 's', nt('n'));
    const a = await enqueue(store, 's', at('t', undefined, 'a'));
    const garbage: SessionExecutionLeaseFence = {
      sessionId: 'not-even-this-session',
      owner: O('ghost'),
      leaseToken: 'no-such-token',
      fencingToken: 12345,
    };
    const base = { sessionId: 's', fence: garbage, owner: O('ghost'), leaseTtlMs: 1_000, maxInputs: 0 };
    expect(await store.claimNextTurnInputs(base)).toBeNull();
    expect(await store.claimActiveTurnInputs({ ...base, turnId: 't', checkpoint: 'after_work' })).toBeNull();
    expect(await store.listPendingTurnInputs('s')).toEqual([n, a]);
    // Also with a live lease held by someone else: nothing is claimed.
    const lease = await acquire(store, 's');
    expect(await claimNext(store, lease, { maxInputs: 0 })).toBeNull();
    expect(await store.listPendingTurnInputs('s')).toEqual([n, a]);
  });

  test('a claim under a released, expired or superseded fence rejects with SessionExecutionLeaseExpired', async (ctx) => {
    const { store, advance } = await b.fresh(ctx);
    const n = await enqueue(store, 's', nt('n'));
    const tryBoth = async (fence: SessionExecutionLeaseFence, sessionId = 's') => {
      await expectStoreError(claimNext(store, fence, { sessionId }), 'SessionExecutionLeaseExpired', { sessionId });
      await expectStoreError(
        claimActive(store, fence, 't', 'after_work', { sessionId }),
        'SessionExecutionLeaseExpired',
        {
          sessionId,
        },
      );
    };

    // Released.
    const l1 = await acquire(store, 's', O('w1'));
    await store.releaseSessionExecutionLease(leaseCompletion(l1));
    await tryBoth(leaseFence(l1));
    // Expired (nobody took it).
    const l2 = await acquire(store, 's', O('w2'), 30);
    await advance(50);
    await tryBoth(leaseFence(l2));
    // TTL 0: dead on arrival.
    const l3 = await acquire(store, 's', O('w3'), 0);
    await tryBoth(leaseFence(l3));
    // Superseded by a newer generation.
    const l4 = await acquire(store, 's', O('w4'));
    expect(l4.fencingToken).toBe(4);
    const a = await enqueue(store, 's', at('t', undefined, 'a'));
    await tryBoth(leaseFence(l1));
    await tryBoth(leaseFence(l3));
    // Forged variants of the live fence.
    const f4 = leaseFence(l4);
    await tryBoth({ ...f4, leaseToken: 'forged' });
    await tryBoth({ ...f4, fencingToken: 3 });
    await tryBoth({ ...f4, owner: { ownerId: 'w4', incarnationId: 'w4:2' } });
    // A fence of session s presented for session "other" (no lease there): details name the target.
    await tryBoth(f4, 'other');
    // Nothing was written by any of those: the live generation claims everything, first claim of each row.
    const kn = await claimNext(store, l4);
    expect(kn!.inputs).toEqual([n]);
    expect(kn!.claimId).toBe(`tic:${n.enqueueSeq}:1`);
    const ka = await claimActive(store, l4, 't', 'after_work');
    expect(ka!.claimId).toBe(`tic:${a.enqueueSeq}:1`);
  });

  test('a fence of session A cannot claim in session B, even where B has its own lease', async (ctx) => {
    const { store } = await b.fresh(ctx);
    await enqueue(store, 'b', nt('x'));
    const la = await acquire(store, 'a', O('w'));
    await acquire(store, 'b', O('w'));
    await expectStoreError(claimNext(store, leaseFence(la), { sessionId: 'b' }), 'SessionExecutionLeaseExpired', {
      sessionId: 'b',
    });
  });

  // ------------------------------------------------------------------ abandon (5.7, T6, T7)

  test('abandon frees next-turn rows; reclaiming gives a higher fencingToken and a new claimId', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const F = await enqueue(store, 's', nt('F'));
    const S = await enqueue(store, 's', nt('S'));
    const lease = await acquire(store, 's');
    const K = await claimNext(store, lease);
    expect(await store.listPendingTurnInputs('s')).toEqual([]);
    await store.abandonTurnInputClaim(K!);
    expect(await store.listPendingTurnInputs('s')).toEqual([F, S]);
    const R = await claimNext(store, lease);
    expect(R!.claimId).toBe('tic:1:2');
    expect(R!.fencingToken).toBe(2);
    expect(R!.claimId).not.toBe(K!.claimId);
    expect(R!.leaseToken).not.toBe(K!.leaseToken);
    expect(R!.inputs).toEqual([F, S]);
  });

  test('abandon of an active claim returns accepted rows to pending_active (T6) with the original ingress', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const a = await enqueue(store, 's', at('t1', 'before_completion', 'a', { sourceKey: 'ka' }));
    const lease = await acquire(store, 's');
    const K = await claimActive(store, lease, 't1', 'before_completion');
    expect(K!.inputs[0]!.state).toBe('accepted');
    await store.abandonTurnInputClaim(K!);
    expect(await store.listPendingTurnInputs('s')).toEqual([a]);
    expect(await enqueue(store, 's', at('t1', 'before_completion', 'a', { sourceKey: 'ka' }))).toEqual(a);
    const R = await claimActive(store, lease, 't1', 'before_completion');
    expect(R!.claimId).toBe('tic:1:2');
    expect(R!.fencingToken).toBe(2);
  });

  test('abandon of an active claim whose turn is already stamped defers the rows to next_turn (T6)', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const a = await enqueue(store, 's', at('t1', undefined, 'a'));
    const lease = await acquire(store, 's');
    const K = await claimActive(store, lease, 't1', 'after_work');
    const stamp = minimalCommit(lease, []);
    stamp.turnCommit = { sessionId: 's', turnId: 't1', turnCommitHash: turnCommitHash(stamp) };
    await store.session('s').commitRuntimeState(stamp);
    await store.abandonTurnInputClaim(K!);
    expect(await store.listPendingTurnInputs('s')).toEqual([deferred(a)]);
    const R = await claimNext(store, lease);
    expect(R!.inputs).toEqual([deferred(a)]);
    expect(R!.claimId).toBe('tic:1:2');
  });

  test('abandon is idempotent and a stale claim never disturbs a newer holder', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const n = await enqueue(store, 's', nt('n'));
    const lease = await acquire(store, 's');
    const K = await claimNext(store, lease);
    await store.abandonTurnInputClaim(K!);
    await store.abandonTurnInputClaim(K!);
    const R = await claimNext(store, lease);
    await expect(store.abandonTurnInputClaim(K!)).resolves.toBeUndefined();
    // A forged token with R's claim id does nothing either.
    await store.abandonTurnInputClaim({ ...R!, leaseToken: 'forged' });
    await store.abandonTurnInputClaims([K!, { ...R!, leaseToken: 'forged' }]);
    expect(await store.listPendingTurnInputs('s')).toEqual([]);
    expect(await store.cancelPendingTurnInput('s', n.inputId)).toMatchObject({
      outcome: 'already_claimed',
      claim: { claimId: R!.claimId, claimFencingToken: 2 },
    });
    // Completed claims cannot be abandoned back to life.
    await store.session('s').commitRuntimeState(minimalCommit(lease, [R!]));
    await store.abandonTurnInputClaim(R!);
    expect(await store.cancelPendingTurnInput('s', n.inputId)).toEqual({
      outcome: 'already_completed',
      input: { ...n, state: 'completed' },
    });
  });

  test('abandon needs no lease: it works after the lease is released or expired', async (ctx) => {
    const { store, advance } = await b.fresh(ctx);
    const a = await enqueue(store, 's', at('t1', undefined, 'a', { sourceKey: 'ka' }));
    const lease = await acquire(store, 's', O('w'), SHORT_TTL);
    const K = await claimActive(store, lease, 't1', 'after_work');
    await advance(EXPIRE_WAIT);
    await store.abandonTurnInputClaim(K!);
    // T6: back to pending_active (t1 has no stamp), listed.
    expect(await store.listPendingTurnInputs('s')).toEqual([a]);
  });

  test('abandonTurnInputClaims applies claims of several sessions; an empty list does nothing', async (ctx) => {
    const { store } = await b.fresh(ctx);
    await store.abandonTurnInputClaims([]);
    const x1 = await enqueue(store, 'x', nt('x1'));
    const x2 = await enqueue(store, 'x', nt('x2'));
    const y1 = await enqueue(store, 'y', at('t', undefined, 'y1'));
    const lx = await acquire(store, 'x');
    const ly = await acquire(store, 'y');
    const kx1 = await claimNext(store, lx, { maxInputs: 1 });
    const kx2 = await claimNext(store, lx, { maxInputs: 1 });
    const ky = await claimActive(store, ly, 't', 'after_work');
    await store.abandonTurnInputClaims([kx1!, ky!, kx2!]);
    expect(await store.listPendingTurnInputs('x')).toEqual([x1, x2]);
    expect(await store.listPendingTurnInputs('y')).toEqual([y1]);
    const again = await claimNext(store, lx);
    expect(again!.claimId).toBe('tic:1:2');
  });

  // ------------------------------------------------------------------ liveness (3.4)

  test('the stall deadline never revokes a claim while its generation holds the lease', async (ctx) => {
    const { store, advance } = await b.fresh(ctx);
    const n = await enqueue(store, 's', nt('n', { sourceKey: 'kn' }));
    const a = await enqueue(store, 's', at('t', undefined, 'a'));
    const lease = await acquire(store, 's', O('w'), 60_000);
    const kn = await claimNext(store, lease, { leaseTtlMs: 1 });
    const ka = await claimActive(store, lease, 't', 'after_work', { leaseTtlMs: 0 });
    expect(kn!.expiresAtEpochMs).toBe(kn!.claimedAtEpochMs + 1);
    await advance(b.name === 'memory' ? 2_000 : 30);
    expect(await store.listPendingTurnInputs('s')).toEqual([]);
    expect(await claimNext(store, lease)).toBeNull();
    expect(await claimActive(store, lease, 't', 'after_work')).toBeNull();
    expect(await store.cancelPendingTurnInput('s', n.inputId)).toMatchObject({ outcome: 'already_claimed' });
    expect(await store.cancelPendingTurnInput('s', a.inputId)).toMatchObject({ outcome: 'already_claimed' });
    // Completion checks ownership, not the stall deadline.
    const r = await store.session('s').commitRuntimeState(minimalCommit(lease, [kn!, ka!]));
    expect(r.headRevision).toBe(1);
    expect(await enqueue(store, 's', nt('n', { sourceKey: 'kn' }))).toEqual({ ...n, state: 'completed' });
  });

  test('a new generation re-claims next-turn rows held by a dead generation, replacing the claim', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const n = await enqueue(store, 's', nt('n'));
    const l1 = await acquire(store, 's', O('w1'));
    const K = await claimNext(store, l1);
    await store.releaseSessionExecutionLease(leaseCompletion(l1));
    expect(await store.listPendingTurnInputs('s')).toEqual([n]);
    const l2 = await acquire(store, 's', O('w2'));
    const R = await claimNext(store, l2);
    expect(R!.claimId).toBe('tic:1:2');
    expect(R!.fencingToken).toBe(2);
    expect(R!.sessionLeaseGeneration).toBe(2);
    // The old claim no longer owns the row: completing it fails, and abandoning it does nothing.
    await store.abandonTurnInputClaim(K!);
    await expectStoreError(store.session('s').commitRuntimeState(minimalCommit(l2, [K!])), 'TurnInputClaimSuperseded', {
      sessionId: 's',
      claimId: K!.claimId,
    });
    expect(await store.cancelPendingTurnInput('s', n.inputId)).toMatchObject({
      outcome: 'already_claimed',
      claim: { claimId: R!.claimId, claimSessionLeaseGeneration: 2, claimFencingToken: 2 },
    });
  });

  test('two claimers under the same fence: each row goes to at most one of them', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const rows: PendingTurnInput[] = [];
    for (let i = 0; i < 10; i++) rows.push(await enqueue(store, 's', nt(`r${i}`)));
    const lease = await acquire(store, 's');
    const claims = await Promise.all([1, 2, 3, 4].map(() => claimNext(store, lease, { maxInputs: 3 })));
    const taken = claims.flatMap((k) => (k ? ids(k.inputs) : []));
    expect(new Set(taken).size).toBe(taken.length);
    expect([...taken].sort()).toEqual(ids(rows).sort());
    const one = await enqueue(store, 's', nt('single'));
    const race = await Promise.all([claimNext(store, lease), claimNext(store, lease)]);
    expect(race.filter((k) => k !== null)).toHaveLength(1);
    expect(ids(race.find((k) => k !== null)!.inputs)).toEqual([one.inputId]);
  });

  // ------------------------------------------------------------------ T9 (requeue)

  async function strandedScenario(b2: Backend, ctx: TestContext, keep: boolean) {
    const { store, advance } = await b2.fresh(ctx, keep ? { strandedTurnInputs: 'keep' } : {});
    // Enqueued while no lease was live.
    const p0 = await enqueue(store, 's', at('t0', undefined, 'p0', { sourceKey: 'p0' }));
    // Worker A: generation 1, claims q1 for t1, then "crashes" (its lease expires).
    const A = await acquire(store, 's', O('A'), SHORT_TTL);
    expect(A.fencingToken).toBe(1);
    const q1 = await enqueue(store, 's', at('t1', undefined, 'q1', { sourceKey: 'q1' }));
    const kA = await claimActive(store, A, 't1', 'after_work');
    expect(ids(kA!.inputs)).toEqual([q1.inputId]);
    // Enqueued while generation 1 was live.
    const q2 = await enqueue(store, 's', at('t1', 'before_completion', 'q2', { sourceKey: 'q2' }));
    const q3 = await enqueue(store, 's', at('t2', undefined, 'q3', { sourceKey: 'q3' }));
    const n1 = await enqueue(store, 's', nt('n1'));
    await advance(EXPIRE_WAIT);
    // Enqueued after A died, while no lease was live.
    const p1 = await enqueue(store, 's', at('t5', undefined, 'p1', { sourceKey: 'p1' }));
    expect(await store.listPendingTurnInputs('s')).toEqual([p0, q2, q3, n1, p1]);
    return { store, advance, A, kA: kA!, p0, q1, q2, q3, n1, p1 };
  }

  test('T9: a fresh generation requeues accepted input and active input of a dead generation (enqueued under it, or adopted by it); no-lease input within its grace is adopted', async (ctx) => {
    const { store, A, kA, p0, q1, q2, q3, n1, p1 } = await strandedScenario(b, ctx, false);
    const B = await acquire(store, 's', O('B'));
    expect(B.fencingToken).toBe(2);
    // p0, enqueued before any lease, was adopted by generation 1 (within its grace), which ended
    // without admitting it; p1, enqueued after A died, is adopted by B.
    expect(await store.listPendingTurnInputs('s')).toEqual([
      deferred(p0),
      deferred(q1),
      deferred(q2),
      deferred(q3),
      n1,
      p1,
    ]);
    const kB = await claimNext(store, B);
    expect(kB!.inputs).toEqual([deferred(p0), deferred(q1), deferred(q2), deferred(q3), n1]);
    expect(kB!.claimId).toBe(`tic:${p0.enqueueSeq}:1`);
    expect(kB!.fencingToken).toBe(1);
    expect(kB!.sessionLeaseGeneration).toBe(2);
    // The counter was kept: q1's claim under B is its second.
    expect(await store.cancelPendingTurnInput('s', q1.inputId)).toMatchObject({
      outcome: 'already_claimed',
      claim: { claimFencingToken: 2, claimSessionLeaseGeneration: 2 },
    });
    // p1 stays pending_active for its turn while B runs...
    expect(await store.listPendingTurnInputs('s')).toEqual([p1]);
    // Replaying q1's original draft returns q1 as it is now (deferred), not a conflict.
    expect(await enqueue(store, 's', at('t1', undefined, 'q1', { sourceKey: 'q1' }))).toEqual(deferred(q1));
    // A comes back: its fence is dead, and its claim no longer owns q1.
    await expectStoreError(
      store.session('s').commitRuntimeState(minimalCommit(A, [kA])),
      'SessionExecutionLeaseExpired',
      { sessionId: 's' },
    );
    await expectStoreError(store.session('s').commitRuntimeState(minimalCommit(B, [kA])), 'TurnInputClaimSuperseded', {
      sessionId: 's',
      claimId: kA.claimId,
    });
    // ...and once B ends without admitting it, the next generation moves it to the next turn.
    await store
      .session('s')
      .commitRuntimeState(minimalCommit(B, [kB!], { releaseSessionExecutionLease: leaseCompletion(B) }));
    await acquire(store, 's', O('C'));
    expect(await store.listPendingTurnInputs('s')).toEqual([deferred(p1)]);
  });

  test("T9 with strandedTurnInputs 'keep': a fresh generation requeues nothing", async (ctx) => {
    const { store, kA, p0, q1, q2, q3, n1, p1 } = await strandedScenario(b, ctx, true);
    const B = await acquire(store, 's', O('B'));
    expect(B.fencingToken).toBe(2);
    expect(await store.listPendingTurnInputs('s')).toEqual([p0, q2, q3, n1, p1]);
    expect(await store.cancelPendingTurnInput('s', q1.inputId)).toEqual({
      outcome: 'already_claimed',
      input: { ...q1, state: 'accepted' },
      claim: {
        state: 'accepted',
        claimId: kA.claimId,
        claimOwner: O('A'),
        claimSessionLeaseGeneration: 1,
        claimFencingToken: 1,
      },
    });
    const kB = await claimNext(store, B);
    expect(kB!.inputs).toEqual([n1]);
    // A replay of turn t1 under B can claim t1's pending input.
    const kR = await claimActive(store, B, 't1', 'before_completion');
    expect(kR!.inputs).toEqual([{ ...q2, state: 'accepted' }]);
    // The accepted row is released only by its claim's own abandon (T6: back to pending_active).
    await store.abandonTurnInputClaim(kA);
    expect(await store.listPendingTurnInputs('s')).toEqual([p0, q1, q3, p1]);
  });

  test('issue 17: active input enqueued while no lease is live moves to the next turn at the first acquisition past its grace, keeping its enqueueSeq', async (ctx) => {
    const { store, advance } = await b.fresh(ctx, { activeInputGraceMs: 200 });
    // A turn that ended without a stamp (released, never claimed its input), then input for it.
    const l1 = await acquire(store, 's', O('w1'));
    await store.releaseSessionExecutionLease(leaseCompletion(l1));
    const late = await enqueue(store, 's', at('t1', undefined, 'late'));
    // Active input for a turn that never runs (no lease ever live for it).
    const never = await enqueue(store, 's', at('t-never', 'before_completion', 'never', { sourceKey: 'nv' }));
    const n = await enqueue(store, 's', nt('n'));
    expect(late.state).toBe('pending_active');
    await advance(250);
    // The grace is over: the next generation moves both at once, in enqueueSeq order.
    const l2 = await acquire(store, 's', O('w2'));
    expect(await store.listPendingTurnInputs('s')).toEqual([deferred(late), deferred(never), n]);
    const k = await claimNext(store, l2);
    expect(k!.inputs).toEqual([deferred(late), deferred(never), n]);
    expect(k!.inputs.map((r) => r.enqueueSeq)).toEqual([late.enqueueSeq, never.enqueueSeq, n.enqueueSeq]);
    // A replay of the original draft still matches (the original ingress is kept).
    expect(await enqueue(store, 's', at('t-never', 'before_completion', 'never', { sourceKey: 'nv' }))).toEqual(
      deferred(never),
    );
  });

  test('issue 17: within its grace, no-lease active input is adopted by the next generation: its turn may claim it; if that generation ends without admitting it, the next one moves it', async (ctx) => {
    const { store } = await b.fresh(ctx, { activeInputGraceMs: 3_600_000 });
    // The host enqueues the input of the turn it is about to run, then takes the lease.
    const mine = await enqueue(store, 's', at('t1', undefined, 'mine'));
    const l1 = await acquire(store, 's', O('w1'));
    expect(await store.listPendingTurnInputs('s')).toEqual([mine]);
    const k = await claimActive(store, l1, 't1', 'after_work');
    expect(ids(k!.inputs)).toEqual([mine.inputId]);
    await store
      .session('s')
      .commitRuntimeState(minimalCommit(l1, [k!], { releaseSessionExecutionLease: leaseCompletion(l1) }));
    // Input for a turn that never runs: the generation that adopts it ends without admitting it.
    const orphan = await enqueue(store, 's', at('t9', undefined, 'orphan'));
    const l2 = await acquire(store, 's', O('w2'));
    expect(await store.listPendingTurnInputs('s')).toEqual([orphan]);
    expect(await claimNext(store, l2)).toBeNull();
    await store.releaseSessionExecutionLease(leaseCompletion(l2));
    const l3 = await acquire(store, 's', O('w3'));
    const kn = await claimNext(store, l3);
    expect(kn!.inputs).toEqual([deferred(orphan)]);
    expect(kn!.inputs[0].enqueueSeq).toBe(orphan.enqueueSeq);
  });

  test("issue 17: with strandedTurnInputs 'keep', no-lease active input stays pending_active for a replay of its turn", async (ctx) => {
    const { store, advance } = await b.fresh(ctx, { strandedTurnInputs: 'keep', activeInputGraceMs: 0 });
    const p = await enqueue(store, 's', at('t1', undefined, 'p'));
    await advance(5);
    const l1 = await acquire(store, 's', O('w1'));
    await store.releaseSessionExecutionLease(leaseCompletion(l1));
    const l2 = await acquire(store, 's', O('w2'));
    expect(await store.listPendingTurnInputs('s')).toEqual([p]);
    expect(await claimNext(store, l2)).toBeNull();
    const k = await claimActive(store, l2, 't1', 'after_work');
    expect(ids(k!.inputs)).toEqual([p.inputId]);
  });

  test('T9 applies to a reclaim takeover and to an acquisition after release; re-entry requeues nothing', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const l1 = await acquire(store, 's', O('w1'));
    const q = await enqueue(store, 's', at('t1', undefined, 'q'));
    const k = await claimActive(store, l1, 't1', 'after_work');
    expect(k).not.toBeNull();
    // Re-entry: same generation, the accepted row stays accepted.
    await acquire(store, 's', O('w1'));
    expect(await store.listPendingTurnInputs('s')).toEqual([]);
    await store.releaseSessionExecutionLease(leaseCompletion(l1));
    expect(await store.listPendingTurnInputs('s')).toEqual([]);
    const l2 = await acquire(store, 's', O('w2'));
    expect(await store.listPendingTurnInputs('s')).toEqual([deferred(q)]);
    // Generation 2 claims it for a turn, then a reclaim of a not-live lease (ttl 0 re-entry) requeues again.
    const k2 = await claimNext(store, l2);
    expect(k2!.claimId).toBe(`tic:${q.enqueueSeq}:2`);
    const q2 = await enqueue(store, 's', at('t2', undefined, 'q2'));
    await acquire(store, 's', O('w2'), 0);
    const r = await store.reclaimSessionExecutionLease('s', O('w3'), leaseFence(l2), 60_000);
    expect(r.outcome).toBe('acquired');
    expect(await store.listPendingTurnInputs('s')).toEqual([deferred(q), deferred(q2)]);
  });

  // ------------------------------------------------------------------ completion via commit

  test('completion settles every claimed row; a completed row is never claimed again', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const n1 = await enqueue(store, 's', nt('n1'));
    const a1 = await enqueue(store, 's', at('t', undefined, 'a1'));
    const lease = await acquire(store, 's');
    const kn = (await claimNext(store, lease)) as TurnInputClaim;
    const ka = (await claimActive(store, lease, 't', 'after_work')) as TurnInputClaim;
    const r = await store
      .session('s')
      .commitRuntimeState(minimalCommit(lease, [kn, ka], { releaseSessionExecutionLease: leaseCompletion(lease) }));
    expect(r.headRevision).toBe(1);
    expect(
      await store.cancelPendingTurnInputs('s', [
        { kind: 'input_id', value: n1.inputId },
        { kind: 'input_id', value: a1.inputId },
      ]),
    ).toEqual([
      {
        target: { kind: 'input_id', value: n1.inputId },
        outcome: { outcome: 'already_completed', input: { ...n1, state: 'completed' } },
      },
      {
        target: { kind: 'input_id', value: a1.inputId },
        outcome: { outcome: 'already_completed', input: { ...a1, state: 'completed' } },
      },
    ]);
    const l2 = await acquire(store, 's');
    expect(l2.fencingToken).toBe(2);
    expect(await claimNext(store, l2)).toBeNull();
    expect(await claimActive(store, l2, 't', 'before_completion')).toBeNull();
    expect(await store.listPendingTurnInputs('s')).toEqual([]);
  });
});
