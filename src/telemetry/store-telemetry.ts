/**
 * Per-store OpenTelemetry state (SPEC 17): which tracer and instruments are in force right now.
 * Both are looked up per call and cached by provider identity, so an SDK registered after the
 * store was made is picked up, and with none registered (the global providers are OpenTelemetry's
 * no-ops) `tracer()` and `instruments()` return undefined and the decorator calls straight through.
 */
import { createHash } from 'node:crypto';
import type { Attributes, BatchObservableCallback, Meter, ProxyTracerProvider, Tracer } from '@opentelemetry/api';
import type { StoreStats, TelemetryOptions } from '../contract/types.js';
import { createInstruments, GAUGES, type Instruments } from './instruments.js';
import type { OtelApi } from './otel-api.js';

export const INSTRUMENTATION_NAME = 'redis-turn-store';
export const MESSAGING_SYSTEM = 'redis-turn-store';

interface MeterState {
  provider: unknown;
  meter?: Meter;
  instruments?: Instruments;
  callback?: BatchObservableCallback;
}

export class StoreTelemetry {
  private tracerState: { delegate: unknown; tracer: Tracer | undefined } | undefined;
  private meterState: MeterState | undefined;
  private readonly noopDelegate: unknown;
  private closed = false;
  /** Base attributes of every span and measurement of this store. */
  readonly base: Attributes;

  constructor(
    readonly api: OtelApi,
    private readonly options: TelemetryOptions,
    destination: string,
    /** Feeds the gauges (the undecorated store's stats). */
    private readonly stats: () => Promise<StoreStats>,
  ) {
    this.noopDelegate = new api.ProxyTracerProvider().getDelegate();
    this.base = { 'messaging.system': MESSAGING_SYSTEM, 'messaging.destination.name': destination };
  }

  tracer(): Tracer | undefined {
    const given = this.options.tracerProvider;
    const delegate =
      given ?? (this.api.trace.getTracerProvider() as ProxyTracerProvider).getDelegate?.() ?? this.noopDelegate;
    const state = this.tracerState;
    if (state !== undefined && state.delegate === delegate) return state.tracer;
    const tracer =
      delegate === this.noopDelegate
        ? undefined
        : ((given as { getTracer(n: string): Tracer } | undefined)?.getTracer(INSTRUMENTATION_NAME) ??
          this.api.trace.getTracer(INSTRUMENTATION_NAME));
    this.tracerState = { delegate, tracer };
    return tracer;
  }

  instruments(): Instruments | undefined {
    const provider = this.options.meterProvider ?? this.api.metrics.getMeterProvider();
    const state = this.meterState;
    if (state !== undefined && state.provider === provider) return state.instruments;
    this.unregisterGauges();
    const meter = (provider as { getMeter(n: string): Meter }).getMeter(INSTRUMENTATION_NAME);
    const next: MeterState = { provider };
    if (meter !== this.api.createNoopMeter() && !this.closed) {
      next.meter = meter;
      next.instruments = createInstruments(meter);
      next.callback = (result) => this.observeGauges(result, next.instruments as Instruments);
      meter.addBatchObservableCallback(next.callback, next.instruments.gauges);
    }
    this.meterState = next;
    return next.instruments;
  }

  private async observeGauges(result: Parameters<BatchObservableCallback>[0], instruments: Instruments): Promise<void> {
    if (this.closed) return;
    let s: StoreStats;
    try {
      s = await this.stats();
    } catch {
      return; // a closed store or an unreachable Redis: no figures this collection
    }
    const keys = Object.keys(GAUGES) as (keyof typeof GAUGES)[];
    keys.forEach((key, i) => {
      const value = key === 'oldestPendingInputAgeMs' ? s[key] / 1000 : s[key];
      result.observe(instruments.gauges[i], value, this.base);
    });
  }

  private unregisterGauges(): void {
    const state = this.meterState;
    if (state?.meter && state.callback && state.instruments) {
      state.meter.removeBatchObservableCallback(state.callback, state.instruments.gauges);
    }
  }

  /** The store closed: its gauges stop reporting. */
  close(): void {
    this.closed = true;
    this.unregisterGauges();
  }

  /** The session-id attribute as configured (SPEC 17.2): raw, hashed, or none. */
  sessionAttributes(attrs: Attributes, sessionId: unknown): void {
    if (typeof sessionId !== 'string') return;
    const mode = this.options.sessionId ?? 'hashed';
    if (mode === 'raw') attrs['redis_turn_store.session.id'] = sessionId;
    else if (mode === 'hashed') {
      attrs['redis_turn_store.session.id_hash'] = createHash('sha256').update(sessionId).digest('hex').slice(0, 16);
    }
  }

  /** Adds `n` to a counter, when metrics are in force. */
  count(name: keyof Instruments['counters'], n = 1, attrs?: Attributes): void {
    if (n <= 0) return;
    this.instruments()?.counters[name].add(n, attrs ?? this.base);
  }
}
