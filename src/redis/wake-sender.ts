/**
 * The store's own idle-dispatch wake-ups (SPEC 11): fire-and-forget on a WakeQueue with its own
 * connection. A failed send is a process warning, never a failed store method; the sweeper
 * repairs it.
 */
import type { RedisClient } from './context.js';
import type { KeyLayout } from './keys.js';
import { WakeQueue } from './wake-queue.js';

export class WakeSender {
  private queue: WakeQueue | undefined;
  private readonly pending = new Set<Promise<unknown>>();

  constructor(
    private readonly client: RedisClient,
    private readonly layout: KeyLayout,
  ) {}

  private getQueue(): WakeQueue {
    if (!this.queue) {
      const { name, prefix } = this.layout.dispatchQueue();
      // Its own connection, so a blocked or failed queue never stalls the store's client.
      const connection = (this.client as { duplicate(): RedisClient }).duplicate();
      this.queue = new WakeQueue(name, prefix, connection, async () => {
        await connection.quit().catch(() => connection.disconnect());
      });
    }
    return this.queue;
  }

  send(sessionId: string): void {
    let p: Promise<unknown>;
    try {
      p = this.getQueue().send(sessionId);
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
    const q = this.queue;
    this.queue = undefined;
    await q?.close();
  }
}
