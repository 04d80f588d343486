/**
 * SPEC.md section 3.8 (failing runs): attempt counts, isolation, the `failed` state,
 * listFailedTurnInputs, retryFailedTurnInputs, cancel, idempotency and retention of failed rows,
 * against both backends.
 */
import { expect, test } from 'vitest';
import {
  leaseCompletion,
  type PendingTurnInput,
  type RuntimeStore,
  type SessionExecutionLease,
  type TurnInputClaim,
} from '../../src/index.js';
import { describeBackends } from './backends.js';
import {
  acquire,
  at,
  claimActive,
  claimNext,
  enqueue,
  expectInvalidInput,
  ids,
  minimalCommit,
  nt,
  O,
} from './fixtures.js';

const failure = (error: string, maxAttempts = 3) => ({ failure: { error, maxAttempts } });

/** One run: lease, claim next (up to maxInputs), then `outcome`; the lease is released. */
async function run(
  store: RuntimeStore,
  sessionId: string,
  outcome: 'fail' | 'commit',
  options: { maxInputs?: number; maxAttempts?: number; error?: string } = {},
): Promise<{ claim: TurnInputClaim | null; lease: SessionExecutionLease }> {
  const lease = await acquire(store, sessionId, O('w'));
  const claim = await claimNext(store, lease, { maxInputs: options.maxInputs ?? 100 });
  if (claim && outcome === 'fail') {
    await store.abandonTurnInputClaims([claim], failure(options.error ?? 'boom', options.maxAttempts ?? 3));
  }
  if (claim && outcome === 'commit') {
    await store.session(sessionId).commitRuntimeState(minimalCommit(lease, [claim]));
  }
  await store.releaseSessionExecutionLease(leaseCompletion(lease));
  return { claim, lease };
}

/** Runs turns until the session has nothing claimable; `poison` ids always fail. */
async function drain(store: RuntimeStore, sessionId: string, poison: Set<string>, maxAttempts = 3) {
  const runs: string[][] = [];
  for (let i = 0; i < 50; i++) {
    const lease = await acquire(store, sessionId, O('w'));
    const claim = await claimNext(store, lease);
    if (!claim) {
      await store.releaseSessionExecutionLease(leaseCompletion(lease));
      return runs;
    }
    runs.push(ids(claim.inputs));
    if (claim.inputs.some((i) => poison.has(i.inputId))) {
      await store.abandonTurnInputClaims([claim], failure('poisoned', maxAttempts));
      await store.releaseSessionExecutionLease(leaseCompletion(lease));
    } else {
      await store
        .session(sessionId)
        .commitRuntimeState(minimalCommit(lease, [claim], { releaseSessionExecutionLease: leaseCompletion(lease) }));
    }
  }
  throw new Error('drain did not settle');
}

describeBackends('failing runs', (b) => {
  test('a failure abandon counts an attempt; the claim shows attempts and lastError; alone at maxAttempts it fails', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const A = await enqueue(store, 's', nt('A', { inputId: 'a' }));
    const first = await run(store, 's', 'fail', { error: 'first error' });
    expect(first.claim?.inputs).toEqual([A]);

    const second = await run(store, 's', 'fail', { error: 'second error' });
    expect(second.claim?.inputs).toEqual([{ ...A, attempts: 1, lastError: 'first error' }]);
    expect(await store.listFailedTurnInputs('s')).toEqual([]);
    expect(ids(await store.listPendingTurnInputs('s'))).toEqual(['a']);

    const third = await run(store, 's', 'fail', { error: 'third error' });
    expect(third.claim?.inputs[0]).toMatchObject({ attempts: 2, lastError: 'second error' });

    // Out of attempts: terminal, not listed, not claimable.
    expect(await store.listPendingTurnInputs('s')).toEqual([]);
    const failed = await store.listFailedTurnInputs('s');
    expect(failed).toEqual([{ ...A, state: 'failed', attempts: 3, lastError: 'third error' }]);
    expect((await run(store, 's', 'commit')).claim).toBeNull();
  });

  test('a failed batch is retried one input at a time: the poison input fails, the others commit', async (ctx) => {
    const { store } = await b.fresh(ctx);
    for (const id of ['a', 'b', 'c']) await enqueue(store, 's', nt(id, { inputId: id }));
    const runs = await drain(store, 's', new Set(['b']));
    // The batch, then a alone (commits), b alone twice (fails at 3 attempts), c alone; then nothing.
    expect(runs).toEqual([['a', 'b', 'c'], ['a'], ['b'], ['b'], ['c']]);
    const failed = await store.listFailedTurnInputs('s');
    expect(failed.map((f) => [f.inputId, f.state, f.attempts, f.lastError])).toEqual([['b', 'failed', 3, 'poisoned']]);
    // Later input batches again: isolation is only for inputs that failed before.
    for (const id of ['d', 'e']) await enqueue(store, 's', nt(id, { inputId: id }));
    expect(await drain(store, 's', new Set())).toEqual([['d', 'e']]);
  });

  test('a run of several inputs never fails one, even with maxAttempts 1', async (ctx) => {
    const { store } = await b.fresh(ctx);
    for (const id of ['a', 'b']) await enqueue(store, 's', nt(id, { inputId: id }));
    await run(store, 's', 'fail', { maxAttempts: 1 });
    expect(await store.listFailedTurnInputs('s')).toEqual([]);
    const next = await run(store, 's', 'fail', { maxAttempts: 1 });
    expect(ids(next.claim!.inputs)).toEqual(['a']);
    expect((await store.listFailedTurnInputs('s')).map((f) => [f.inputId, f.attempts])).toEqual([['a', 2]]);
  });

  test('a plain abandon counts nothing', async (ctx) => {
    const { store } = await b.fresh(ctx);
    for (const id of ['a', 'b']) await enqueue(store, 's', nt(id, { inputId: id }));
    const lease = await acquire(store, 's');
    const claim = (await claimNext(store, lease))!;
    await store.abandonTurnInputClaim(claim);
    const again = (await claimNext(store, lease))!;
    expect(ids(again.inputs)).toEqual(['a', 'b']);
    expect(again.inputs.every((i) => i.attempts === undefined)).toBe(true);
  });

  test('an active claim of a failed run counts too', async (ctx) => {
    const { store } = await b.fresh(ctx);
    await enqueue(store, 's', nt('n', { inputId: 'n' }));
    const lease = await acquire(store, 's');
    const next = (await claimNext(store, lease))!;
    await enqueue(store, 's', at('t1', 'after_work', 'act', { inputId: 'x' }));
    const active = (await claimActive(store, lease, 't1', 'after_work'))!;
    await store.abandonTurnInputClaims([next, active], failure('both', 1));
    // Two rows in the failed run: both counted, neither failed; x is back to pending_active.
    const pending = await store.listPendingTurnInputs('s');
    expect(pending.map((p) => [p.inputId, p.state])).toEqual([
      ['n', 'deferred_next_turn'],
      ['x', 'pending_active'],
    ]);
    const again = (await claimActive(store, lease, 't1', 'after_work'))!;
    expect(again.inputs[0]).toMatchObject({ inputId: 'x', attempts: 1, lastError: 'both' });
    await store.abandonTurnInputClaim(again, failure('alone', 1));
    expect((await store.listFailedTurnInputs('s')).map((f) => [f.inputId, f.attempts])).toEqual([['x', 2]]);
  });

  test('retryFailedTurnInputs puts a failed input back at its position, attempts reset', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const A = await enqueue(store, 's', nt('A', { inputId: 'a' }));
    await run(store, 's', 'fail', { maxAttempts: 1 });
    const B = await enqueue(store, 's', nt('B', { inputId: 'b' }));
    expect(await store.retryFailedTurnInputs('s', ['a', 'b', 'zz', 'a'])).toEqual([
      { inputId: 'a', outcome: { outcome: 'retried', input: A } },
      { inputId: 'b', outcome: { outcome: 'not_failed', input: B } },
      { inputId: 'zz', outcome: { outcome: 'not_found' } },
      { inputId: 'a', outcome: { outcome: 'not_failed', input: A } },
    ]);
    expect(await store.retryFailedTurnInputs('s', [])).toEqual([]);
    expect(await store.listFailedTurnInputs('s')).toEqual([]);
    expect(await store.listPendingTurnInputs('s')).toEqual([A, B]);
    // Attempts reset: it batches with the later input again, and needs maxAttempts failures to fail.
    const { claim } = await run(store, 's', 'commit');
    expect(claim?.inputs).toEqual([A, B]);
  });

  test('retry of an active input that failed: back as next-turn input, the source key still replays', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const lease = await acquire(store, 's');
    const X = await enqueue(store, 's', at('t1', undefined, 'x', { inputId: 'x', sourceKey: 'kx' }));
    const claim = (await claimActive(store, lease, 't1', 'after_work'))!;
    await store.abandonTurnInputClaim(claim, failure('bad', 1));
    const [failed] = await store.listFailedTurnInputs('s');
    expect(failed).toEqual({ ...X, state: 'failed', attempts: 1, lastError: 'bad' });
    // A replay of the draft returns the failed row (idempotency), writing nothing.
    expect(await enqueue(store, 's', at('t1', undefined, 'x', { sourceKey: 'kx' }))).toEqual({ ...X, state: 'failed' });
    const [r] = await store.retryFailedTurnInputs('s', ['x']);
    const deferredX: PendingTurnInput = { ...X, state: 'deferred_next_turn', ingress: { scope: 'next_turn' } };
    expect(r.outcome).toEqual({ outcome: 'retried', input: deferredX });
    expect(await enqueue(store, 's', at('t1', undefined, 'x', { sourceKey: 'kx' }))).toEqual(deferredX);
  });

  test('cancel works on a failed input; it keeps its terminal time', async (ctx) => {
    const { store, advance } = await b.fresh(ctx);
    const A = await enqueue(store, 's', nt('A', { inputId: 'a', sourceKey: 'ka' }));
    await run(store, 's', 'fail', { maxAttempts: 1 });
    await advance(30);
    expect(await store.cancelPendingTurnInputs('s', [{ kind: 'source_key', value: 'ka' }])).toEqual([
      {
        target: { kind: 'source_key', value: 'ka' },
        outcome: { outcome: 'cancelled', input: { ...A, state: 'cancelled' } },
      },
    ]);
    expect(await store.cancelPendingTurnInput('s', 'a')).toEqual({
      outcome: 'already_cancelled',
      input: { ...A, state: 'cancelled' },
    });
    expect(await store.listFailedTurnInputs('s')).toEqual([]);
    expect(await store.retryFailedTurnInputs('s', ['a'])).toEqual([
      { inputId: 'a', outcome: { outcome: 'not_failed', input: { ...A, state: 'cancelled' } } },
    ]);
    // Suffix cancel sees failed rows too.
    const B = await enqueue(store, 's', nt('B', { inputId: 'b' }));
    await run(store, 's', 'fail', { maxAttempts: 1 });
    const suffix = await store.cancelPendingTurnInputSuffix('s', { kind: 'input_id', value: 'a' });
    expect(suffix).toEqual({
      outcome: 'outcomes',
      anchor: { kind: 'input_id', value: 'a' },
      outcomes: [
        { outcome: 'already_cancelled', input: { ...A, state: 'cancelled' } },
        { outcome: 'cancelled', input: { ...B, state: 'cancelled' } },
      ],
    });
  });

  test('failed rows are tombstones for vacuum; a retried row is not removed by its old tomb entry', async (ctx) => {
    const { store, advance } = await b.fresh(ctx);
    await enqueue(store, 's', nt('A', { inputId: 'a', sourceKey: 'ka' }));
    await enqueue(store, 's', nt('B', { inputId: 'b' }));
    await run(store, 's', 'fail', { maxAttempts: 1, maxInputs: 1 });
    await run(store, 's', 'fail', { maxAttempts: 1, maxInputs: 1 }); // b fails too (a is failed)
    expect(ids(await store.listFailedTurnInputs('s'))).toEqual(['a', 'b']);
    await store.retryFailedTurnInputs('s', ['a']);
    await advance(20);
    const r = await store.vacuum({ olderThanMs: 10 });
    expect(r.removedPendingTurnInputTombstones).toBe(1);
    expect(await store.listFailedTurnInputs('s')).toEqual([]);
    expect(ids(await store.listPendingTurnInputs('s'))).toEqual(['a']);
    expect(await store.cancelPendingTurnInput('s', 'b')).toEqual({ outcome: 'not_found' });
    // a fails again later: only its new tombstone counts for retention.
    await run(store, 's', 'fail', { maxAttempts: 1 });
    expect((await store.vacuum({ olderThanMs: 60_000 })).removedPendingTurnInputTombstones).toBe(0);
    expect(ids(await store.listFailedTurnInputs('s'))).toEqual(['a']);
    expect((await store.vacuum({ olderThanMs: 0 })).removedPendingTurnInputTombstones).toBe(1);
    // Gone for every purpose: the draft makes a new row.
    const again = await enqueue(store, 's', nt('A', { sourceKey: 'ka' }));
    expect(again.inputId).not.toBe('a');
    expect(again.enqueueSeq).toBe(3);
  });

  test('lastError is bounded to 1000 characters', async (ctx) => {
    const { store } = await b.fresh(ctx);
    await enqueue(store, 's', nt('A', { inputId: 'a' }));
    await run(store, 's', 'fail', { maxAttempts: 1, error: `${'é'.repeat(999)}😀tail"\\` });
    const [f] = await store.listFailedTurnInputs('s');
    expect(f.lastError).toBe(`${'é'.repeat(999)}😀`);
  });

  test('bad arguments are InvalidInput and write nothing', async (ctx) => {
    const { store } = await b.fresh(ctx);
    await enqueue(store, 's', nt('A', { inputId: 'a' }));
    const lease = await acquire(store, 's');
    const claim = (await claimNext(store, lease))!;
    await expectInvalidInput(
      store.abandonTurnInputClaims([claim], { failure: { error: 'x', maxAttempts: 0 } }),
      'options.failure.maxAttempts',
    );
    await expectInvalidInput(
      store.abandonTurnInputClaim(claim, { failure: { error: 5, maxAttempts: 3 } } as never),
      'options.failure.error',
    );
    await expectInvalidInput(store.abandonTurnInputClaim(claim, { fail: true } as never), 'options');
    await expectInvalidInput(store.listFailedTurnInputs(''), 'sessionId');
    await expectInvalidInput(store.retryFailedTurnInputs('s', 'a' as never), 'inputIds');
    await expectInvalidInput(store.retryFailedTurnInputs('s', ['']), 'inputIds.0');
    // Nothing was written: the claim still holds the row, with no attempt counted.
    await store.abandonTurnInputClaim(claim);
    const again = (await claimNext(store, lease))!;
    expect(again.inputs[0].attempts).toBeUndefined();
  });
});
