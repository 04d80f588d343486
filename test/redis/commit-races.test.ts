/**
 * Redis-only races around commits (SPEC 6.3 "Concurrency", 14 "Races the suites must pin"): two
 * store instances on one prefix, so the racing calls travel on separate connections.
 */
import { describe, expect, type TestContext, test } from 'vitest';
import {
  claimCompletion,
  createRedisRuntimeStore,
  isStoreError,
  leaseCompletion,
  leaseFence,
  type RuntimeCommitResult,
  type RuntimeStore,
} from '../../src/index.js';
import { baseCommit, expectLeaseHeld } from '../conformance/commit-fixtures.js';
import {
  acquire,
  assertStoreError,
  at,
  claimActive,
  claimNext,
  enqueue,
  expectStoreError,
  ids,
  nt,
  O,
} from '../conformance/fixtures.js';
import { adminClient, separateRedisTarget, snapshotPrefix, testPrefix } from '../support/prefix.js';

/** Two stores on one fresh prefix, each with its own connection. */
async function twoStores(ctx: TestContext): Promise<{ a: RuntimeStore; b: RuntimeStore; prefix: string }> {
  const prefix = testPrefix(ctx);
  // Separate connections (on Cluster, separate Cluster clients), so the race is real.
  const a = await createRedisRuntimeStore({ redis: separateRedisTarget(), keyPrefix: prefix, idleDispatch: false });
  const b = await createRedisRuntimeStore({ redis: separateRedisTarget(), keyPrefix: prefix, idleDispatch: false });
  ctx.onTestFinished(async () => {
    await a.close();
    await b.close();
  });
  return { a, b, prefix };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('commit races on separate connections [redis]', () => {
  test('two CAS commits with the same expectedHeadRevision: exactly one wins', async (ctx) => {
    const { a, b } = await twoStores(ctx);
    const S = 'race-cas';
    const lease = await acquire(a, S);
    for (let expected = 0; expected < 15; expected++) {
      const results = await Promise.allSettled([
        a.session(S).commitRuntimeState(baseCommit(S, lease, { expectedHeadRevision: expected, config: { by: 'a' } })),
        b.session(S).commitRuntimeState(baseCommit(S, lease, { expectedHeadRevision: expected, config: { by: 'b' } })),
      ]);
      const won = results.filter((r) => r.status === 'fulfilled');
      const lost = results.filter((r) => r.status === 'rejected');
      expect(won).toHaveLength(1);
      expect(lost).toHaveLength(1);
      expect((won[0] as PromiseFulfilledResult<RuntimeCommitResult>).value.headRevision).toBe(expected + 1);
      assertStoreError((lost[0] as PromiseRejectedResult).reason, 'HeadRevisionConflict', {
        expected,
        actual: expected + 1,
      });
      const winner = results[0].status === 'fulfilled' ? 'a' : 'b';
      const head = await b.session(S).loadSession({ kind: 'full_graph' });
      expect(head?.headRevision).toBe(expected + 1);
      expect(head?.config).toEqual({ by: winner });
    }
  });

  test('a zombie whose lease was taken over cannot claim, renew or commit anything', async (ctx) => {
    const { a: zombieStore, b: liveStore, prefix } = await twoStores(ctx);
    const S = 'race-zombie';
    const n1 = await enqueue(zombieStore, S, nt('n1'));
    const zombie = await acquire(zombieStore, S, O('zombie'), 300);
    expect(zombie.fencingToken).toBe(1);
    // The zombie claims the next-turn input while it is still live, then stalls past its TTL.
    const zClaim = await claimNext(zombieStore, zombie);
    expect(ids(zClaim?.inputs ?? [])).toEqual([n1.inputId]);
    await sleep(450);
    const live = await acquire(liveStore, S, O('live'));
    expect(live.fencingToken).toBe(2);
    // Active input for the live generation's turn (enqueued before any lease, the zombie's
    // generation would have adopted it and the takeover moved it to the next turn: SPEC 3.5, T9).
    const a1 = await enqueue(zombieStore, S, at('t1', 'after_work', 'a1'));

    const before = await snapshotPrefix(adminClient(), prefix);
    await expectStoreError(claimNext(zombieStore, zombie), 'SessionExecutionLeaseExpired', { sessionId: S });
    await expectStoreError(claimActive(zombieStore, zombie, 't1', 'after_work'), 'SessionExecutionLeaseExpired', {
      sessionId: S,
    });
    await expectStoreError(
      zombieStore.renewSessionExecutionLease(leaseFence(zombie), 60_000),
      'SessionExecutionLeaseExpired',
      { sessionId: S },
    );
    if (!zClaim) throw new Error('no claim');
    await expectStoreError(
      zombieStore.session(S).commitRuntimeState(
        baseCommit(S, zombie, {
          config: 'zombie',
          completedTurnInputClaims: [claimCompletion(zClaim)],
          releaseSessionExecutionLease: leaseCompletion(zombie),
        }),
      ),
      'SessionExecutionLeaseExpired',
      { sessionId: S },
    );
    // Its release is a silent no-op against the new holder.
    await zombieStore.releaseSessionExecutionLease(leaseCompletion(zombie));
    expect(await snapshotPrefix(adminClient(), prefix)).toEqual(before);
    await expectLeaseHeld(liveStore, S, live);
    expect(await liveStore.session(S).loadSession({ kind: 'full_graph' })).toBeNull();

    // The live worker takes over the zombie's claim (another generation) and commits.
    const k = await claimNext(liveStore, live);
    expect(k?.claimId).toBe('tic:1:2');
    const ka = await claimActive(liveStore, live, 't1', 'after_work');
    expect(ids(ka?.inputs ?? [])).toEqual([a1.inputId]);
    if (!k || !ka) throw new Error('no claim');
    // The zombie's stale completion is superseded even under the live fence.
    await expectStoreError(
      liveStore
        .session(S)
        .commitRuntimeState(baseCommit(S, live, { completedTurnInputClaims: [claimCompletion(zClaim)] })),
      'TurnInputClaimSuperseded',
      { sessionId: S, claimId: zClaim.claimId },
    );
    const r = await liveStore
      .session(S)
      .commitRuntimeState(baseCommit(S, live, { completedTurnInputClaims: [claimCompletion(k), claimCompletion(ka)] }));
    expect(r.headRevision).toBe(1);
    expect((await zombieStore.cancelPendingTurnInput(S, n1.inputId)).outcome).toBe('already_completed');
  });

  test('cancel racing a claim: every input is either cancelled or in the claim, never both', async (ctx) => {
    const { a: ingress, b: worker } = await twoStores(ctx);
    for (let round = 0; round < 12; round++) {
      const S = `race-cancel-${round}`;
      const rows = [];
      for (let i = 0; i < 8; i++) {
        rows.push(await enqueue(ingress, S, i % 2 === 0 ? nt(`n${i}`) : at('t1', 'after_work', `a${i}`)));
      }
      const lease = await acquire(worker, S);
      const [cancels, nextClaim, activeClaim] = await Promise.all([
        ingress.cancelPendingTurnInputs(
          S,
          rows.map((r) => ({ kind: 'input_id' as const, value: r.inputId })),
        ),
        claimNext(worker, lease),
        claimActive(worker, lease, 't1', 'after_work'),
      ]);
      const claimed = new Set([...ids(nextClaim?.inputs ?? []), ...ids(activeClaim?.inputs ?? [])]);
      for (const [i, row] of rows.entries()) {
        const outcome = cancels[i].outcome;
        const cancelled = outcome.outcome === 'cancelled';
        const inClaim = claimed.has(row.inputId);
        expect(cancelled !== inClaim, `input ${i}: cancelled=${cancelled} inClaim=${inClaim}`).toBe(true);
        if (!cancelled) expect(outcome.outcome).toBe('already_claimed');
      }
      // What the claim holds can be completed; what was cancelled stays cancelled.
      const done = [nextClaim, activeClaim].filter((c) => c !== null).map((c) => claimCompletion(c));
      const r = await worker.session(S).commitRuntimeState(baseCommit(S, lease, { completedTurnInputClaims: done }));
      expect(r.headRevision).toBe(1);
      for (const row of rows) {
        const o = await ingress.cancelPendingTurnInput(S, row.inputId);
        expect(o.outcome).toBe(claimed.has(row.inputId) ? 'already_completed' : 'already_cancelled');
      }
    }
  });

  test('a commit completing claim C racing an abandon of C: completed, or superseded with the rows free', async (ctx) => {
    const { a: committer, b: abandoner } = await twoStores(ctx);
    for (let round = 0; round < 12; round++) {
      const S = `race-abandon-${round}`;
      const x = await enqueue(committer, S, nt('x'));
      const y = await enqueue(committer, S, nt('y'));
      const lease = await acquire(committer, S);
      const c = await claimNext(committer, lease);
      if (!c) throw new Error('no claim');
      const [commit] = await Promise.allSettled([
        committer
          .session(S)
          .commitRuntimeState(baseCommit(S, lease, { completedTurnInputClaims: [claimCompletion(c)] })),
        abandoner.abandonTurnInputClaim(c),
      ]);
      if (commit.status === 'fulfilled') {
        expect(commit.value.headRevision).toBe(1);
        for (const row of [x, y]) {
          expect((await committer.cancelPendingTurnInput(S, row.inputId)).outcome).toBe('already_completed');
        }
      } else {
        expect(isStoreError(commit.reason, 'TurnInputClaimSuperseded')).toBe(true);
        assertStoreError(commit.reason, 'TurnInputClaimSuperseded', { sessionId: S, claimId: c.claimId });
        expect(await committer.session(S).loadSession({ kind: 'full_graph' })).toBeNull();
        expect(ids(await committer.listPendingTurnInputs(S))).toEqual([x.inputId, y.inputId]);
        const again = await claimNext(committer, lease);
        expect(ids(again?.inputs ?? [])).toEqual([x.inputId, y.inputId]);
      }
    }
  });
});
