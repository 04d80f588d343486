/**
 * T3 racing the final commit (SPEC 5.1 step 3): the turn-stamp test happens in the enqueue's own
 * atomic step, so active-turn input racing the turn's final commit (stamped, with interrupt
 * deferral) can never be left `pending_active` for a finished turn. Every row ends deferred to the
 * next turn, whether the commit deferred it (T10) or the enqueue saw the stamp (T3).
 */
import { expect, test } from 'vitest';
import { createRedisRuntimeStore, leaseCompletion, leaseFence, turnCommitHash } from '../../src/index.js';
import { acquire, minimalCommit } from '../conformance/fixtures.js';
import { separateRedisTarget, testPrefix } from '../support/prefix.js';

test('active-turn enqueues racing the stamped final commit never leave pending_active input', async (ctx) => {
  const prefix = testPrefix(ctx);
  const ingress = await createRedisRuntimeStore({
    redis: separateRedisTarget(),
    keyPrefix: prefix,
    idleDispatch: false,
  });
  const worker = await createRedisRuntimeStore({
    redis: separateRedisTarget(),
    keyPrefix: prefix,
    idleDispatch: false,
  });
  ctx.onTestFinished(async () => {
    await ingress.close();
    await worker.close();
  });
  const sessionId = 'race-t3';
  const turnId = 'turn-1';
  const lease = await acquire(worker, sessionId);
  const body = minimalCommit(leaseFence(lease), [], { interruptedTurnInputTurnId: turnId });
  const commit = {
    ...body,
    releaseSessionExecutionLease: leaseCompletion(lease),
    turnCommit: { sessionId, turnId, turnCommitHash: turnCommitHash(body) },
  };

  const N = 200;
  const enqueueOne = (i: number) =>
    ingress.enqueuePendingTurnInput({
      sessionId,
      sourceKey: `k${i}`,
      ingress: { scope: 'active_turn', turnId, minBoundary: i % 2 === 0 ? 'after_work' : 'before_completion' },
      input: { i },
    });
  // A stream of enqueues, a few in flight at a time, and the commit sent from its own connection
  // once a quarter of them have landed, so the two really interleave.
  let landed = 0;
  let quarter: () => void = () => undefined;
  const quarterLanded = new Promise<void>((r) => {
    quarter = r;
  });
  const producing = (async () => {
    const out: Awaited<ReturnType<typeof enqueueOne>>[] = [];
    for (let i = 0; i < N; i += 4) {
      const batch = await Promise.all([i, i + 1, i + 2, i + 3].map(enqueueOne));
      out.push(...batch);
      landed += batch.length;
      if (landed >= N / 4) quarter();
    }
    return out;
  })();
  const committing = (async () => {
    await quarterLanded;
    return worker.session(sessionId).commitRuntimeState(commit);
  })();
  const [rows, result] = await Promise.all([producing, committing]);
  expect(result.headRevision).toBe(1);

  // Each enqueue answered with its row as stored at that moment; some landed before the stamp.
  const storedDirectlyDeferred = rows.filter((r) => r.state === 'deferred_next_turn').length;
  expect(rows.every((r) => r.state === 'pending_active' || r.state === 'deferred_next_turn')).toBe(true);
  expect(storedDirectlyDeferred, 'some enqueues should have landed after the stamp (T3)').toBeGreaterThan(0);
  expect(storedDirectlyDeferred, 'some enqueues should have landed before the commit (T10)').toBeLessThan(N);

  // After both settle: every row is next-turn input, in admission order, none pending for the turn.
  const listed = await ingress.listPendingTurnInputs(sessionId);
  expect(listed).toHaveLength(N);
  expect(listed.map((r) => r.enqueueSeq)).toEqual([...listed.map((r) => r.enqueueSeq)].sort((a, b) => a - b));
  for (const r of listed) {
    expect(r.state).toBe('deferred_next_turn');
    expect(r.ingress).toEqual({ scope: 'next_turn' });
  }
  // Replays of the original active drafts still match their rows (the original ingress is kept).
  const replay = await ingress.enqueuePendingTurnInput({
    sessionId,
    sourceKey: 'k1',
    ingress: { scope: 'active_turn', turnId, minBoundary: 'before_completion' },
    input: { i: 1 },
  });
  expect(replay.inputId).toBe(rows[1].inputId);
  expect(replay.state).toBe('deferred_next_turn');
});
