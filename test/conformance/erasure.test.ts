/**
 * Retention and erasure (SPEC 8.4, 8.5), against both backends: deleteSession, its lease fence,
 * its attachment report, and vacuum's idle-session expiry.
 */
import { expect, test } from 'vitest';
import { leaseCompletion, leaseFence } from '../../src/index.js';
import { describeBackends } from './backends.js';
import {
  acquire,
  assertStoreError,
  at,
  claimNext,
  enqueue,
  LONG_TTL,
  minimalCommit,
  nt,
  O,
  rejection,
} from './fixtures.js';

const intent = (sessionId: string, attachmentId: string) => ({
  sessionId,
  attachmentId,
  canonicalUri: `blob://${attachmentId}`,
  intentAtEpochMs: 1,
});

describeBackends('deleteSession', (b) => {
  test('removes rows, lease, settled state, meta and manifest entries; reports them', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const s = 'del:1';
    await enqueue(store, s, nt('a', { sourceKey: 'k1' }));
    await enqueue(store, s, at('t1', 'after_work'));
    const lease = await acquire(store, s);
    const claim = await claimNext(store, lease);
    const facet = store.session(s);
    await facet.recordIntent(intent(s, 'att-only-here'));
    await facet.recordIntent(intent(s, 'att-shared'));
    await store.session('other').recordIntent(intent('other', 'att-shared'));
    await facet.commitRuntimeState(
      minimalCommit(lease, claim ? [claim] : [], {
        releaseSessionExecutionLease: leaseCompletion(lease),
        committedAttachmentIds: ['att-only-here'],
      }),
    );
    await facet.saveSessionMeta({
      sessionId: s,
      sessionName: 'n',
      createdAt: 'now',
      model: 'm',
      relation: { kind: 'root' },
    });

    const r = await store.deleteSession(s);
    expect(r).toEqual({
      sessionId: s,
      existed: true,
      removedTurnInputs: 2,
      removedSettledState: true,
      removedAttachmentIds: ['att-only-here', 'att-shared'],
      unreferencedAttachmentIds: ['att-only-here'],
    });
    expect(await store.listPendingTurnInputs(s)).toEqual([]);
    expect(await facet.loadSession({ kind: 'full_graph' })).toBeNull();
    expect(await facet.loadSessionMeta()).toBeNull();
    expect(await facet.holdsRef(s, 'att-shared')).toBe(false);
    expect(await facet.holdsRef('other', 'att-shared')).toBe(true);
    expect(await facet.listAllRefs()).toEqual(['att-shared']);
    // A new life of the id starts from scratch: seq 1 and generation 1.
    expect((await enqueue(store, s, nt('again', { sourceKey: 'k1' }))).enqueueSeq).toBe(1);
    expect((await acquire(store, s)).fencingToken).toBe(1);
  });

  test('a missing session, and a second delete, are no-ops', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const empty = {
      existed: false,
      removedTurnInputs: 0,
      removedSettledState: false,
      removedAttachmentIds: [],
      unreferencedAttachmentIds: [],
    };
    expect(await store.deleteSession('never')).toEqual({ sessionId: 'never', ...empty });
    await enqueue(store, 's', nt());
    expect((await store.deleteSession('s')).existed).toBe(true);
    expect(await store.deleteSession('s')).toEqual({ sessionId: 's', ...empty });
  });

  test('a neighbour session is untouched', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const a = await enqueue(store, 'n1', nt('mine'));
    await enqueue(store, 'n2', nt('yours'));
    await store.session('n1').recordIntent(intent('n1', 'x'));
    await store.session('n2').recordIntent(intent('n2', 'x'));
    const before = await store.listPendingTurnInputs('n1');
    const r = await store.deleteSession('n2');
    expect(r.unreferencedAttachmentIds).toEqual([]);
    expect(await store.listPendingTurnInputs('n1')).toEqual(before);
    expect(before.map((row) => row.inputId)).toEqual([a.inputId]);
    expect(await store.session('n1').holdsRef('n1', 'x')).toBe(true);
  });

  test('a live lease refuses with SessionBusy and writes nothing', async (ctx) => {
    const { store } = await b.fresh(ctx);
    await enqueue(store, 'busy', nt());
    const lease = await acquire(store, 'busy');
    const e = await rejection(store.deleteSession('busy'));
    assertStoreError(e, 'SessionBusy', { sessionId: 'busy', generation: lease.fencingToken });
    expect(e instanceof Error && e.message.startsWith('SessionBusy: ')).toBe(true);
    expect(await store.listPendingTurnInputs('busy')).toHaveLength(1);
    expect(await claimNext(store, lease)).not.toBeNull();
    // An expired lease does not count.
    await store.releaseSessionExecutionLease(leaseCompletion(lease));
    expect((await store.deleteSession('busy', { force: false })).existed).toBe(true);
  });

  test('force fences the holder out: its claims, renewals and commits fail; generations go on', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const s = 'forced';
    await enqueue(store, s, nt('one'));
    await store.releaseSessionExecutionLease(leaseCompletion(await acquire(store, s))); // generation 1
    const lease = await acquire(store, s, O('holder')); // generation 2
    expect(lease.fencingToken).toBe(2);
    const r = await store.deleteSession(s, { force: true });
    expect(r).toMatchObject({ existed: true, removedTurnInputs: 1, fencedGeneration: 2 });

    await enqueue(store, s, nt('after'));
    assertStoreError(await rejection(claimNext(store, lease)), 'SessionExecutionLeaseExpired', { sessionId: s });
    assertStoreError(
      await rejection(store.renewSessionExecutionLease(leaseFence(lease), LONG_TTL)),
      'SessionExecutionLeaseExpired',
      { sessionId: s },
    );
    assertStoreError(
      await rejection(store.session(s).commitRuntimeState(minimalCommit(lease))),
      'SessionExecutionLeaseExpired',
    );
    await store.releaseSessionExecutionLease(leaseCompletion(lease)); // a silent no-op
    expect(await store.session(s).loadSession({ kind: 'full_graph' })).toBeNull();
    // The next acquisition continues the count: no new generation can equal the fenced one.
    const next = await acquire(store, s, O('new'));
    expect(next.fencingToken).toBe(3);
    expect((await claimNext(store, next))?.inputs.map((i) => i.input)).toEqual([{ text: 'after' }]);
  });

  test('a second forced delete while the fence is in force changes nothing', async (ctx) => {
    const { store } = await b.fresh(ctx);
    await enqueue(store, 'f2', nt());
    const lease = await acquire(store, 'f2');
    await store.deleteSession('f2', { force: true });
    const again = await store.deleteSession('f2', { force: true });
    expect(again).toMatchObject({ existed: false, removedTurnInputs: 0, fencedGeneration: lease.fencingToken });
    expect((await acquire(store, 'f2')).fencingToken).toBe(lease.fencingToken + 1);
  });

  test('the fence goes with a delete after the fenced lease would have expired', async (ctx) => {
    const { store, advance } = await b.fresh(ctx);
    await enqueue(store, 'f3', nt());
    await acquire(store, 'f3', O('w'), 200);
    expect((await store.deleteSession('f3', { force: true })).fencedGeneration).toBe(1);
    await advance(300);
    const r = await store.deleteSession('f3');
    expect(r.existed).toBe(false);
    expect(r.fencedGeneration).toBeUndefined();
    expect((await acquire(store, 'f3')).fencingToken).toBe(1);
  });

  test('arguments are validated with InvalidInput and nothing is deleted', async (ctx) => {
    const { store } = await b.fresh(ctx);
    await enqueue(store, 'v', nt());
    assertStoreError(await rejection(store.deleteSession('')), 'InvalidInput');
    assertStoreError(await rejection(store.deleteSession(42 as never)), 'InvalidInput');
    for (const bad of [{ force: 'yes' }, { forse: true }, 'force', null]) {
      const e = assertStoreError(await rejection(store.deleteSession('v', bad as never)), 'InvalidInput');
      expect((e.details.issues as string[])[0]).toMatch(/^options/);
    }
    expect(await store.listPendingTurnInputs('v')).toHaveLength(1);
  });
});

describeBackends('vacuum: idle-session expiry (sessionRetentionMs)', (b) => {
  test('off by default: vacuum reports tombstones only and deletes no session', async (ctx) => {
    const { store, advance } = await b.fresh(ctx);
    await enqueue(store, 'idle', nt());
    await advance(50);
    expect(await store.vacuum({ olderThanMs: 0 })).toEqual({ removedPendingTurnInputTombstones: 0 });
    expect(await store.listPendingTurnInputs('idle')).toHaveLength(1);
  });

  test('deletes sessions idle that long, keeps active and leased ones', async (ctx) => {
    const { store, advance } = await b.fresh(ctx, { sessionRetentionMs: 300 });
    await enqueue(store, 'old', nt());
    await store.session('old').recordIntent(intent('old', 'att-old'));
    await enqueue(store, 'leased', nt());
    const lease = await acquire(store, 'leased', O('w'), LONG_TTL);
    await advance(400);
    await enqueue(store, 'fresh', nt());
    expect(await store.vacuum()).toEqual({
      removedPendingTurnInputTombstones: 0,
      removedIdleSessions: 1,
      unreferencedAttachmentIds: ['att-old'],
    });
    expect(await store.listPendingTurnInputs('old')).toEqual([]);
    expect(await store.listPendingTurnInputs('fresh')).toHaveLength(1);
    // The live lease keeps its session; its claims still work.
    expect(await claimNext(store, lease)).not.toBeNull();
    // A second pass finds nothing more.
    expect((await store.vacuum()).removedIdleSessions).toBe(0);
  });

  test('an enqueue, a commit, an acquisition or a release restarts the idle time', async (ctx) => {
    const { store, advance } = await b.fresh(ctx, { sessionRetentionMs: 300 });
    await enqueue(store, 'e', nt());
    await enqueue(store, 'c', nt());
    await enqueue(store, 'r', nt());
    const lc = await acquire(store, 'c', O('w'), 250);
    const lr = await acquire(store, 'r', O('w'), LONG_TTL);
    await advance(200);
    await enqueue(store, 'e', nt('again'));
    await store.session('c').commitRuntimeState(minimalCommit(lc));
    await store.releaseSessionExecutionLease(leaseCompletion(lr));
    await advance(200);
    expect((await store.vacuum()).removedIdleSessions).toBe(0);
    await advance(250);
    expect((await store.vacuum()).removedIdleSessions).toBe(3);
  });
});
