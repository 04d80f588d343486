/**
 * SPEC.md section 5 (turn-input store: enqueue, list, cancel, suffix cancel), 3.5 (T1-T3, T11-T13),
 * 3.6 (tombstones and vacuum), 5.9 (enqueueSeq) and 2.2/2.5 (payload round trip, fresh copies).
 * Claims have their own file (claims.test.ts).
 */
import { expect, test } from 'vitest';
import {
  claimCompletion,
  type JsonValue,
  leaseCompletion,
  type PendingTurnInput,
  type PendingTurnInputCancelTarget,
  type RuntimeStore,
  turnCommitHash,
} from '../../src/index.js';
import { describeBackends } from './backends.js';
import {
  acquire,
  at,
  claimActive,
  claimNext,
  draft,
  enqueue,
  expectStoreError,
  ids,
  minimalCommit,
  nt,
  O,
} from './fixtures.js';

const UUID = /^ti_[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const src = (value: string): PendingTurnInputCancelTarget => ({ kind: 'source_key', value });
const idt = (value: string): PendingTurnInputCancelTarget => ({ kind: 'input_id', value });

/** Completes every deferred next-turn input of `sessionId` through a commit (acquire, claim, commit + release). */
async function completeAllNext(store: RuntimeStore, sessionId: string): Promise<string[]> {
  const lease = await acquire(store, sessionId, O('finisher'));
  const claim = await claimNext(store, lease);
  expect(claim).not.toBeNull();
  await store
    .session(sessionId)
    .commitRuntimeState(minimalCommit(lease, [claim!], { releaseSessionExecutionLease: leaseCompletion(lease) }));
  return ids(claim!.inputs);
}

describeBackends('turn inputs', (b) => {
  // ------------------------------------------------------------------ enqueue (T1, T2)

  test('T1: a next-turn enqueue stores a deferred_next_turn row with a generated ti_ id and seq 1', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const row = await enqueue(store, 's', nt('hello'));
    expect(row.inputId).toMatch(UUID);
    expect(row.sessionId).toBe('s');
    expect(row.enqueueSeq).toBe(1);
    expect(row.state).toBe('deferred_next_turn');
    expect(row.ingress).toEqual({ scope: 'next_turn' });
    expect(row.input).toEqual({ text: 'hello' });
    expect(Number.isSafeInteger(row.enqueuedAtMs)).toBe(true);
    if (b.name === 'memory') expect(row.enqueuedAtMs).toBe(1_000_000);
    // SPEC 2.5: optional fields without a value are absent, never undefined or null.
    expect('sourceKey' in row).toBe(false);
    expect(Object.keys(row).sort()).toEqual(
      ['enqueueSeq', 'enqueuedAtMs', 'ingress', 'input', 'inputId', 'sessionId', 'state'].sort(),
    );
    expect(await store.listPendingTurnInputs('s')).toEqual([row]);
  });

  test('T2: an active-turn enqueue is pending_active, minBoundary defaults to after_work', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const a = await enqueue(store, 's', at('t1'));
    const bc = await enqueue(store, 's', at('t1', 'before_completion', 'late', { sourceKey: 'k' }));
    expect(a.state).toBe('pending_active');
    expect(a.ingress).toEqual({ scope: 'active_turn', turnId: 't1', minBoundary: 'after_work' });
    expect(bc.state).toBe('pending_active');
    expect(bc.ingress).toEqual({ scope: 'active_turn', turnId: 't1', minBoundary: 'before_completion' });
    expect(bc.sourceKey).toBe('k');
    expect(await store.listPendingTurnInputs('s')).toEqual([a, bc]);
  });

  test('a caller-chosen inputId is used; generated ids are unique', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const mine = await enqueue(store, 's', nt('x', { inputId: 'in-mine' }));
    expect(mine.inputId).toBe('in-mine');
    const generated = new Set<string>();
    for (let i = 0; i < 20; i++) generated.add((await enqueue(store, 's', nt(`g${i}`))).inputId);
    expect(generated.size).toBe(20);
    for (const id of generated) expect(id).toMatch(UUID);
  });

  test('enqueueSeq is per session, strictly increasing from 1', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const seqA: number[] = [];
    const seqB: number[] = [];
    for (let i = 0; i < 5; i++) {
      seqA.push((await enqueue(store, 'sa', i % 2 ? nt(`a${i}`) : at('t', undefined, `a${i}`))).enqueueSeq);
      if (i < 3) seqB.push((await enqueue(store, 'sb', nt(`b${i}`))).enqueueSeq);
    }
    expect(seqA).toEqual([1, 2, 3, 4, 5]);
    expect(seqB).toEqual([1, 2, 3]);
  });

  test('enqueuedAtMs is the store clock', async (ctx) => {
    const { store, advance } = await b.fresh(ctx);
    const r1 = await enqueue(store, 's', nt('1'));
    await advance(b.name === 'memory' ? 1_234 : 5);
    const r2 = await enqueue(store, 's', nt('2'));
    expect(r2.enqueuedAtMs).toBeGreaterThanOrEqual(r1.enqueuedAtMs);
    if (b.name === 'memory') expect(r2.enqueuedAtMs - r1.enqueuedAtMs).toBe(1_234);
  });

  test('payloads round-trip as JSON.parse(JSON.stringify(x)) (SPEC 2.2)', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const polluting = JSON.parse('{"__proto__":{"polluted":true},"constructor":{"prototype":{"p":1}},"a":1}');
    const payloads: JsonValue[] = [
      null,
      true,
      false,
      0,
      -1.5,
      0.1 + 0.2,
      1e300,
      5e-324,
      2 ** 53 - 1,
      -(2 ** 53 - 1),
      123456789.12345679,
      '',
      'plain',
      'quotes " and \\ backslash\nnewline\ttab \u0000 nul \u001f',
      'ünïcödé 🎉 中文 \u2028',
      [],
      {},
      [[], {}, [[]], { a: [] }, { b: {} }],
      { empty: [], obj: {}, nested: { deeper: { list: [1, 'two', null, false, { x: 0.5 }] } } },
      { 'key with spaces': 1, 'a:b': 2, '{x}': 3, '%41': 4, '': 5 },
      polluting,
      Array.from({ length: 50 }, (_, i) => ({ i, s: 'x'.repeat(i) })),
    ];
    const rows: PendingTurnInput[] = [];
    for (const input of payloads) {
      const row = await store.enqueuePendingTurnInput({ sessionId: 's', ingress: { scope: 'next_turn' }, input });
      expect(row.input).toEqual(JSON.parse(JSON.stringify(input)));
      rows.push(row);
    }
    const listed = await store.listPendingTurnInputs('s');
    expect(listed.map((r) => r.input)).toEqual(payloads.map((p) => JSON.parse(JSON.stringify(p))));
    // Arrays stay arrays, objects stay objects (no cjson [] <-> {} confusion).
    expect(Array.isArray(listed[15]!.input)).toBe(true);
    expect(Array.isArray(listed[16]!.input)).toBe(false);
    const mixed = listed[17]!.input as JsonValue[];
    expect(Array.isArray(mixed[0])).toBe(true);
    expect(Array.isArray(mixed[1])).toBe(false);
    // An own "__proto__" key is data, not a prototype.
    expect(Object.hasOwn(listed[20]!.input as object, '__proto__')).toBe(true);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    // Every finite double keeps its exact value.
    expect(Object.is(listed[5]!.input, 0.1 + 0.2)).toBe(true);
    expect(listed[7]!.input).toBe(5e-324);
    expect(listed[10]!.input).toBe(123456789.12345679);
  });

  test('a payload property whose value is undefined counts as absent', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const row = await store.enqueuePendingTurnInput({
      sessionId: 's',
      ingress: { scope: 'next_turn' },
      input: { a: 1, gone: undefined } as unknown as JsonValue,
    });
    expect('gone' in (row.input as object)).toBe(false);
    const [listed] = await store.listPendingTurnInputs('s');
    expect('gone' in (listed!.input as object)).toBe(false);
    expect(listed!.input).toEqual({ a: 1 });
  });

  // ------------------------------------------------------------------ source keys (5.1)

  test('a source-key replay returns the original row and writes nothing; draft.inputId is ignored', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const first = await enqueue(store, 's', nt('hello', { sourceKey: 'k1' }));
    const replay = await enqueue(store, 's', nt('hello', { sourceKey: 'k1' }));
    expect(replay).toEqual(first);
    const replayWithId = await enqueue(store, 's', nt('hello', { sourceKey: 'k1', inputId: 'other-id' }));
    expect(replayWithId).toEqual(first);
    expect(await store.listPendingTurnInputs('s')).toEqual([first]);
    // Nothing was written: the seq counter did not move, and 'other-id' is still free.
    const next = await enqueue(store, 's', nt('second', { inputId: 'other-id' }));
    expect(next.enqueueSeq).toBe(2);
  });

  test('content match ignores key order in the input, and a defaulted minBoundary equals an explicit after_work', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const first = await store.enqueuePendingTurnInput({
      sessionId: 's',
      sourceKey: 'k',
      ingress: { scope: 'active_turn', turnId: 't1' },
      input: { a: 1, b: { c: [1, { y: 2, x: 1 }], d: 'e' } },
    });
    const replay = await store.enqueuePendingTurnInput({
      sessionId: 's',
      sourceKey: 'k',
      ingress: { scope: 'active_turn', turnId: 't1', minBoundary: 'after_work' },
      input: { b: { d: 'e', c: [1, { x: 1, y: 2 }] }, a: 1 },
    });
    expect(replay).toEqual(first);
    expect(await store.listPendingTurnInputs('s')).toHaveLength(1);
  });

  test('changed content under a source key conflicts, naming the existing id; nothing is written', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const first = await enqueue(store, 's', at('t1', undefined, 'hello', { sourceKey: 'k1' }));
    const conflict = { sessionId: 's', sourceKey: 'k1', existingInputId: first.inputId };
    const changed: Array<Parameters<RuntimeStore['enqueuePendingTurnInput']>[0]> = [
      draft('s', at('t1', undefined, 'changed', { sourceKey: 'k1' })),
      draft('s', nt('hello', { sourceKey: 'k1' })),
      draft('s', at('t2', undefined, 'hello', { sourceKey: 'k1' })),
      draft('s', at('t1', 'before_completion', 'hello', { sourceKey: 'k1' })),
      {
        sessionId: 's',
        sourceKey: 'k1',
        ingress: { scope: 'active_turn', turnId: 't1' },
        input: { text: 'hello', x: 1 },
      },
      { sessionId: 's', sourceKey: 'k1', ingress: { scope: 'active_turn', turnId: 't1' }, input: ['hello'] },
      { sessionId: 's', sourceKey: 'k1', ingress: { scope: 'active_turn', turnId: 't1' }, input: { text: 'hello ' } },
    ];
    for (const d of changed) {
      await expectStoreError(store.enqueuePendingTurnInput(d), 'PendingTurnInputSourceKeyConflict', conflict);
    }
    expect(await store.listPendingTurnInputs('s')).toEqual([first]);
    expect((await enqueue(store, 's', nt('next'))).enqueueSeq).toBe(2);
  });

  test('source keys are per session: the same key in two sessions names two rows', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const a = await enqueue(store, 'sa', nt('one', { sourceKey: 'same' }));
    const bb = await enqueue(store, 'sb', nt('other content', { sourceKey: 'same' }));
    expect(bb.inputId).not.toBe(a.inputId);
    expect(bb.sessionId).toBe('sb');
    expect(bb.enqueueSeq).toBe(1);
    expect(await store.listPendingTurnInputs('sa')).toEqual([a]);
    expect(await store.listPendingTurnInputs('sb')).toEqual([bb]);
  });

  test('source-key replay returns the row as it is now: cancelled, accepted, completed', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const c = await enqueue(store, 's', nt('to cancel', { sourceKey: 'kc' }));
    const done = await enqueue(store, 's', nt('to complete', { sourceKey: 'kd' }));
    const act = await enqueue(store, 's', at('t1', undefined, 'to accept', { sourceKey: 'ka' }));

    await store.cancelPendingTurnInput('s', c.inputId);
    const cReplay = await enqueue(store, 's', nt('to cancel', { sourceKey: 'kc' }));
    expect(cReplay).toEqual({ ...c, state: 'cancelled' });

    const lease = await acquire(store, 's');
    const activeClaim = await claimActive(store, lease, 't1', 'after_work');
    expect(ids(activeClaim!.inputs)).toEqual([act.inputId]);
    const aReplay = await enqueue(store, 's', at('t1', undefined, 'to accept', { sourceKey: 'ka' }));
    expect(aReplay).toEqual({ ...act, state: 'accepted' });

    const nextClaim = await claimNext(store, lease);
    expect(ids(nextClaim!.inputs)).toEqual([done.inputId]);
    await store.session('s').commitRuntimeState(minimalCommit(lease, [nextClaim!, activeClaim!]));
    const dReplay = await enqueue(store, 's', nt('to complete', { sourceKey: 'kd' }));
    expect(dReplay).toEqual({ ...done, state: 'completed' });
    const aDone = await enqueue(store, 's', at('t1', undefined, 'to accept', { sourceKey: 'ka' }));
    expect(aDone).toEqual({ ...act, state: 'completed' });
    // Changed content still conflicts against a tombstone.
    await expectStoreError(
      enqueue(store, 's', nt('changed', { sourceKey: 'kd' })),
      'PendingTurnInputSourceKeyConflict',
      { sessionId: 's', sourceKey: 'kd', existingInputId: done.inputId },
    );
    expect(await store.listPendingTurnInputs('s')).toEqual([]);
  });

  test('two concurrent enqueues with one source key and the same content make one row; both get its id', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const results = await Promise.all(
      Array.from({ length: 6 }, () => enqueue(store, 's', nt('same', { sourceKey: 'race' }))),
    );
    const distinct = new Set(results.map((r) => r.inputId));
    expect(distinct.size).toBe(1);
    expect(await store.listPendingTurnInputs('s')).toHaveLength(1);
    expect(results.every((r) => r.enqueueSeq === 1)).toBe(true);
  });

  // ------------------------------------------------------------------ explicit ids (5.1 step 2)

  test('an explicit id that exists in the session conflicts, in any state; other sessions are unrelated', async (ctx) => {
    const { store } = await b.fresh(ctx);
    await enqueue(store, 's', nt('first', { inputId: 'in-1' }));
    await expectStoreError(enqueue(store, 's', nt('second', { inputId: 'in-1' })), 'PendingTurnInputIdConflict', {
      sessionId: 's',
      inputId: 'in-1',
    });
    // A fresh source key does not help: step 2 still applies.
    await expectStoreError(
      enqueue(store, 's', at('t', undefined, 'third', { inputId: 'in-1', sourceKey: 'new-key' })),
      'PendingTurnInputIdConflict',
      { sessionId: 's', inputId: 'in-1' },
    );
    // After cancellation (a tombstone) the id is still taken.
    await store.cancelPendingTurnInput('s', 'in-1');
    await expectStoreError(enqueue(store, 's', nt('fourth', { inputId: 'in-1' })), 'PendingTurnInputIdConflict', {
      sessionId: 's',
      inputId: 'in-1',
    });
    // The rejected enqueues wrote nothing: 'new-key' is free and the seq moved by one only.
    const fresh = await enqueue(store, 's', nt('fifth', { sourceKey: 'new-key' }));
    expect(fresh.enqueueSeq).toBe(2);
    // Ids are unique per session only.
    const other = await enqueue(store, 'other', nt('x', { inputId: 'in-1' }));
    expect(other.inputId).toBe('in-1');
    expect(other.sessionId).toBe('other');
  });

  test('a matching source-key replay wins over an explicit id of another row (step 1 before step 2)', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const a = await enqueue(store, 's', nt('a', { inputId: 'in-a', sourceKey: 'ka' }));
    await enqueue(store, 's', nt('b', { inputId: 'in-b' }));
    const replay = await enqueue(store, 's', nt('a', { inputId: 'in-b', sourceKey: 'ka' }));
    expect(replay).toEqual(a);
  });

  // ------------------------------------------------------------------ T3

  test('T3: active input for an already stamped turn is stored as deferred_next_turn with a next_turn ingress', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const lease = await acquire(store, 's');
    const commit = minimalCommit(lease, []);
    commit.turnCommit = { sessionId: 's', turnId: 't1', turnCommitHash: turnCommitHash(commit) };
    await store.session('s').commitRuntimeState(commit);

    const late = await enqueue(store, 's', at('t1', 'before_completion', 'late', { sourceKey: 'late' }));
    expect(late.state).toBe('deferred_next_turn');
    expect(late.ingress).toEqual({ scope: 'next_turn' });
    const other = await enqueue(store, 's', at('t2', undefined, 'other turn'));
    expect(other.state).toBe('pending_active');
    // The original ingress is kept for replays: the original draft still matches.
    const replay = await enqueue(store, 's', at('t1', 'before_completion', 'late', { sourceKey: 'late' }));
    expect(replay).toEqual(late);
    // ... and a next_turn draft with the same content does not (it is not the original ingress).
    await expectStoreError(
      enqueue(store, 's', nt('late', { sourceKey: 'late' })),
      'PendingTurnInputSourceKeyConflict',
      { sessionId: 's', sourceKey: 'late', existingInputId: late.inputId },
    );
    expect(ids(await store.listPendingTurnInputs('s'))).toEqual([late.inputId, other.inputId]);
    // It is next-turn input now.
    const claim = await claimNext(store, lease);
    expect(ids(claim!.inputs)).toEqual([late.inputId]);
  });

  // ------------------------------------------------------------------ list (5.2)

  test('list: pending rows without a live claim, ascending enqueueSeq; accepted, held and tombstones excluded', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const n1 = await enqueue(store, 's', nt('n1')); // 1: claimed (live) below -> hidden
    const a1 = await enqueue(store, 's', at('t1', undefined, 'a1')); // 2: accepted -> hidden
    const n2 = await enqueue(store, 's', nt('n2')); // 3: cancelled -> hidden
    const a2 = await enqueue(store, 's', at('t-ended', undefined, 'a2')); // 4: other turn -> listed
    const n3 = await enqueue(store, 's', nt('n3')); // 5: completed -> hidden
    const a3 = await enqueue(store, 's', at('t1', 'before_completion', 'a3')); // 6: not admitted at after_work -> listed
    const n4 = await enqueue(store, 's', nt('n4')); // 7: listed

    expect(ids(await store.listPendingTurnInputs('s'))).toEqual(ids([n1, a1, n2, a2, n3, a3, n4]));

    await store.cancelPendingTurnInput('s', n2.inputId);
    const lease = await acquire(store, 's');
    const k3 = await claimNext(store, lease, { maxInputs: 1 });
    expect(ids(k3!.inputs)).toEqual([n1.inputId]);
    const kA = await claimActive(store, lease, 't1', 'after_work');
    expect(ids(kA!.inputs)).toEqual([a1.inputId]);
    // n3 via another claim, then completed.
    const kN3 = await claimNext(store, lease, { maxInputs: 1 });
    expect(ids(kN3!.inputs)).toEqual([n3.inputId]);
    await store.session('s').commitRuntimeState(minimalCommit(lease, [kN3!]));

    const listed = await store.listPendingTurnInputs('s');
    expect(ids(listed)).toEqual(ids([a2, a3, n4]));
    expect(listed.map((r) => r.enqueueSeq)).toEqual([4, 6, 7]);
    expect(listed[0]).toEqual(a2);
    expect(listed[1]).toEqual(a3);
    expect(listed[2]).toEqual(n4);

    // Releasing the lease ends the claims' liveness: n1 (deferred, dead claim) is listed again;
    // a1 is accepted and stays hidden until a fresh generation requeues it.
    await store.releaseSessionExecutionLease(leaseCompletion(lease));
    expect(ids(await store.listPendingTurnInputs('s'))).toEqual(ids([n1, a2, a3, n4]));
    // Another session is empty.
    expect(await store.listPendingTurnInputs('other')).toEqual([]);
  });

  // ------------------------------------------------------------------ cancel (5.3, 5.4)

  test('cancel: cancelled with state cancelled (row otherwise unchanged), then already_cancelled', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const row = await enqueue(store, 's', at('t1', undefined, 'x', { sourceKey: 'k' }));
    const keep = await enqueue(store, 's', nt('keep'));
    const out = await store.cancelPendingTurnInput('s', row.inputId);
    expect(out).toEqual({ outcome: 'cancelled', input: { ...row, state: 'cancelled' } });
    expect(await store.listPendingTurnInputs('s')).toEqual([keep]);
    expect(await store.cancelPendingTurnInput('s', row.inputId)).toEqual({
      outcome: 'already_cancelled',
      input: { ...row, state: 'cancelled' },
    });
    const viaKey = await store.cancelPendingTurnInputs('s', [src('k')]);
    expect(viaKey).toEqual([
      { target: src('k'), outcome: { outcome: 'already_cancelled', input: { ...row, state: 'cancelled' } } },
    ]);
  });

  test('cancel: not_found for a missing row and for a row of another session', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const other = await enqueue(store, 'other', nt('x', { sourceKey: 'k' }));
    expect(await store.cancelPendingTurnInput('s', other.inputId)).toEqual({ outcome: 'not_found' });
    expect(await store.cancelPendingTurnInputs('s', [src('k'), idt('nope')])).toEqual([
      { target: src('k'), outcome: { outcome: 'not_found' } },
      { target: idt('nope'), outcome: { outcome: 'not_found' } },
    ]);
    expect(await store.listPendingTurnInputs('other')).toEqual([other]);
  });

  test('bulk cancel [key A, id C, missing key, key A]: cancelled, cancelled, not_found, already_cancelled', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const A = await enqueue(store, 's', nt('A', { sourceKey: 'key-a' }));
    const B = await enqueue(store, 's', nt('B'));
    const C = await enqueue(store, 's', at('t9', undefined, 'C', { inputId: 'id-c' }));
    const targets = [src('key-a'), idt('id-c'), src('missing'), src('key-a')];
    const results = await store.cancelPendingTurnInputs('s', targets);
    expect(results).toEqual([
      { target: src('key-a'), outcome: { outcome: 'cancelled', input: { ...A, state: 'cancelled' } } },
      { target: idt('id-c'), outcome: { outcome: 'cancelled', input: { ...C, state: 'cancelled' } } },
      { target: src('missing'), outcome: { outcome: 'not_found' } },
      { target: src('key-a'), outcome: { outcome: 'already_cancelled', input: { ...A, state: 'cancelled' } } },
    ]);
    // Targets are copies.
    expect(results[0]!.target).not.toBe(targets[0]);
    expect(await store.listPendingTurnInputs('s')).toEqual([B]);
    expect(await store.cancelPendingTurnInputs('s', [])).toEqual([]);
  });

  test('cancel: accepted input is already_claimed with diagnostics, whatever the claim liveness', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const a = await enqueue(store, 's', at('t1', undefined, 'a', { sourceKey: 'ka' }));
    const lease = await acquire(store, 's', O('w'));
    const claim = await claimActive(store, lease, 't1', 'after_work', { owner: O('claimer') });
    expect(claim!.claimId).toBe(`tic:${a.enqueueSeq}:1`);
    const expected = {
      outcome: 'already_claimed',
      input: { ...a, state: 'accepted' },
      claim: {
        state: 'accepted',
        claimId: claim!.claimId,
        claimOwner: O('claimer'),
        claimSessionLeaseGeneration: 1,
        claimFencingToken: 1,
      },
    };
    expect(await store.cancelPendingTurnInput('s', a.inputId)).toEqual(expected);
    // With the lease released (claim no longer live) an accepted row still answers already_claimed.
    await store.releaseSessionExecutionLease(leaseCompletion(lease));
    expect(await store.cancelPendingTurnInputs('s', [src('ka')])).toEqual([{ target: src('ka'), outcome: expected }]);
  });

  test('cancel: a deferred row with a live claim is already_claimed; once the claim is dead it is cancelled (counter kept)', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const n = await enqueue(store, 's', nt('n', { sourceKey: 'kn' }));
    const lease = await acquire(store, 's', O('w'));
    const claim = await claimNext(store, lease);
    expect(await store.cancelPendingTurnInput('s', n.inputId)).toEqual({
      outcome: 'already_claimed',
      input: n,
      claim: {
        state: 'deferred_next_turn',
        claimId: claim!.claimId,
        claimOwner: O('w'),
        claimSessionLeaseGeneration: 1,
        claimFencingToken: 1,
      },
    });
    await store.releaseSessionExecutionLease(leaseCompletion(lease));
    expect(await store.cancelPendingTurnInput('s', n.inputId)).toEqual({
      outcome: 'cancelled',
      input: { ...n, state: 'cancelled' },
    });
  });

  test('cancel: completed input is already_completed', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const n = await enqueue(store, 's', nt('n', { sourceKey: 'kn' }));
    expect(await completeAllNext(store, 's')).toEqual([n.inputId]);
    expect(await store.cancelPendingTurnInput('s', n.inputId)).toEqual({
      outcome: 'already_completed',
      input: { ...n, state: 'completed' },
    });
    expect(await store.cancelPendingTurnInputs('s', [src('kn')])).toEqual([
      { target: src('kn'), outcome: { outcome: 'already_completed', input: { ...n, state: 'completed' } } },
    ]);
  });

  test('cancel versus claim race: exactly one of "cancelled" or "in the claim"', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const lease = await acquire(store, 's');
    for (let i = 0; i < 5; i++) {
      const row = await enqueue(store, 's', nt(`r${i}`));
      const [cancel, claim] = await Promise.all([
        store.cancelPendingTurnInput('s', row.inputId),
        claimNext(store, lease),
      ]);
      const inClaim = claim !== null && ids(claim.inputs).includes(row.inputId);
      const cancelled = cancel.outcome === 'cancelled';
      expect(inClaim !== cancelled, `cancel=${cancel.outcome} inClaim=${inClaim}`).toBe(true);
      if (!cancelled) expect(cancel.outcome).toBe('already_claimed');
    }
  });

  // ------------------------------------------------------------------ suffix (5.5)

  test('suffix over [next, accepted active, next]: cancelled, already_claimed with diagnostics, cancelled', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const before = await enqueue(store, 's', nt('before'));
    const first = await enqueue(store, 's', nt('first', { sourceKey: 'anchor' }));
    const mid = await enqueue(store, 's', at('t1', undefined, 'mid'));
    const last = await enqueue(store, 's', nt('last'));
    const lease = await acquire(store, 's', O('w'));
    const claim = await claimActive(store, lease, 't1', 'after_work');
    expect(ids(claim!.inputs)).toEqual([mid.inputId]);

    const r = await store.cancelPendingTurnInputSuffix('s', src('anchor'));
    expect(r).toEqual({
      outcome: 'outcomes',
      anchor: src('anchor'),
      outcomes: [
        { outcome: 'cancelled', input: { ...first, state: 'cancelled' } },
        {
          outcome: 'already_claimed',
          input: { ...mid, state: 'accepted' },
          claim: {
            state: 'accepted',
            claimId: `tic:${mid.enqueueSeq}:1`,
            claimOwner: O('w'),
            claimSessionLeaseGeneration: 1,
            claimFencingToken: 1,
          },
        },
        { outcome: 'cancelled', input: { ...last, state: 'cancelled' } },
      ],
    });
    expect(await store.listPendingTurnInputs('s')).toEqual([before]);
  });

  test('suffix anchored on a tombstone, by id, covers later rows of every kind', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const p = await enqueue(store, 's', nt('p'));
    const anchor = await enqueue(store, 's', nt('anchor', { inputId: 'in-anchor' }));
    const a = await enqueue(store, 's', at('tx', 'before_completion', 'a'));
    const n = await enqueue(store, 's', nt('n'));
    await store.cancelPendingTurnInput('s', anchor.inputId);
    const r = await store.cancelPendingTurnInputSuffix('s', idt('in-anchor'));
    expect(r).toEqual({
      outcome: 'outcomes',
      anchor: idt('in-anchor'),
      outcomes: [
        { outcome: 'already_cancelled', input: { ...anchor, state: 'cancelled' } },
        { outcome: 'cancelled', input: { ...a, state: 'cancelled' } },
        { outcome: 'cancelled', input: { ...n, state: 'cancelled' } },
      ],
    });
    expect(await store.listPendingTurnInputs('s')).toEqual([p]);
  });

  test('suffix: anchor_not_found writes nothing (missing anchor, or an anchor of another session)', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const a = await enqueue(store, 's', nt('a'));
    const bb = await enqueue(store, 's', at('t', undefined, 'b'));
    const foreign = await enqueue(store, 'other', nt('o', { sourceKey: 'foreign' }));
    expect(await store.cancelPendingTurnInputSuffix('s', src('nope'))).toEqual({
      outcome: 'anchor_not_found',
      anchor: src('nope'),
    });
    expect(await store.cancelPendingTurnInputSuffix('s', idt(foreign.inputId))).toEqual({
      outcome: 'anchor_not_found',
      anchor: idt(foreign.inputId),
    });
    expect(await store.cancelPendingTurnInputSuffix('s', src('foreign'))).toEqual({
      outcome: 'anchor_not_found',
      anchor: src('foreign'),
    });
    expect(await store.listPendingTurnInputs('s')).toEqual([a, bb]);
    expect(await store.listPendingTurnInputs('other')).toEqual([foreign]);
  });

  // ------------------------------------------------------------------ identifier isolation (2.3, 10.3)

  test('identifiers that would collide under naive key building name different sessions and rows', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const pairs: Array<[string, string]> = [
      ['a:b', 'a%3Ab'],
      ['{s}', 's'],
      ['a}:x', 'a'],
      ['user:42/a b', 'user%3A42%2Fa%20b'],
      ['x:inputs', 'x'],
      ['ünï', '%C3%BCn%C3%AF'],
    ];
    for (const [one, two] of pairs) {
      const r1 = await store.enqueuePendingTurnInput({
        sessionId: one,
        inputId: 'i:1',
        sourceKey: 'k:1',
        ingress: { scope: 'active_turn', turnId: 't:1' },
        input: 1,
      });
      const r2 = await store.enqueuePendingTurnInput({
        sessionId: two,
        inputId: 'i:1',
        sourceKey: 'k:1',
        ingress: { scope: 'active_turn', turnId: 't:1' },
        input: 2,
      });
      expect(r1.enqueueSeq).toBe(1);
      expect(r2.enqueueSeq).toBe(1);
      expect(await store.listPendingTurnInputs(one)).toEqual([r1]);
      expect(await store.listPendingTurnInputs(two)).toEqual([r2]);
      const l1 = await acquire(store, one, O('w'));
      const l2 = await acquire(store, two, O('w'));
      expect([l1.fencingToken, l2.fencingToken]).toEqual([1, 1]);
      expect(await store.cancelPendingTurnInput(one, 'i:1')).toMatchObject({ outcome: 'cancelled' });
      expect(await store.listPendingTurnInputs(two)).toEqual([r2]);
      const k = await claimActive(store, l2, 't:1', 'after_work');
      expect(k!.inputs).toEqual([{ ...r2, state: 'accepted' }]);
    }
    // Within one session: ids, source keys and turn ids that differ only by encoding stay apart.
    const x = await enqueue(store, 'one', at('t:1', undefined, 'x', { inputId: 'i:1', sourceKey: 'k:1' }));
    const y = await enqueue(store, 'one', at('t%3A1', undefined, 'y', { inputId: 'i%3A1', sourceKey: 'k%3A1' }));
    expect(y.inputId).not.toBe(x.inputId);
    const lease = await acquire(store, 'one');
    const k = await claimActive(store, lease, 't%3A1', 'after_work');
    expect(ids(k!.inputs)).toEqual([y.inputId]);
    expect(await store.listPendingTurnInputs('one')).toEqual([x]);
    expect(await store.cancelPendingTurnInputs('one', [src('k:1')])).toMatchObject([
      { outcome: { outcome: 'cancelled', input: { inputId: 'i:1' } } },
    ]);
  });

  // ------------------------------------------------------------------ vacuum (3.6, 8.3)

  test('vacuum({ olderThanMs: 0 }) removes tombstones; their ids and source keys become free', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const c = await enqueue(store, 's', at('t', undefined, 'cancel me', { sourceKey: 'kc', inputId: 'in-c' }));
    const d = await enqueue(store, 's', nt('complete me', { sourceKey: 'kd' }));
    expect(await completeAllNext(store, 's')).toEqual([d.inputId]);
    const live = await enqueue(store, 's', nt('still pending', { sourceKey: 'kl' }));
    await store.cancelPendingTurnInput('s', c.inputId);
    const otherTomb = await enqueue(store, 'other', nt('other'));
    await store.cancelPendingTurnInput('other', otherTomb.inputId);

    // Too young for a 1-minute cutoff.
    expect(await store.vacuum({ olderThanMs: 60_000 })).toEqual({ removedPendingTurnInputTombstones: 0 });
    expect(await store.cancelPendingTurnInput('s', c.inputId)).toMatchObject({ outcome: 'already_cancelled' });

    expect(await store.vacuum({ olderThanMs: 0 })).toEqual({ removedPendingTurnInputTombstones: 3 });
    expect(await store.vacuum({ olderThanMs: 0 })).toEqual({ removedPendingTurnInputTombstones: 0 });

    // Gone: cancel answers not_found, a suffix anchored on it answers anchor_not_found.
    expect(await store.cancelPendingTurnInput('s', c.inputId)).toEqual({ outcome: 'not_found' });
    expect(await store.cancelPendingTurnInputs('s', [src('kd')])).toEqual([
      { target: src('kd'), outcome: { outcome: 'not_found' } },
    ]);
    expect(await store.cancelPendingTurnInputSuffix('s', src('kc'))).toEqual({
      outcome: 'anchor_not_found',
      anchor: src('kc'),
    });
    // Non-terminal rows are untouched.
    expect(await store.listPendingTurnInputs('s')).toEqual([live]);

    // An identical enqueue creates a new row, new id, higher seq (never reused).
    const again = await enqueue(store, 's', nt('complete me', { sourceKey: 'kd' }));
    expect(again.inputId).not.toBe(d.inputId);
    expect(again.state).toBe('deferred_next_turn');
    expect(again.enqueueSeq).toBe(live.enqueueSeq + 1);
    // The explicit id and its source key are free again too.
    const cAgain = await enqueue(store, 's', at('t', undefined, 'different now', { sourceKey: 'kc', inputId: 'in-c' }));
    expect(cAgain.inputId).toBe('in-c');
    expect(cAgain.enqueueSeq).toBe(again.enqueueSeq + 1);
    expect(cAgain.state).toBe('pending_active');
    expect(ids(await store.listPendingTurnInputs('s'))).toEqual([live.inputId, again.inputId, 'in-c']);
  });

  test('vacuum() defaults to tombstoneRetentionMs (7 days unless configured)', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const r = await enqueue(store, 's', nt('x'));
    await store.cancelPendingTurnInput('s', r.inputId);
    expect(await store.vacuum()).toEqual({ removedPendingTurnInputTombstones: 0 });
    expect(await store.vacuum({})).toEqual({ removedPendingTurnInputTombstones: 0 });
    expect(await store.cancelPendingTurnInput('s', r.inputId)).toMatchObject({ outcome: 'already_cancelled' });

    const { store: zero } = await b.fresh(ctx, { tombstoneRetentionMs: 0 });
    const z = await enqueue(zero, 's', nt('x'));
    await zero.cancelPendingTurnInput('s', z.inputId);
    expect(await zero.vacuum()).toEqual({ removedPendingTurnInputTombstones: 1 });
    expect(await zero.cancelPendingTurnInput('s', z.inputId)).toEqual({ outcome: 'not_found' });
  });

  test('vacuum age is measured from the terminal time: removed once age >= olderThanMs', async (ctx) => {
    const { store, advance } = await b.fresh(ctx, { tombstoneRetentionMs: b.name === 'memory' ? 10_000 : 300 });
    const r = await enqueue(store, 's', nt('x'));
    await advance(b.name === 'memory' ? 50_000 : 350); // enqueue time does not count, only the cancel time
    await store.cancelPendingTurnInput('s', r.inputId);
    if (b.name === 'memory') {
      await advance(9_999);
      expect(await store.vacuum()).toEqual({ removedPendingTurnInputTombstones: 0 });
      await advance(1);
      expect(await store.vacuum()).toEqual({ removedPendingTurnInputTombstones: 1 });
    } else {
      expect(await store.vacuum()).toEqual({ removedPendingTurnInputTombstones: 0 });
      await advance(350);
      expect(await store.vacuum()).toEqual({ removedPendingTurnInputTombstones: 1 });
    }
  });

  // ------------------------------------------------------------------ fresh copies (2.5)

  test('returned rows are fresh copies; mutating results or arguments afterwards never changes stored state', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const input = { text: 'original', nested: { list: [1, 2] } };
    const d = { sessionId: 's', sourceKey: 'k', ingress: { scope: 'next_turn' as const }, input };
    const row = await store.enqueuePendingTurnInput(d);
    const snapshot = structuredClone(row);
    input.text = 'mutated';
    input.nested.list.push(3);
    row.state = 'cancelled';
    (row.input as { text: string }).text = 'mutated-result';
    row.ingress = { scope: 'active_turn', turnId: 'x' };

    const listed = await store.listPendingTurnInputs('s');
    expect(listed).toEqual([snapshot]);
    (listed[0]!.input as { nested: { list: number[] } }).nested.list.length = 0;
    expect(await store.listPendingTurnInputs('s')).toEqual([snapshot]);

    const replay = await store.enqueuePendingTurnInput({ ...d, input: { text: 'original', nested: { list: [1, 2] } } });
    expect(replay).toEqual(snapshot);

    const target = src('k');
    const [res] = await store.cancelPendingTurnInputs('s', [target]);
    target.value = 'mutated';
    expect(res!.target).toEqual(src('k'));
    if (res!.outcome.outcome === 'cancelled') (res!.outcome.input.input as { text: string }).text = 'mutated';
    expect(await store.cancelPendingTurnInput('s', snapshot.inputId)).toEqual({
      outcome: 'already_cancelled',
      input: { ...snapshot, state: 'cancelled' },
    });
  });

  test('claim results are fresh copies', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const row = await enqueue(store, 's', nt('x'));
    const lease = await acquire(store, 's');
    const claim = await claimNext(store, lease);
    const completion = claimCompletion(claim!);
    (claim!.inputs[0]!.input as { text: string }).text = 'mutated';
    claim!.inputs[0]!.state = 'completed';
    await store.releaseSessionExecutionLease(leaseCompletion(lease));
    expect(await store.listPendingTurnInputs('s')).toEqual([row]);
    expect(completion.inputIds).toEqual([row.inputId]);
  });
});
