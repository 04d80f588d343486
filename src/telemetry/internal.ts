/**
 * The one internal entry both backends offer beside the public contract: an enqueue that stores a
 * trace context and says whether the row is new (the telemetry decorator's counters need it).
 */
import type { PendingTurnInput, PendingTurnInputDraft, TraceContext } from '../contract/types.js';

export const ENQUEUE_TRACED: unique symbol = Symbol.for('redis-turn-store.enqueueTraced');

export interface TracedEnqueueResult {
  input: PendingTurnInput;
  created: boolean;
}

export interface TracedEnqueue {
  [ENQUEUE_TRACED](draft: PendingTurnInputDraft, trace: TraceContext | undefined): Promise<TracedEnqueueResult>;
}
