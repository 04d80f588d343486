/**
 * The store's OpenTelemetry instruments (SPEC 17.3): one duration histogram, the input and
 * conflict counters, and the gauges fed by stats(). Names follow OpenTelemetry's conventions
 * (dotted, unit in the metadata; a Prometheus exporter turns `.` into `_` and adds the unit).
 */
import type { Counter, Histogram, Meter, ObservableGauge } from '@opentelemetry/api';

export const COUNTERS = {
  enqueued: ['redis_turn_store.inputs.enqueued', 'Inputs admitted (new rows; source-key replays not counted)'],
  claimed: ['redis_turn_store.inputs.claimed', 'Inputs claimed by a turn (next-turn and active-turn claims)'],
  completed: ['redis_turn_store.inputs.completed', 'Inputs completed by a commit'],
  cancelled: ['redis_turn_store.inputs.cancelled', 'Inputs cancelled'],
  failed: [
    'redis_turn_store.inputs.failed',
    'Inputs that ran out of attempts in a failed run of the worker helper and became failed',
  ],
  interrupted: ['redis_turn_store.inputs.interrupted', 'Inputs of interrupted turns'],
  abandoned: ['redis_turn_store.inputs.abandoned', 'Inputs returned untouched by abandoning their claim'],
  requeued: [
    'redis_turn_store.inputs.requeued',
    'Stranded inputs requeued to the next turn by a fresh lease generation',
  ],
  fenceRejections: ['redis_turn_store.fence.rejections', 'Calls refused because their lease generation is stale'],
  headRevisionConflicts: [
    'redis_turn_store.commit.head_revision_conflicts',
    'Commits refused for a stale expectedHeadRevision',
  ],
  wakeupsSent: ['redis_turn_store.wakeups.sent', 'Idle-dispatch wake-ups sent by store calls'],
  wakeupsSwept: ['redis_turn_store.wakeups.swept', 'Idle-dispatch wake-ups sent by the dispatch sweeper'],
} as const;

export type CounterName = keyof typeof COUNTERS;

export const GAUGES = {
  sessionsWithPendingInput: ['redis_turn_store.sessions.pending', 'Sessions with pending input', '{session}'],
  pendingInputs: ['redis_turn_store.inputs.pending', 'Inputs waiting to be claimed', '{input}'],
  oldestPendingInputAgeMs: ['redis_turn_store.inputs.oldest_pending_age', 'Age of the oldest pending input', 's'],
  liveLeases: ['redis_turn_store.leases.live', 'Sessions with a live execution lease', '{lease}'],
  stalledClaims: ['redis_turn_store.claims.stalled', 'Live claims past their stall deadline', '{claim}'],
} as const;

export interface Instruments {
  duration: Histogram;
  counters: Record<CounterName, Counter>;
  gauges: ObservableGauge[];
}

export function createInstruments(meter: Meter): Instruments {
  const counters = {} as Record<CounterName, Counter>;
  for (const [key, [name, description]] of Object.entries(COUNTERS)) {
    counters[key as CounterName] = meter.createCounter(name, { description, unit: '{input}' });
  }
  counters.fenceRejections = meter.createCounter(COUNTERS.fenceRejections[0], {
    description: COUNTERS.fenceRejections[1],
    unit: '{call}',
  });
  counters.headRevisionConflicts = meter.createCounter(COUNTERS.headRevisionConflicts[0], {
    description: COUNTERS.headRevisionConflicts[1],
    unit: '{commit}',
  });
  counters.wakeupsSent = meter.createCounter(COUNTERS.wakeupsSent[0], {
    description: COUNTERS.wakeupsSent[1],
    unit: '{wakeup}',
  });
  counters.wakeupsSwept = meter.createCounter(COUNTERS.wakeupsSwept[0], {
    description: COUNTERS.wakeupsSwept[1],
    unit: '{wakeup}',
  });
  const duration = meter.createHistogram('redis_turn_store.operation.duration', {
    description: 'Duration of store operations',
    unit: 's',
    advice: {
      explicitBucketBoundaries: [0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    },
  });
  const gauges = Object.values(GAUGES).map(([name, description, unit]) =>
    meter.createObservableGauge(name, { description, unit }),
  );
  return { duration, counters, gauges };
}
