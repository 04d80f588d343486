/**
 * W3C trace context (traceparent, tracestate) to and from OpenTelemetry span contexts, pure. The
 * store keeps the enqueue span's context in the input's write-once record (SPEC 17.2).
 */
import type { TraceContext } from '../contract/types.js';

/** The span context fields this module reads and builds (structurally OpenTelemetry's SpanContext). */
export interface SpanContextLike {
  traceId: string;
  spanId: string;
  traceFlags: number;
  isRemote?: boolean;
  traceState?: { serialize(): string };
}

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;
const INVALID_TRACE = '00000000000000000000000000000000';
const INVALID_SPAN = '0000000000000000';

export function toTraceContext(sc: SpanContextLike): TraceContext | undefined {
  if (!/^[0-9a-f]{32}$/.test(sc.traceId) || !/^[0-9a-f]{16}$/.test(sc.spanId)) return undefined;
  if (sc.traceId === INVALID_TRACE || sc.spanId === INVALID_SPAN) return undefined;
  const flags = (sc.traceFlags & 0xff).toString(16).padStart(2, '0');
  const out: TraceContext = { traceparent: `00-${sc.traceId}-${sc.spanId}-${flags}` };
  const state = sc.traceState?.serialize();
  if (state) out.tracestate = state;
  return out;
}

/** A stored trace context as a remote span context (for span links), or undefined when malformed. */
export function parseTraceContext(tc: TraceContext | undefined): SpanContextLike | undefined {
  const m = tc === undefined ? null : TRACEPARENT.exec(tc.traceparent);
  if (!m || m[1] === INVALID_TRACE || m[2] === INVALID_SPAN) return undefined;
  return { traceId: m[1], spanId: m[2], traceFlags: Number.parseInt(m[3], 16), isRemote: true };
}

/** The record member (a JSON fragment, leading comma) of lua/enqueue-input.lua's ARGV[4]. */
export function traceRecordMember(tc: TraceContext | undefined): string {
  if (tc === undefined) return '';
  return `,"trace":${JSON.stringify(tc.tracestate === undefined ? { traceparent: tc.traceparent } : tc)}`;
}

/** A record's `trace` member, shape-checked: anything odd is ignored rather than failing a read. */
export function storedTraceContext(value: unknown): TraceContext | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const { traceparent, tracestate } = value as { traceparent?: unknown; tracestate?: unknown };
  if (typeof traceparent !== 'string') return undefined;
  return typeof tracestate === 'string' ? { traceparent, tracestate } : { traceparent };
}
