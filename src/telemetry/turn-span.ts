/**
 * The worker helper's turn span (SPEC 17.2): `redis-turn-store.turn`, a CONSUMER span with
 * `messaging.operation.type: process` around one wake-up's work (lease, claims, runTurn, commit).
 * The claims made inside it add links to the enqueue spans of the inputs they return (the trace
 * context each input carries), so a trace backend shows which enqueues a turn consumed.
 */
import type { Attributes, SpanKind } from '@opentelemetry/api';
import { isStoreError } from '../contract/errors.js';
import { telemetryOf, turnSpanKeyOf } from './instrument-store.js';

export function traceTurn<T>(store: unknown, sessionId: unknown, run: () => Promise<T>): Promise<T> {
  const tel = telemetryOf(store);
  if (tel === undefined) return run();
  const tracer = tel.tracer();
  const instruments = tel.instruments();
  if (tracer === undefined && instruments === undefined) return run();
  const { api } = tel;
  const started = performance.now();
  const attributes: Attributes = {
    ...tel.base,
    'messaging.operation.type': 'process',
    'messaging.operation.name': 'turn',
    'redis_turn_store.operation': 'turn',
  };
  tel.sessionAttributes(attributes, sessionId);
  const parent = api.context.active();
  const span = tracer?.startSpan(
    'redis-turn-store.turn',
    { kind: api.SpanKind.CONSUMER as SpanKind, attributes },
    parent,
  );
  const done = (outcome: string | undefined, error: unknown, failed: boolean) => {
    const attrs: Attributes = { ...tel.base, 'redis_turn_store.operation': 'turn' };
    if (failed) attrs['error.type'] = isStoreError(error) ? error.code : ((error as Error)?.name ?? 'Error');
    else if (outcome !== undefined) attrs['redis_turn_store.outcome'] = outcome;
    instruments?.duration.record((performance.now() - started) / 1000, attrs);
    if (span === undefined) return;
    if (failed) {
      span.setAttribute('error.type', attrs['error.type'] as string);
      span.setStatus({ code: api.SpanStatusCode.ERROR, message: (error as Error)?.message });
    } else if (outcome !== undefined) span.setAttribute('redis_turn_store.outcome', outcome);
    span.end();
  };
  const ctx = span === undefined ? parent : api.trace.setSpan(parent, span).setValue(turnSpanKeyOf(api), span);
  let p: Promise<T>;
  try {
    p = api.context.with(ctx, run);
  } catch (e) {
    p = Promise.reject(e);
  }
  return p.then(
    (r) => {
      const o =
        (r as { outcome?: unknown; generation?: unknown; failedInputIds?: unknown; inputIds?: unknown } | undefined) ??
        {};
      // A failed run (SPEC 11.1) reports the inputs that ran out of attempts and are now `failed`.
      if (Array.isArray(o.failedInputIds)) tel.count('failed', o.failedInputIds.length);
      // An interrupted run (SPEC 3.9) reports the inputs its claims held.
      if (o.outcome === 'interrupted' && Array.isArray(o.inputIds)) tel.count('interrupted', o.inputIds.length);
      if (span !== undefined && typeof o.generation === 'number') {
        span.setAttribute('redis_turn_store.fencing_token', o.generation);
      }
      done(typeof o.outcome === 'string' ? o.outcome : undefined, undefined, false);
      return r;
    },
    (e: unknown) => {
      done(undefined, e, true);
      throw e;
    },
  );
}
