/**
 * An OpenTelemetry SDK for tests: an in-memory span exporter and a metric reader collected on
 * demand, given to a store through its `telemetry` option (no global providers), plus the
 * AsyncLocalStorage context manager, registered globally once (span parenthood across awaits).
 */
import { context } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { type DataPoint, MeterProvider, MetricReader, type ResourceMetrics } from '@opentelemetry/sdk-metrics';
import { InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';

let contextManagerSet = false;

class TestMetricReader extends MetricReader {
  protected async onForceFlush(): Promise<void> {}
  protected async onShutdown(): Promise<void> {}
}

export interface TestOtel {
  tracerProvider: TracerProvider;
  meterProvider: MeterProvider;
  exporter: InMemorySpanExporter;
  spans(name?: string): ReadableSpan[];
  /** Collects every instrument now; the sum (counters) or last value (gauges) per metric name, over all attribute sets. */
  metrics(): Promise<Map<string, { total: number; points: DataPoint<unknown>[] }>>;
  shutdown(): Promise<void>;
}

export function testOtel(): TestOtel {
  if (!contextManagerSet) {
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    contextManagerSet = true;
  }
  const exporter = new InMemorySpanExporter();
  const tracerProvider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] });
  const reader = new TestMetricReader();
  const meterProvider = new MeterProvider({ readers: [reader] });
  return {
    tracerProvider,
    meterProvider,
    exporter,
    spans: (name) => exporter.getFinishedSpans().filter((s) => name === undefined || s.name === name),
    async metrics() {
      const { resourceMetrics } = (await reader.collect()) as { resourceMetrics: ResourceMetrics };
      const out = new Map<string, { total: number; points: DataPoint<unknown>[] }>();
      for (const scope of resourceMetrics.scopeMetrics) {
        for (const m of scope.metrics) {
          const points = m.dataPoints as DataPoint<unknown>[];
          let total = 0;
          for (const p of points)
            total += typeof p.value === 'number' ? p.value : ((p.value as { count?: number }).count ?? 0);
          out.set(m.descriptor.name, { total, points });
        }
      }
      return out;
    },
    async shutdown() {
      await tracerProvider.shutdown();
      await meterProvider.shutdown();
    },
  };
}
