/**
 * A handle on a store's idle-dispatch queue for senders outside the store: the sweeper and the
 * worker helper. Jobs are exactly the store's own (src/redis/wake-sender.ts): name `wake`, data
 * `{ sessionId }` only, deduplicated per session with keepLastIfActive.
 */
import { Queue } from 'bullmq';
import type { Cluster, Redis, RedisOptions } from 'ioredis';
import { WAKE_JOB, wakeJobOptions } from '../redis/wake-sender.js';

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
