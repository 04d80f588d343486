/**
 * Sends idle-dispatch wake-ups (SPEC 11): a BullMQ job `wake` with data { sessionId } only,
 * deduplicated per session with keepLastIfActive. Sending is fire-and-forget: a failure is a
 * process warning, never a failed store method, and the sweeper repairs it.
 */
import { Queue } from 'bullmq';
import type { RedisClient } from './context.js';
import type { KeyLayout } from './keys.js';

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

export class WakeSender {
  private queue: Queue | undefined;
  private connection: RedisClient | undefined;
  private readonly pending = new Set<Promise<unknown>>();

  constructor(
    private readonly client: RedisClient,
    private readonly layout: KeyLayout,
  ) {}

  private getQueue(): Queue {
    if (!this.queue) {
      const { name, prefix } = this.layout.dispatchQueue();
      // Its own connection, so a blocked or failed queue never stalls the store's client.
      this.connection = (this.client as { duplicate(): RedisClient }).duplicate();
      this.queue = new Queue(name, { connection: this.connection as never, prefix });
    }
    return this.queue;
  }

  send(sessionId: string): void {
    let p: Promise<unknown>;
    try {
      p = this.getQueue().add(WAKE_JOB, { sessionId }, wakeJobOptions(sessionId));
    } catch (e) {
      p = Promise.reject(e);
    }
    const tracked = p.catch((e: unknown) => {
      process.emitWarning(
        `redis-turn-store: idle-dispatch wake-up for a session failed: ${(e as Error)?.message ?? e}`,
        {
          code: 'RTS_WAKE_FAILED',
        },
      );
    });
    this.pending.add(tracked);
    void tracked.finally(() => this.pending.delete(tracked));
  }

  /** Waits for wake-ups in flight, then closes the queue handle and its connection. */
  async close(): Promise<void> {
    await Promise.allSettled([...this.pending]);
    if (this.queue) {
      const q = this.queue;
      this.queue = undefined;
      await q.close();
      await this.connection?.quit().catch(() => undefined);
      this.connection = undefined;
    }
  }
}
