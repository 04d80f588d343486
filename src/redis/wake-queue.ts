/**
 * A handle on a store's idle-dispatch queue (SPEC 11), used by the store's own wake-ups
 * (wake-sender.ts), the sweeper and the worker helper. A wake-up is a job `wake` with data
 * `{ sessionId }` only, deduplicated per session with keepLastIfActive.
 */
import { Queue } from 'bullmq';
import type { Cluster, Redis, RedisOptions } from 'ioredis';

export const WAKE_JOB = 'wake';

export function wakeJobOptions(sessionId: string) {
  return {
    deduplication: { id: sessionId, keepLastIfActive: true },
    removeOnComplete: true,
    removeOnFail: 1000,
    attempts: 5,
    backoff: { type: 'exponential', delay: 500 },
  };
}

/** What BullMQ accepts as a connection: an ioredis instance (shared, not closed here) or options. */
export type DispatchConnection = Redis | Cluster | RedisOptions;

export class WakeQueue {
  readonly queue: Queue;

  constructor(
    name: string,
    prefix: string,
    connection: DispatchConnection,
    private readonly onClose?: () => Promise<void>,
  ) {
    this.queue = new Queue(name, { connection: connection as never, prefix });
    // An EventEmitter 'error' without a listener would crash the process; a failed send is
    // reported by send() itself, and the sweeper repairs it.
    this.queue.on('error', (error) =>
      process.emitWarning(`redis-turn-store: dispatch queue ${name}: ${(error as Error)?.message ?? error}`, {
        code: 'RTS_DISPATCH_QUEUE_ERROR',
      }),
    );
  }

  /** Adds (or deduplicates into) the session's wake-up. Rejects on failure: the caller decides. */
  async send(sessionId: string): Promise<void> {
    await this.queue.add(WAKE_JOB, { sessionId }, wakeJobOptions(sessionId));
  }

  async close(): Promise<void> {
    await this.queue.close();
    await this.onClose?.();
  }
}
