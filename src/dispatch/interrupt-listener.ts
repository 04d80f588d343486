/**
 * The worker helper's ear for interrupts (SPEC 3.9, 11): one subscriber connection, duplicated
 * from the store's client, subscribed to the interrupt channel of each session it runs while the
 * run lasts. Standalone: SUBSCRIBE / PUBLISH. Redis Cluster: SSUBSCRIBE / SPUBLISH on the
 * session's shard channel (the channel carries the session's hash tag), through ioredis's sharded
 * subscribers.
 *
 * Pub/sub is the fast path only: a notice lost to a reconnect is caught by the run's next renewal
 * (whose reply carries the mark) or its next claim (TurnInterrupted).
 */
import type { Cluster, Redis } from 'ioredis';
import { StoreError } from '../contract/errors.js';
import type { TurnInterruptMark, TurnInterruptPolicy } from '../contract/types.js';
import { isClusterClient } from '../redis/context.js';
import type { RedisBackedStore } from './redis-store-access.js';

/** A notice as published by lua/include/interrupt.lua. */
export interface InterruptNotice extends TurnInterruptMark {
  sessionId: string;
}

type Handler = (notice: InterruptNotice) => void;

/** How long a run waits for its subscription before it goes on without it. */
const SUBSCRIBE_WAIT_MS = 1000;

/** The abort reason of an interrupted run: StoreError TurnInterrupted with the mark's fields. */
export function interruptedError(sessionId: string, mark: TurnInterruptMark): StoreError {
  const details: Record<string, unknown> = { sessionId, generation: mark.generation, policy: mark.policy };
  if (mark.reason !== undefined) details.reason = mark.reason;
  if (mark.inputId !== undefined) details.inputId = mark.inputId;
  return new StoreError('TurnInterrupted', details);
}

export function parseNotice(text: string): InterruptNotice | undefined {
  try {
    const v = JSON.parse(text) as Record<string, unknown>;
    const policy = v.policy;
    if (typeof v.sessionId !== 'string' || !Number.isSafeInteger(v.generation)) return undefined;
    if (policy !== 'interrupt' && policy !== 'rollback') return undefined;
    const notice: InterruptNotice = {
      sessionId: v.sessionId,
      generation: v.generation as number,
      policy: policy as TurnInterruptPolicy,
      atEpochMs: Number.isSafeInteger(v.atEpochMs) ? (v.atEpochMs as number) : 0,
    };
    if (typeof v.reason === 'string' && v.reason !== '') notice.reason = v.reason;
    if (typeof v.inputId === 'string' && v.inputId !== '') notice.inputId = v.inputId;
    return notice;
  } catch {
    return undefined;
  }
}

export class InterruptListener {
  private readonly handlers = new Map<string, Handler>();
  private connection: Redis | Cluster | undefined;
  private readonly sharded: boolean;
  private closed = false;

  constructor(private readonly store: RedisBackedStore) {
    this.sharded = isClusterClient(store.ctx.client);
  }

  private open(): Redis | Cluster {
    if (this.connection) return this.connection;
    const client = this.store.ctx.client;
    const sub = isClusterClient(client)
      ? client.duplicate(undefined, { shardedSubscribers: true })
      : (client as Redis).duplicate();
    // A subscriber that cannot reach Redis must not crash the host: renewals still deliver.
    sub.on('error', () => undefined);
    const onMessage = (channel: string, message: string) => {
      const handler = this.handlers.get(channel);
      const notice = handler ? parseNotice(message) : undefined;
      if (handler && notice) handler(notice);
    };
    sub.on(this.sharded ? 'smessage' : 'message', onMessage);
    this.connection = sub;
    return sub;
  }

  /**
   * Listens for the session's notices until the returned stop is called. Resolves once the
   * subscription is in place; a failure to subscribe resolves too (renewals still deliver).
   */
  async watch(sessionId: string, handler: Handler): Promise<() => void> {
    if (this.closed) return () => undefined;
    const channel = this.store.ctx.layout.interruptChannel(sessionId);
    this.handlers.set(channel, handler);
    const sub = this.open();
    const stop = () => {
      if (this.handlers.get(channel) !== handler) return;
      this.handlers.delete(channel);
      if (this.closed) return;
      const done = this.sharded ? (sub as Cluster).sunsubscribe(channel) : (sub as Redis).unsubscribe(channel);
      done.catch(() => undefined);
    };
    // Never hold a run up for long: a subscriber that cannot subscribe (Redis unreachable on that
    // connection) leaves delivery to the renewal and the claim.
    let timer: NodeJS.Timeout | undefined;
    const subscribed = (this.sharded ? (sub as Cluster).ssubscribe(channel) : (sub as Redis).subscribe(channel)).then(
      () => undefined,
      () => undefined,
    );
    await Promise.race([
      subscribed,
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, SUBSCRIBE_WAIT_MS);
      }),
    ]);
    clearTimeout(timer);
    return stop;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.handlers.clear();
    const sub = this.connection;
    this.connection = undefined;
    if (sub) await sub.quit().catch(() => sub.disconnect());
  }
}
