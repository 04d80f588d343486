/**
 * The optional peer `@opentelemetry/api`, loaded with a dynamic import that tolerates its absence
 * (SPEC 17.1). `loadOtelApi()` starts the import once; `otelApiIfLoaded()` answers synchronously:
 * the module, `null` when it is not installed, `undefined` while the import is still running.
 */
import type * as OtelApiModule from '@opentelemetry/api';

export type OtelApi = typeof OtelApiModule;

// A variable specifier: bundlers and TypeScript leave it alone, so the peer stays optional.
const SPECIFIER = '@opentelemetry/api';

let loaded: OtelApi | null | undefined;
let loading: Promise<OtelApi | null> | undefined;

export function loadOtelApi(): Promise<OtelApi | null> {
  loading ??= (import(SPECIFIER) as Promise<OtelApi>).then(
    (m) => {
      loaded = m;
      return m;
    },
    () => {
      loaded = null;
      return null;
    },
  );
  return loading;
}

export function otelApiIfLoaded(): OtelApi | null | undefined {
  return loaded;
}
