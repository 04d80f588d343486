/**
 * SPEC 17, on both backends: spans per store operation with their attributes, the enqueue span's
 * trace context stored with the input and exposed on claims, counters after a scripted workload,
 * and stats() against a known state. The SDK is the OpenTelemetry SDK with an in-memory span
 * exporter and a metric reader (test/support/otel.ts), given through the `telemetry` option.
 */
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { expect, test } from 'vitest';
import { leaseFence } from '../../src/core/projections.js';
import { testOtel } from '../support/otel.js';
import { describeBackends } from './backends.js';
import { acquire, at, claimNext, enqueue, expectStoreError, minimalCommit, nt, O, sid } from './fixtures.js';

describeBackends('telemetry', (b) => {
  test('a span per operation, named redis-turn-store.<operation>, with messaging and store attributes', async (ctx) => {
    const otel = testOtel();
    const { store } = await b.fresh(ctx, {
      telemetry: { tracerProvider: otel.tracerProvider, meterProvider: otel.meterProvider, sessionId: 'raw' },
    });
    const s = sid('spans');
    const row = await enqueue(store, s, nt('hello'));
    const lease = await acquire(store, s);
    const claim = await claimNext(store, lease);
    expect(claim?.inputs).toHaveLength(1);
    await store.session(s).commitRuntimeState(minimalCommit(lease, claim ? [claim] : []));

    const [enq] = otel.spans('redis-turn-store.enqueuePendingTurnInput');
    expect(enq.kind).toBe(SpanKind.PRODUCER);
    expect(enq.attributes).toMatchObject({
      'messaging.system': 'redis-turn-store',
      'messaging.operation.type': 'send',
      'messaging.operation.name': 'enqueuePendingTurnInput',
      'messaging.message.id': row.inputId,
      'redis_turn_store.operation': 'enqueuePendingTurnInput',
      'redis_turn_store.session.id': s,
      'redis_turn_store.input.count': 1,
    });
    const [lease1] = otel.spans('redis-turn-store.tryClaimSessionExecutionLease');
    expect(lease1.attributes).toMatchObject({
      'redis_turn_store.outcome': 'acquired',
      'redis_turn_store.fencing_token': lease.fencingToken,
    });
    const [cl] = otel.spans('redis-turn-store.claimNextTurnInputs');
    expect(cl.attributes).toMatchObject({
      'messaging.operation.type': 'receive',
      'redis_turn_store.outcome': 'claimed',
      'redis_turn_store.input.count': 1,
      'messaging.batch.message_count': 1,
      'redis_turn_store.fencing_token': lease.fencingToken,
    });
    // The claim's span links to the enqueue span of the input it received.
    expect(cl.links.map((l) => l.context.spanId)).toEqual([enq.spanContext().spanId]);
    const [commit] = otel.spans('redis-turn-store.commitRuntimeState');
    expect(commit.attributes).toMatchObject({
      'messaging.operation.type': 'settle',
      'redis_turn_store.session.id': s,
      'redis_turn_store.input.count': 1,
      'redis_turn_store.fencing_token': lease.fencingToken,
    });

    // A refused call: an error span with the store's error code.
    await expectStoreError(
      store.renewSessionExecutionLease({ ...leaseFence(lease), leaseToken: 'stale' }, 1000),
      'SessionExecutionLeaseExpired',
    );
    const [renew] = otel.spans('redis-turn-store.renewSessionExecutionLease');
    expect(renew.status.code).toBe(SpanStatusCode.ERROR);
    expect(renew.attributes['error.type']).toBe('SessionExecutionLeaseExpired');
    await otel.shutdown();
  });

  test('the enqueue span’s W3C trace context travels in the input record and comes back on claims', async (ctx) => {
    const otel = testOtel();
    const { store } = await b.fresh(ctx, { telemetry: { tracerProvider: otel.tracerProvider } });
    const s = sid('trace');
    await enqueue(store, s, nt('a'));
    const [enq] = otel.spans('redis-turn-store.enqueuePendingTurnInput');
    const sc = enq.spanContext();
    const expected = `00-${sc.traceId}-${sc.spanId}-01`;
    const [listed] = await store.listPendingTurnInputs(s);
    expect(listed.traceContext).toEqual({ traceparent: expected });
    const claim = await claimNext(store, await acquire(store, s));
    expect(claim?.inputs[0].traceContext).toEqual({ traceparent: expected });
    // A claim passed back whole (with traceContext on its inputs) is accepted.
    if (claim) await store.abandonTurnInputClaim(claim);
    await otel.shutdown();
  });

  test('no SDK: no spans, nothing added to the input (no traceContext)', async (ctx) => {
    // No provider given and none registered globally: the store records nothing.
    const { store } = await b.fresh(ctx);
    const s = sid('nosdk');
    const row = await enqueue(store, s, nt('a'));
    expect('traceContext' in row).toBe(false);
    const [listed] = await store.listPendingTurnInputs(s);
    expect('traceContext' in listed).toBe(false);
  });

  test("session ids are hashed by default and left out with sessionId: 'omit'", async (ctx) => {
    const otel = testOtel();
    const hashed = await b.fresh(ctx, { telemetry: { tracerProvider: otel.tracerProvider } });
    await enqueue(hashed.store, 'user-42', nt('a'));
    const [h] = otel.spans();
    expect(h.attributes['redis_turn_store.session.id']).toBeUndefined();
    expect(h.attributes['redis_turn_store.session.id_hash']).toMatch(/^[0-9a-f]{16}$/);
    expect(JSON.stringify(h.attributes)).not.toContain('user-42');
    otel.exporter.reset();
    const omitted = await b.fresh(ctx, { telemetry: { tracerProvider: otel.tracerProvider, sessionId: 'omit' } });
    await enqueue(omitted.store, 'user-43', nt('a'));
    const [o] = otel.spans();
    expect(Object.keys(o.attributes).filter((k) => k.startsWith('redis_turn_store.session'))).toEqual([]);
    await otel.shutdown();
  });

  test('counters and the duration histogram after a scripted workload', async (ctx) => {
    const otel = testOtel();
    const { store } = await b.fresh(ctx, { telemetry: { meterProvider: otel.meterProvider } });
    const s = sid('counters');
    await enqueue(store, s, nt('a', { sourceKey: 'k1' }));
    await enqueue(store, s, nt('a', { sourceKey: 'k1' })); // a replay: not counted
    await enqueue(store, s, nt('b'));
    const c = await enqueue(store, s, nt('c'));
    await store.cancelPendingTurnInput(s, c.inputId);
    const lease = await acquire(store, s);
    const claim = await claimNext(store, lease);
    expect(claim?.inputs).toHaveLength(2);
    // A stale head revision, then a stale fence.
    await expectStoreError(
      store.session(s).commitRuntimeState(minimalCommit(lease, [], { expectedHeadRevision: 5 })),
      'HeadRevisionConflict',
    );
    await expectStoreError(
      store.renewSessionExecutionLease({ ...leaseFence(lease), fencingToken: lease.fencingToken + 1 }, 1000),
      'SessionExecutionLeaseExpired',
    );
    await store.session(s).commitRuntimeState(minimalCommit(lease, claim ? [claim] : []));

    const m = await otel.metrics();
    const total = (name: string) => m.get(name)?.total ?? 0;
    expect(total('redis_turn_store.inputs.enqueued')).toBe(3);
    expect(total('redis_turn_store.inputs.cancelled')).toBe(1);
    expect(total('redis_turn_store.inputs.claimed')).toBe(2);
    expect(total('redis_turn_store.inputs.completed')).toBe(2);
    expect(total('redis_turn_store.commit.head_revision_conflicts')).toBe(1);
    expect(total('redis_turn_store.fence.rejections')).toBe(1);
    // One duration measurement per call: 4 enqueues, cancel, lease, claim, 2 commits, renew.
    expect(total('redis_turn_store.operation.duration')).toBe(10);
    const refused = m
      .get('redis_turn_store.operation.duration')
      ?.points.find((p) => p.attributes['error.type'] === 'HeadRevisionConflict');
    expect(refused?.attributes['redis_turn_store.operation']).toBe('commitRuntimeState');
    await otel.shutdown();
  });

  test('a fresh acquisition reports the stranded inputs T9 moved (requeuedTurnInputs), and they are counted', async (ctx) => {
    const otel = testOtel();
    const { store } = await b.fresh(ctx, { telemetry: { meterProvider: otel.meterProvider } });
    const s = sid('requeued');
    const fresh = await store.tryClaimSessionExecutionLease(s, O('w'), 30_000);
    if (fresh.outcome !== 'acquired') throw new Error('lease');
    expect(fresh).not.toHaveProperty('requeuedTurnInputs');
    const first = fresh.lease;
    // Active input enqueued under generation 1, which ends without admitting it.
    await enqueue(store, s, at('t1', 'after_work'));
    await enqueue(store, s, at('t1', 'before_completion'));
    await store.releaseSessionExecutionLease(leaseFence(first));
    const again = await store.tryClaimSessionExecutionLease(s, O('w'), 30_000);
    expect(again).toMatchObject({ outcome: 'acquired', requeuedTurnInputs: 2 });
    const m = await otel.metrics();
    expect(m.get('redis_turn_store.inputs.requeued')?.total).toBe(2);
    await otel.shutdown();
  });

  test('stats() and its gauges against a known state', async (ctx) => {
    const otel = testOtel();
    const { store, advance } = await b.fresh(ctx, { telemetry: { meterProvider: otel.meterProvider } });
    const empty = await store.stats();
    expect(empty).toMatchObject({
      sessionsWithPendingInput: 0,
      pendingInputs: 0,
      oldestPendingInputAgeMs: 0,
      liveLeases: 0,
      stalledClaims: 0,
    });

    const a = sid('stats-a');
    const bb = sid('stats-b');
    await enqueue(store, a, nt('a1'));
    await enqueue(store, a, nt('a2'));
    await enqueue(store, bb, nt('b1'));
    const lease = await acquire(store, bb, O('w'));
    // A claim with a 1 ms stall deadline: once it passes, the claim is stalled (the lease stays live).
    const claim = await claimNext(store, lease, { leaseTtlMs: 1 });
    expect(claim?.inputs).toHaveLength(1);
    await enqueue(store, bb, nt('b2'));
    await advance(30);

    const st = await store.stats();
    expect(st).toMatchObject({ sessionsWithPendingInput: 2, pendingInputs: 3, liveLeases: 1, stalledClaims: 1 });
    expect(st.oldestPendingInputAgeMs).toBeGreaterThanOrEqual(30);
    expect(st.oldestPendingInputAgeMs).toBeLessThan(10_000);
    expect(st.atEpochMs).toBeGreaterThan(0);

    const m = await otel.metrics();
    expect(m.get('redis_turn_store.sessions.pending')?.total).toBe(2);
    expect(m.get('redis_turn_store.inputs.pending')?.total).toBe(3);
    expect(m.get('redis_turn_store.leases.live')?.total).toBe(1);
    expect(m.get('redis_turn_store.claims.stalled')?.total).toBe(1);
    expect(m.get('redis_turn_store.inputs.oldest_pending_age')?.total).toBeGreaterThanOrEqual(0.03);

    // Completing the claim and cancelling the rest empties the figures again.
    if (claim)
      await store
        .session(bb)
        .commitRuntimeState(minimalCommit(lease, [claim], { releaseSessionExecutionLease: leaseFence(lease) }));
    for (const s of [a, bb])
      for (const r of await store.listPendingTurnInputs(s)) await store.cancelPendingTurnInput(s, r.inputId);
    expect(await store.stats()).toMatchObject({
      sessionsWithPendingInput: 0,
      pendingInputs: 0,
      liveLeases: 0,
      stalledClaims: 0,
    });
    await otel.shutdown();
  });
});
