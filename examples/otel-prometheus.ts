/**
 * Wiring OpenTelemetry into redis-turn-store with a Prometheus exporter (README "Observability").
 * Run from a clone: `npx tsx examples/otel-prometheus.ts` or build it with the tests' tsconfig;
 * test/dispatch/otel-example.test.ts runs `startObservedStore` and scrapes its /metrics.
 *
 * In an app, import from 'redis-turn-store' instead of '../src/index.js', and install
 * `@opentelemetry/api` with the SDK packages below.
 */
import { context, metrics, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { BatchSpanProcessor, ConsoleSpanExporter, TracerProvider } from '@opentelemetry/sdk-trace';
import { createRedisRuntimeStore, type RuntimeStore } from '../src/index.js';

export interface ObservedStore {
  store: RuntimeStore;
  /** Where Prometheus scrapes: http://<host>:<port>/metrics */
  metricsUrl: string;
  shutdown(): Promise<void>;
}

export async function startObservedStore(options: {
  redisUrl?: string;
  keyPrefix?: string;
  port?: number;
  /** Print finished spans (a real app exports them with OTLP instead). */
  printSpans?: boolean;
}): Promise<ObservedStore> {
  // 1. Context propagation across awaits, so store calls nest under the caller's spans.
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  // 2. Metrics: a Prometheus pull endpoint (default port 9464, path /metrics).
  const port = options.port ?? 9464;
  const exporter = new PrometheusExporter({ host: '127.0.0.1', port });
  const meterProvider = new MeterProvider({ readers: [exporter] });
  metrics.setGlobalMeterProvider(meterProvider);
  // 3. Traces: any span processor and exporter (OTLP in production).
  const tracerProvider = new TracerProvider({
    spanProcessors: options.printSpans ? [new BatchSpanProcessor({ exporter: new ConsoleSpanExporter() })] : [],
  });
  trace.setGlobalTracerProvider(tracerProvider);
  // 4. The store: it finds the global providers by itself; session ids are hashed on spans by default.
  const store = await createRedisRuntimeStore({
    redis: options.redisUrl,
    keyPrefix: options.keyPrefix ?? 'rts',
    idleDispatch: false,
    telemetry: { sessionId: 'hashed' },
  });
  return {
    store,
    metricsUrl: `http://127.0.0.1:${port}/metrics`,
    async shutdown() {
      await store.close();
      await meterProvider.shutdown(); // also stops the exporter's HTTP server
      await tracerProvider.shutdown();
      metrics.disable();
      trace.disable();
      context.disable();
    },
  };
}

// Run directly: admit one input, then serve /metrics until Ctrl-C.
if (import.meta.url === `file://${process.argv[1]}`) {
  const observed = await startObservedStore({ redisUrl: process.env.REDIS_URL, printSpans: true });
  await observed.store.enqueuePendingTurnInput({ sessionId: 's1', ingress: { scope: 'next_turn' }, input: { text: 'hi' } });
  console.log(`metrics at ${observed.metricsUrl}`);
  process.once('SIGINT', () => void observed.shutdown());
}
