/**
 * The attachment manifest (SPEC 7) and the commit's attachment stamps (SPEC 6.3 step 7), against
 * both backends. The manifest is store-wide; every test has a fresh store (Redis: its own prefix).
 */
import { expect, test } from 'vitest';
import type { AttachmentIntent, AttachmentManifestEntry, RuntimeStore } from '../../src/index.js';
import { describeBackends } from './backends.js';
import { baseCommit, keysOf, stamped } from './commit-fixtures.js';
import { acquire, expectStoreError, sid } from './fixtures.js';

const MAX = Number.MAX_SAFE_INTEGER;

function intent(
  sessionId: string,
  attachmentId: string,
  intentAtEpochMs: number,
  canonicalUri?: string,
): AttachmentIntent {
  return {
    sessionId,
    attachmentId,
    intentAtEpochMs,
    canonicalUri: canonicalUri ?? `blob://${sessionId}/${attachmentId}`,
  };
}

/** The uncommitted entries of the whole store, via any facet. */
function uncommitted(store: RuntimeStore, cutoff = MAX): Promise<AttachmentManifestEntry[]> {
  return store.session('any-facet').listUncommitted(cutoff);
}

describeBackends('attachment manifest (SPEC 7)', (b) => {
  test('recordIntent creates an uncommitted entry; an upsert replaces uri and intent time', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const S = sid('att-new');
    const m = store.session(S);
    await m.recordIntent(intent(S, 'att-1', 100, 'blob://one'));
    const list = await m.listUncommitted(MAX);
    expect(list).toEqual([{ sessionId: S, attachmentId: 'att-1', canonicalUri: 'blob://one', intentAtEpochMs: 100 }]);
    expect(keysOf(list[0])).toEqual(['attachmentId', 'canonicalUri', 'intentAtEpochMs', 'sessionId']);
    expect(await m.holdsRef(S, 'att-1')).toBe(true);
    expect(await m.listAllRefs()).toEqual(['att-1']);
    await m.recordIntent(intent(S, 'att-1', 250, 'blob://two'));
    expect(await m.listUncommitted(MAX)).toEqual([
      { sessionId: S, attachmentId: 'att-1', canonicalUri: 'blob://two', intentAtEpochMs: 250 },
    ]);
    expect(await m.listUncommitted(249)).toEqual([]);
    expect(await m.listAllRefs()).toEqual(['att-1']);
  });

  test('recordIntent on a committed entry keeps its commit stamp', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const S = sid('att-keep');
    const m = store.session(S);
    await m.recordIntent(intent(S, 'att-k', 100));
    await m.commitRefs(S, ['att-k']);
    expect(await m.listUncommitted(MAX)).toEqual([]);
    // A retried upload refreshes the intent with an old time: still committed.
    await m.recordIntent(intent(S, 'att-k', 5, 'blob://retried'));
    expect(await m.listUncommitted(MAX)).toEqual([]);
    expect(await m.hasLiveRefForId('att-k', MAX)).toBe(true);
    expect(await m.forgetAgedUncommittedIntents(MAX)).toBe(0);
    expect(await m.holdsRef(S, 'att-k')).toBe(true);
    expect(await m.listAllRefs()).toEqual(['att-k']);
  });

  test('commitRefs stamps only existing entries of that session and never creates entries', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const S1 = sid('att-c1');
    const S2 = sid('att-c2');
    const m = store.session(S1);
    await m.recordIntent(intent(S1, 'shared', 10));
    await m.recordIntent(intent(S2, 'shared', 10));
    await m.recordIntent(intent(S1, 'own', 10));
    await m.commitRefs(S1, ['shared', 'missing', 'shared']);
    expect(await uncommitted(store)).toEqual([intent(S1, 'own', 10), intent(S2, 'shared', 10)]);
    expect(await m.holdsRef(S1, 'missing')).toBe(false);
    expect(await m.holdsRef(S2, 'missing')).toBe(false);
    expect(await m.listAllRefs()).toEqual(['own', 'shared']);
    // Stamping again keeps the entry committed; an empty list is a no-op.
    await m.commitRefs(S1, ['shared']);
    await m.commitRefs(S1, []);
    expect(await uncommitted(store)).toEqual([intent(S1, 'own', 10), intent(S2, 'shared', 10)]);
    // After a forget, commitRefs does not bring the entry back.
    await m.forget(S1, 'own');
    await m.commitRefs(S1, ['own']);
    expect(await m.holdsRef(S1, 'own')).toBe(false);
    expect(await m.listAllRefs()).toEqual(['shared']);
  });

  test('listUncommitted spans all sessions, is inclusive, and orders by time, session, id', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const entries = [
      intent('sB', 'a2', 100),
      intent('sA', 'a9', 100),
      intent('sC', 'z', 50),
      intent('sA', 'a1', 100),
      intent('sA', 'late', 300),
      intent('sA', 'nine', 9),
      intent('sD', 'ten', 10),
      intent('sA', 'done', 1),
    ];
    const facet = store.session('sX');
    for (const e of entries) await facet.recordIntent(e);
    await facet.commitRefs('sA', ['done']);
    expect(await store.session('sY').listUncommitted(100)).toEqual([
      intent('sA', 'nine', 9),
      intent('sD', 'ten', 10),
      intent('sC', 'z', 50),
      intent('sA', 'a1', 100),
      intent('sA', 'a9', 100),
      intent('sB', 'a2', 100),
    ]);
    expect(await facet.listUncommitted(99)).toEqual([
      intent('sA', 'nine', 9),
      intent('sD', 'ten', 10),
      intent('sC', 'z', 50),
    ]);
    expect(await facet.listUncommitted(8)).toEqual([]);
    expect((await facet.listUncommitted(MAX)).map((e) => e.attachmentId)).toEqual([
      'nine',
      'ten',
      'z',
      'a1',
      'a9',
      'a2',
      'late',
    ]);
  });

  test('intent times are stored and compared exactly as given (0 and the largest safe integer)', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const m = store.session('s');
    await m.recordIntent(intent('s', 'max', MAX));
    await m.recordIntent(intent('s', 'zero', 0));
    await m.recordIntent(intent('s', 'now', 1_700_000_000_123));
    expect(await m.listUncommitted(MAX)).toEqual([
      intent('s', 'zero', 0),
      intent('s', 'now', 1_700_000_000_123),
      intent('s', 'max', MAX),
    ]);
    expect(await m.listUncommitted(MAX - 1)).toEqual([intent('s', 'zero', 0), intent('s', 'now', 1_700_000_000_123)]);
    expect(await m.listUncommitted(0)).toEqual([intent('s', 'zero', 0)]);
    expect(await m.hasLiveRefForId('max', MAX - 1)).toBe(true);
    expect(await m.hasLiveRefForId('max', MAX)).toBe(false);
    expect(await m.forgetAgedUncommittedIntents(1_700_000_000_122)).toBe(1);
    expect(await m.listAllRefs()).toEqual(['max', 'now']);
  });

  test('forgetAgedUncommittedIntents deletes aged uncommitted entries only and returns the count', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const m = store.session('s1');
    await m.recordIntent(intent('s1', 'old-1', 10));
    await m.recordIntent(intent('s2', 'old-2', 20));
    await m.recordIntent(intent('s1', 'edge', 30));
    await m.recordIntent(intent('s1', 'new', 31));
    await m.recordIntent(intent('s2', 'kept', 5));
    await m.commitRefs('s2', ['kept']);
    expect(await m.forgetAgedUncommittedIntents(30)).toBe(3);
    expect(await uncommitted(store)).toEqual([intent('s1', 'new', 31)]);
    expect(await m.holdsRef('s2', 'kept')).toBe(true);
    expect(await m.holdsRef('s1', 'old-1')).toBe(false);
    expect(await m.holdsRef('s1', 'edge')).toBe(false);
    expect(await m.listAllRefs()).toEqual(['kept', 'new']);
    expect(await m.forgetAgedUncommittedIntents(30)).toBe(0);
    expect(await m.forgetAgedUncommittedIntents(MAX)).toBe(1);
    expect(await m.listAllRefs()).toEqual(['kept']);
  });

  test('a recordIntent refresh racing forgetAgedUncommittedIntents is never lost', async (ctx) => {
    const { store } = await b.fresh(ctx);
    for (let round = 0; round < 10; round++) {
      const id = `race-${round}`;
      const m = store.session('s');
      await m.recordIntent(intent('s', id, 10));
      const [count] = await Promise.all([
        m.forgetAgedUncommittedIntents(100),
        m.recordIntent(intent('s', id, 1000, 'blob://refreshed')),
      ]);
      expect([0, 1]).toContain(count);
      expect(await m.holdsRef('s', id)).toBe(true);
      const entry = (await m.listUncommitted(MAX)).find((e) => e.attachmentId === id);
      expect(entry).toEqual(intent('s', id, 1000, 'blob://refreshed'));
    }
  });

  test('hasLiveRefForId: a commit stamp or an intent newer than the cutoff, in any session', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const m = store.session('s1');
    expect(await m.hasLiveRefForId('nothing', 0)).toBe(false);
    await m.recordIntent(intent('s1', 'u', 100));
    expect(await m.hasLiveRefForId('u', 99)).toBe(true);
    expect(await m.hasLiveRefForId('u', 100)).toBe(false);
    expect(await m.hasLiveRefForId('u', MAX)).toBe(false);
    // An old committed entry is live whatever the cutoff.
    await m.recordIntent(intent('s1', 'c', 1));
    await m.commitRefs('s1', ['c']);
    expect(await m.hasLiveRefForId('c', MAX)).toBe(true);
    // Across sessions: an old uncommitted entry in s1 and a newer one in s2.
    await m.recordIntent(intent('s1', 'x', 10));
    await m.recordIntent(intent('s2', 'x', 500));
    expect(await m.hasLiveRefForId('x', 100)).toBe(true);
    expect(await m.hasLiveRefForId('x', 500)).toBe(false);
    await m.recordIntent(intent('s3', 'x', 1));
    await m.commitRefs('s3', ['x']);
    expect(await m.hasLiveRefForId('x', MAX)).toBe(true);
  });

  test('forget deletes exactly one (session, id) pair and is a no-op when absent', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const m = store.session('s1');
    await m.recordIntent(intent('s1', 'f', 10));
    await m.recordIntent(intent('s2', 'f', 10));
    await m.recordIntent(intent('s1', 'g', 10));
    await m.commitRefs('s1', ['g']);
    await m.forget('s1', 'f');
    await m.forget('s1', 'f');
    await m.forget('s9', 'nothing');
    expect(await m.holdsRef('s1', 'f')).toBe(false);
    expect(await m.holdsRef('s2', 'f')).toBe(true);
    expect(await m.listAllRefs()).toEqual(['f', 'g']);
    // Committed entries can be forgotten too.
    await m.forget('s1', 'g');
    expect(await m.holdsRef('s1', 'g')).toBe(false);
    expect(await m.hasLiveRefForId('g', 0)).toBe(false);
    expect(await m.listAllRefs()).toEqual(['f']);
    expect(await uncommitted(store)).toEqual([intent('s2', 'f', 10)]);
  });

  test('holdsRef is the session boundary; ids that collide under naive concatenation stay apart', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const m = store.session('any');
    await m.recordIntent(intent('a:b', 'c', 1));
    expect(await m.holdsRef('a:b', 'c')).toBe(true);
    expect(await m.holdsRef('a', 'b:c')).toBe(false);
    expect(await m.holdsRef('a:b', 'C')).toBe(false);
    expect(await m.holdsRef('other', 'c')).toBe(false);
    await m.recordIntent(intent('a', 'b:c', 2));
    await m.recordIntent(intent('{x}', '}:%7B y', 3));
    await m.recordIntent(intent('{x}:', '%7B y', 4));
    await m.forget('a:b', 'c');
    expect(await m.holdsRef('a', 'b:c')).toBe(true);
    expect(await m.holdsRef('a:b', 'c')).toBe(false);
    await m.commitRefs('{x}', ['}:%7B y']);
    expect(await uncommitted(store)).toEqual([intent('a', 'b:c', 2), intent('{x}:', '%7B y', 4)]);
    expect(await m.listAllRefs()).toEqual(['%7B y', 'b:c', '}:%7B y']);
  });

  test('listAllRefs returns the distinct ids of all entries, committed or not, sorted ascending', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const m = store.session('s1');
    expect(await m.listAllRefs()).toEqual([]);
    for (const [s, id] of [
      ['s1', 'b'],
      ['s2', 'a'],
      ['s1', 'c:1'],
      ['s3', 'A'],
      ['s1', 'a'],
      ['s2', 'b'],
      ['s4', 'B-10'],
      ['s4', 'B-9'],
    ] as const) {
      await m.recordIntent(intent(s, id, 10));
    }
    await m.commitRefs('s1', ['a', 'b']);
    expect(await store.session('zz').listAllRefs()).toEqual(['A', 'B-10', 'B-9', 'a', 'b', 'c:1']);
  });

  test('manifest arguments are validated and nothing is written', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const m = store.session('s');
    await expectStoreError(m.recordIntent(intent('s', 'neg', -1)), 'InvalidInput');
    await expectStoreError(m.recordIntent(intent('s', 'frac', 1.5)), 'InvalidInput');
    await expectStoreError(m.recordIntent(intent('', 'x', 1)), 'InvalidInput');
    await expectStoreError(m.recordIntent(intent('s', '', 1)), 'InvalidInput');
    await expectStoreError(m.listUncommitted(-1), 'InvalidInput');
    await expectStoreError(m.forgetAgedUncommittedIntents(Number.NaN), 'InvalidInput');
    await expectStoreError(m.hasLiveRefForId('x', 2 ** 53), 'InvalidInput');
    expect(await m.listAllRefs()).toEqual([]);
  });
});

describeBackends('commit attachment stamps (SPEC 6.3 step 7)', (b) => {
  test('committedAttachmentIds stamps only existing entries of (commit.sessionId, id)', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const S = sid('att-commit');
    const other = sid('att-commit-other');
    const m = store.session(S);
    await m.recordIntent(intent(S, 'mine', 10));
    await m.recordIntent(intent(S, 'not-listed', 10));
    await m.recordIntent(intent(other, 'theirs', 10));
    await m.recordIntent(intent(other, 'mine', 10));
    const lease = await acquire(store, S);
    const r = await m.commitRuntimeState(
      baseCommit(S, lease, { committedAttachmentIds: ['mine', 'theirs', 'missing'] }),
    );
    expect(r.headRevision).toBe(1);
    expect(await uncommitted(store)).toEqual([
      intent(S, 'not-listed', 10),
      intent(other, 'mine', 10),
      intent(other, 'theirs', 10),
    ]);
    expect(await m.holdsRef(S, 'missing')).toBe(false);
    expect(await m.holdsRef(S, 'theirs')).toBe(false);
    expect(await m.listAllRefs()).toEqual(['mine', 'not-listed', 'theirs']);
    expect(await m.hasLiveRefForId('mine', MAX)).toBe(true);
    // A later commit naming it again keeps it committed, and a refresh keeps the stamp.
    await m.commitRuntimeState(baseCommit(S, lease, { committedAttachmentIds: ['mine'] }));
    await m.recordIntent(intent(S, 'mine', 1));
    expect(await m.forgetAgedUncommittedIntents(MAX)).toBe(3);
    expect(await m.listAllRefs()).toEqual(['mine']);
  });

  test('a rejected commit stamps nothing', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const S = sid('att-rejected');
    const m = store.session(S);
    await m.recordIntent(intent(S, 'pending', 10));
    const lease = await acquire(store, S);
    await expectStoreError(
      m.commitRuntimeState(baseCommit(S, lease, { committedAttachmentIds: ['pending'], expectedHeadRevision: 4 })),
      'HeadRevisionConflict',
      { expected: 4, actual: 0 },
    );
    await expectStoreError(
      m.commitRuntimeState(
        baseCommit(S, lease, {
          committedAttachmentIds: ['pending'],
          completedTurnInputClaims: [{ sessionId: S, claimId: 'tic:1:1', leaseToken: 'x', inputIds: ['nope'] }],
        }),
      ),
      'TurnInputClaimSuperseded',
      { sessionId: S, claimId: 'tic:1:1' },
    );
    expect(await uncommitted(store)).toEqual([intent(S, 'pending', 10)]);
  });

  test('a stamp replay stamps nothing new', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const S = sid('att-replay');
    const m = store.session(S);
    const lease = await acquire(store, S);
    const commit = stamped(baseCommit(S, lease, { committedAttachmentIds: ['later'] }), 't');
    await m.commitRuntimeState(commit);
    // The entry is recorded after the first commit; the replay returns the stored result only.
    await m.recordIntent(intent(S, 'later', 10));
    await m.commitRuntimeState(commit);
    expect(await uncommitted(store)).toEqual([intent(S, 'later', 10)]);
  });
});
