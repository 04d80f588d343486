/**
 * The telemetry decorator (SPEC 17): one Proxy over a RuntimeStore (and over each session facade
 * it hands out) that gives every store operation a span `redis-turn-store.<operation>` and a
 * duration measurement, and counts inputs by outcome. The backends stay unaware of OpenTelemetry,
 * except for the one internal entry ENQUEUE_TRACED, which stores the enqueue span's W3C trace
 * context in the input's record.
 *
 * With no SDK registered (and no provider in the options) each call costs two provider lookups
 * and goes straight to the store; with `@opentelemetry/api` absent the store is not wrapped.
 */
import type { Attributes, Context, Link, Span, SpanContext, SpanKind } from '@opentelemetry/api';
import { isStoreError } from '../contract/errors.js';
import type {
  PendingTurnInput,
  PendingTurnInputCancelOutcome,
  PendingTurnInputCancelResult,
  PendingTurnInputDraft,
  PendingTurnInputSuffixCancelOutcome,
  RuntimeCommit,
  RuntimeStore,
  SessionCommitStore,
  StoreStats,
  TelemetryOptions,
  TurnInputClaim,
} from '../contract/types.js';
import type { Instruments } from './instruments.js';
import { ENQUEUE_TRACED, type TracedEnqueue } from './internal.js';
import { loadOtelApi, type OtelApi, otelApiIfLoaded } from './otel-api.js';
import { StoreTelemetry } from './store-telemetry.js';
import { parseTraceContext, toTraceContext } from './trace-context.js';

/** The store's StoreTelemetry, read through the proxy (the worker helper's turn span uses it). */
export const TELEMETRY: unique symbol = Symbol.for('redis-turn-store.telemetry');

type Args = unknown[];
type Counters = Instruments['counters'];

interface Op {
  type?: 'send' | 'receive' | 'settle';
  producer?: boolean;
  session?: (a: Args) => unknown;
  fencing?: (a: Args, r: unknown) => unknown;
  count?: (a: Args, r: unknown) => number | undefined;
  outcome?: (r: unknown) => string | undefined;
  counts?: (c: Counters, a: Args, r: unknown, attrs: Attributes) => void;
  /** Inputs whose enqueue spans this operation's span links to (claims). */
  links?: (r: unknown) => PendingTurnInput[] | undefined;
}

const first = (a: Args) => a[0];
const firstSession = (a: Args) => (a[0] as { sessionId?: unknown } | undefined)?.sessionId;
const claimInputs = (r: unknown) => (r as TurnInputClaim | null)?.inputs;
const cancelledIn = (outcomes: PendingTurnInputCancelOutcome[]) =>
  outcomes.filter((o) => o.outcome === 'cancelled').length;

const leaseOutcome: Op = {
  session: first,
  fencing: (_a, r) => {
    const o = r as { lease?: { fencingToken: number }; holder?: { fencingToken: number } };
    return (o.lease ?? o.holder)?.fencingToken;
  },
  outcome: (r) => (r as { outcome: string }).outcome,
  // A fresh acquisition reports the stranded inputs T9 moved (SPEC 3.5).
  counts: (c, _a, r, attrs) => {
    const n = (r as { requeuedTurnInputs?: number }).requeuedTurnInputs;
    if (n !== undefined) c.requeued.add(n, attrs);
  },
};

const claim: Op = {
  type: 'receive',
  session: firstSession,
  fencing: (a) => (a[0] as { fence?: { fencingToken?: unknown } })?.fence?.fencingToken,
  count: (_a, r) => claimInputs(r)?.length ?? 0,
  outcome: (r) => (r === null ? 'empty' : 'claimed'),
  counts: (c, _a, r, attrs) => c.claimed.add(claimInputs(r)?.length ?? 0, attrs),
  links: claimInputs,
};

const STORE_OPS: Record<string, Op> = {
  tryClaimSessionExecutionLease: leaseOutcome,
  reclaimSessionExecutionLease: leaseOutcome,
  renewSessionExecutionLease: {
    session: firstSession,
    fencing: (a) => (a[0] as { fencingToken?: unknown })?.fencingToken,
  },
  releaseSessionExecutionLease: {
    session: firstSession,
    fencing: (a) => (a[0] as { fencingToken?: unknown })?.fencingToken,
  },
  enqueuePendingTurnInput: { type: 'send', producer: true, session: firstSession, count: () => 1 },
  listPendingTurnInputs: { session: first, count: (_a, r) => (r as unknown[]).length },
  cancelPendingTurnInput: {
    type: 'settle',
    session: first,
    count: () => 1,
    outcome: (r) => (r as PendingTurnInputCancelOutcome).outcome,
    counts: (c, _a, r, attrs) => c.cancelled.add(cancelledIn([r as PendingTurnInputCancelOutcome]), attrs),
  },
  cancelPendingTurnInputs: {
    type: 'settle',
    session: first,
    count: (a) => (a[1] as unknown[] | undefined)?.length,
    counts: (c, _a, r, attrs) =>
      c.cancelled.add(cancelledIn((r as PendingTurnInputCancelResult[]).map((x) => x.outcome)), attrs),
  },
  cancelPendingTurnInputSuffix: {
    type: 'settle',
    session: first,
    outcome: (r) => (r as PendingTurnInputSuffixCancelOutcome).outcome,
    counts: (c, _a, r, attrs) => {
      const s = r as PendingTurnInputSuffixCancelOutcome;
      if (s.outcome === 'outcomes') c.cancelled.add(cancelledIn(s.outcomes), attrs);
    },
  },
  claimNextTurnInputs: claim,
  claimActiveTurnInputs: claim,
  abandonTurnInputClaim: {
    type: 'settle',
    session: firstSession,
    fencing: (a) => (a[0] as TurnInputClaim | undefined)?.sessionLeaseGeneration,
    count: (a) => (a[0] as TurnInputClaim | undefined)?.inputs?.length,
    counts: (c, a, _r, attrs) => c.abandoned.add((a[0] as TurnInputClaim).inputs.length, attrs),
  },
  abandonTurnInputClaims: {
    type: 'settle',
    session: (a) => (a[0] as TurnInputClaim[] | undefined)?.[0]?.sessionId,
    count: (a) => (a[0] as TurnInputClaim[]).reduce((n, cl) => n + cl.inputs.length, 0),
    counts: (c, a, _r, attrs) =>
      c.abandoned.add(
        (a[0] as TurnInputClaim[]).reduce((n, cl) => n + cl.inputs.length, 0),
        attrs,
      ),
  },
  listFailedTurnInputs: { session: first, count: (_a, r) => (r as unknown[]).length },
  retryFailedTurnInputs: {
    type: 'settle',
    session: first,
    count: (a) => (a[1] as unknown[] | undefined)?.length,
  },
  vacuum: {},
  deleteSession: { session: first },
  stats: {},
};

const SESSION_OPS: Record<string, Op> = {
  commitRuntimeState: {
    type: 'settle',
    fencing: (a) => (a[0] as RuntimeCommit | undefined)?.sessionExecutionLease?.fencingToken,
    count: (a) => completedIn(a[0] as RuntimeCommit),
    counts: (c, a, _r, attrs) => c.completed.add(completedIn(a[0] as RuntimeCommit), attrs),
  },
  loadSession: {},
  loadNode: {},
  saveSessionMeta: {},
  loadSessionMeta: {},
  recordIntent: {},
  commitRefs: {},
  listUncommitted: {},
  forgetAgedUncommittedIntents: {},
  hasLiveRefForId: {},
  forget: {},
  holdsRef: {},
  listAllRefs: {},
};

function completedIn(commit: RuntimeCommit | undefined): number {
  let n = 0;
  for (const c of commit?.completedTurnInputClaims ?? []) {
    if (c.sessionId === commit?.sessionId || commit?.sessionId === undefined) n += c.inputIds?.length ?? 0;
  }
  return n;
}

/** The context key under which the worker helper's turn span waits for the claims' links. */
let turnSpanKey: symbol | undefined;
export function turnSpanKeyOf(api: OtelApi): symbol {
  turnSpanKey ??= api.createContextKey('redis-turn-store.turn-span');
  return turnSpanKey;
}

function linksOf(inputs: PendingTurnInput[] | undefined): Link[] {
  const links: Link[] = [];
  for (const input of inputs ?? []) {
    const context = parseTraceContext(input.traceContext);
    if (context) links.push({ context: context as SpanContext, attributes: { 'messaging.message.id': input.inputId } });
  }
  return links;
}

function addLinks(span: Span | undefined, links: Link[]): void {
  if (span === undefined || links.length === 0) return;
  const s = span as Span & { addLinks?: (l: Link[]) => unknown; addLink?: (l: Link) => unknown };
  if (typeof s.addLinks === 'function') s.addLinks(links);
  else if (typeof s.addLink === 'function') for (const l of links) s.addLink(l);
}

function errorType(e: unknown): string {
  if (isStoreError(e)) return e.code;
  return (e as { name?: unknown } | null)?.name === undefined ? 'Error' : String((e as Error).name);
}

/**
 * Runs one call of `op` on `target` with a span and measurements (SPEC 17.2, 17.3). `boundSession`:
 * the session id a facade is bound to.
 */
function traced(
  tel: StoreTelemetry,
  name: string,
  op: Op,
  args: Args,
  call: (span: Span | undefined) => Promise<unknown>,
  boundSession?: string,
): Promise<unknown> {
  const tracer = tel.tracer();
  const instruments = tel.instruments();
  if (tracer === undefined && instruments === undefined) return call(undefined);
  const { api } = tel;
  const started = performance.now();
  let span: Span | undefined;
  let parent: Context | undefined;
  if (tracer !== undefined) {
    const attributes: Attributes = {
      ...tel.base,
      'messaging.operation.name': name,
      'redis_turn_store.operation': name,
    };
    if (op.type) attributes['messaging.operation.type'] = op.type;
    try {
      tel.sessionAttributes(attributes, boundSession ?? op.session?.(args));
    } catch {
      // an argument the store will refuse: no session attribute
    }
    parent = api.context.active();
    span = tracer.startSpan(
      `redis-turn-store.${name}`,
      { kind: (op.producer ? api.SpanKind.PRODUCER : api.SpanKind.CLIENT) as SpanKind, attributes },
      parent,
    );
  }
  const finish = (result: unknown, error: unknown, failed: boolean) => {
    const attrs: Attributes = { ...tel.base, 'redis_turn_store.operation': name };
    if (failed) attrs['error.type'] = errorType(error);
    else {
      const outcome = op.outcome?.(result);
      if (outcome !== undefined) attrs['redis_turn_store.outcome'] = outcome;
    }
    if (instruments !== undefined) {
      instruments.duration.record((performance.now() - started) / 1000, attrs);
      const countAttrs = tel.base;
      if (failed) {
        if (isStoreError(error, 'SessionExecutionLeaseExpired')) instruments.counters.fenceRejections.add(1, attrs);
        if (isStoreError(error, 'HeadRevisionConflict')) instruments.counters.headRevisionConflicts.add(1, countAttrs);
      } else {
        op.counts?.(instruments.counters, args, result, countAttrs);
        if (name === 'enqueuePendingTurnInput' && (result as { created?: boolean }).created) {
          instruments.counters.enqueued.add(1, countAttrs);
        }
      }
    }
    if (span === undefined) return;
    try {
      if (failed) {
        span.setAttribute('error.type', attrs['error.type'] as string);
        span.setStatus({ code: api.SpanStatusCode.ERROR, message: (error as Error)?.message });
      } else {
        if (attrs['redis_turn_store.outcome'] !== undefined) {
          span.setAttribute('redis_turn_store.outcome', attrs['redis_turn_store.outcome'] as string);
        }
        const count = op.count?.(args, result);
        if (count !== undefined) {
          span.setAttribute('redis_turn_store.input.count', count);
          if (op.type === 'receive') span.setAttribute('messaging.batch.message_count', count);
        }
        const fencing = op.fencing?.(args, result);
        if (typeof fencing === 'number') span.setAttribute('redis_turn_store.fencing_token', fencing);
        if (name === 'enqueuePendingTurnInput') {
          span.setAttribute('messaging.message.id', (result as { input: PendingTurnInput }).input.inputId);
        }
        if (op.links) {
          const links = linksOf(op.links(result));
          addLinks(span, links);
          // Inside the worker helper's turn span: the turn links to the inputs it consumed.
          addLinks(parent?.getValue(turnSpanKeyOf(api)) as Span | undefined, links);
        }
      }
    } finally {
      span.end();
    }
  };
  let p: Promise<unknown>;
  try {
    p =
      span === undefined || parent === undefined
        ? call(span)
        : api.context.with(api.trace.setSpan(parent, span), () => call(span));
  } catch (e) {
    p = Promise.reject(e);
  }
  return p.then(
    (result) => {
      finish(result, undefined, false);
      return result;
    },
    (error: unknown) => {
      finish(undefined, error, true);
      throw error;
    },
  );
}

function wrapSession(tel: StoreTelemetry, facade: SessionCommitStore, sessionId: string): SessionCommitStore {
  const cache = new Map<PropertyKey, unknown>();
  return new Proxy(facade, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target);
      if (typeof value !== 'function') return value;
      let w = cache.get(prop);
      if (w === undefined) {
        const op = typeof prop === 'string' ? SESSION_OPS[prop] : undefined;
        const fn = value as (...a: Args) => Promise<unknown>;
        w =
          op === undefined
            ? fn.bind(target)
            : (...args: Args) => traced(tel, prop as string, op, args, () => fn.apply(target, args), sessionId);
        cache.set(prop, w);
      }
      return w;
    },
  });
}

/** Decorates `store` (SPEC 17). `getTelemetry` answers undefined while the API is still loading. */
function decorate<S extends RuntimeStore>(store: S, getTelemetry: () => StoreTelemetry | undefined): S {
  const cache = new Map<PropertyKey, unknown>();
  const traceable = store as unknown as Partial<TracedEnqueue>;
  return new Proxy(store, {
    get(target, prop) {
      if (prop === TELEMETRY) return getTelemetry();
      const value = Reflect.get(target, prop, target);
      if (typeof value !== 'function') return value;
      let w = cache.get(prop);
      if (w !== undefined) return w;
      const fn = value as (...a: Args) => unknown;
      const name = typeof prop === 'string' ? prop : '';
      const op = STORE_OPS[name];
      if (name === 'session') {
        w = (sessionId: string) => {
          const facade = fn.call(target, sessionId) as SessionCommitStore;
          const tel = getTelemetry();
          // No SDK in force now: the bare facade (a facade is cheap, and asked for per use).
          if (tel === undefined || (tel.tracer() === undefined && tel.instruments() === undefined)) return facade;
          return wrapSession(tel, facade, sessionId);
        };
      } else if (name === 'close') {
        w = () => {
          getTelemetry()?.close();
          return fn.call(target);
        };
      } else if (name === 'enqueuePendingTurnInput' && typeof traceable[ENQUEUE_TRACED] === 'function') {
        const enqueue = traceable[ENQUEUE_TRACED] as TracedEnqueue[typeof ENQUEUE_TRACED];
        w = (draft: PendingTurnInputDraft) => {
          const tel = getTelemetry();
          if (tel === undefined) return fn.call(target, draft);
          return traced(tel, name, op, [draft], (span) => {
            const trace = span?.isRecording() ? toTraceContext(span.spanContext()) : undefined;
            return enqueue.call(target, draft, trace);
          }).then((r) => (r as { input: PendingTurnInput }).input);
        };
      } else if (op !== undefined) {
        w = (...args: Args) => {
          const tel = getTelemetry();
          if (tel === undefined) return fn.apply(target, args);
          return traced(tel, name, op, args, () => fn.apply(target, args) as Promise<unknown>);
        };
      } else {
        w = fn.bind(target);
      }
      cache.set(prop, w);
      return w;
    },
  });
}

function destinationOf(store: RuntimeStore): string {
  const prefix = (store as { ctx?: { layout?: { prefix?: unknown } } }).ctx?.layout?.prefix;
  return typeof prefix === 'string' ? prefix : 'memory';
}

function telemetryFor(api: OtelApi, store: RuntimeStore, options: TelemetryOptions): StoreTelemetry {
  const stats = (): Promise<StoreStats> => store.stats();
  const tel = new StoreTelemetry(api, options, destinationOf(store), stats);
  tel.instruments(); // registers the gauges now if a MeterProvider is in force
  return tel;
}

/** For createRedisRuntimeStore (async): waits for the API; without it, the store as it is. */
export async function instrumentStore<S extends RuntimeStore>(store: S, options: TelemetryOptions = {}): Promise<S> {
  if (options.enabled === false) return store;
  const api = await loadOtelApi();
  if (api === null) return store;
  const tel = telemetryFor(api, store, options);
  return decorate(store, () => tel);
}

/** For createInMemoryRuntimeStore (sync): the API may still be loading; calls until then go straight through. */
export function instrumentStoreSync<S extends RuntimeStore>(store: S, options: TelemetryOptions = {}): S {
  if (options.enabled === false) return store;
  const api = otelApiIfLoaded();
  if (api === null) return store;
  if (api !== undefined) {
    const tel = telemetryFor(api, store, options);
    return decorate(store, () => tel);
  }
  let tel: StoreTelemetry | undefined;
  void loadOtelApi().then((a) => {
    if (a !== null) tel = telemetryFor(a, store, options);
  });
  return decorate(store, () => tel);
}

/** The StoreTelemetry of a decorated store, or undefined. */
export function telemetryOf(store: unknown): StoreTelemetry | undefined {
  if (typeof store !== 'object' || store === null) return undefined;
  return (store as { [TELEMETRY]?: StoreTelemetry })[TELEMETRY];
}
