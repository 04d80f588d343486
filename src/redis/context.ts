/**
 * What every Redis operation module needs: the client, the key layout, the options, and `run`,
 * which sends one script call for one session and unwraps its reply. Operation modules
 * (lease-ops, turn-input-ops, commit-ops, attachment-ops, vacuum-ops) take this, never globals.
 */
import type { Cluster, Redis } from 'ioredis';
import { backendError, StoreError } from '../contract/errors.js';
import { unwrapReply } from './error-map.js';
import type { KeyLayout, SessionKeys } from './keys.js';
import { sessionKeyIndexes } from './script-loader.js';

export type RedisClient = Redis | Cluster;

/** ioredis marks its Cluster client with `isCluster` (instanceof fails across copies of ioredis). */
export function isClusterClient(client: unknown): client is Cluster {
  return (client as { isCluster?: boolean } | null)?.isCluster === true;
}

export interface RedisStoreSettings {
  keyPrefix: string;
  strandedTurnInputs: 'requeue' | 'keep';
  tombstoneRetentionMs: number;
  idleDispatch: boolean;
}

export class RedisContext {
  private inFlight = new Set<Promise<unknown>>();
  private closed = false;

  constructor(
    readonly client: RedisClient,
    readonly layout: KeyLayout,
    readonly settings: RedisStoreSettings,
    /** Sends an idle-dispatch wake-up after a script settles; never throws, never awaited by callers. */
    readonly wake: (sessionId: string) => void,
  ) {}

  get requeue(): boolean {
    return this.settings.strandedTurnInputs === 'requeue';
  }

  keys(sessionId: string): SessionKeys {
    return this.layout.session(sessionId);
  }

  /** Rejects new calls once the store is closing. */
  assertOpen(): void {
    if (this.closed) throw new StoreError('Backend', { cause: 'closed' });
  }

  /** Tracks a call so close() can wait for it; wraps raw client errors as Backend. */
  async track<T>(work: () => Promise<T>): Promise<T> {
    this.assertOpen();
    const p = (async () => {
      try {
        return await work();
      } catch (e) {
        throw backendError(e);
      }
    })();
    this.inFlight.add(p);
    try {
      return await p;
    } finally {
      this.inFlight.delete(p);
    }
  }

  /**
   * One script call for one session: KEYS is the part of the session's block the script uses
   * (script-loader.ts), ARGV[1] the encoded session id, then `argv`. Returns the reply after the
   * status element, or throws the mapped StoreError.
   */
  async run(command: string, sessionId: string, argv: (string | Buffer | number)[]): Promise<unknown[]> {
    return unwrapReply(await this.call(command, sessionId, argv));
  }

  /** Like run, but returns Buffers for bulk strings (for raw executionState bytes). */
  async runBuffer(command: string, sessionId: string, argv: (string | Buffer | number)[]): Promise<unknown[]> {
    return unwrapBufferReply(await this.call(`${command}Buffer`, sessionId, argv));
  }

  /** The one script call: the script's keys of the session block, ARGV[1] = encoded session id. */
  private call(method: string, sessionId: string, argv: (string | Buffer | number)[]): Promise<unknown> {
    const keys = this.keys(sessionId);
    const fn = (this.client as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>)[method];
    if (typeof fn !== 'function') throw new StoreError('Backend', { cause: `script ${method} is not registered` });
    const block = scriptKeys(method.replace(/Buffer$/, ''), keys.block);
    return fn.call(this.client, block.length, ...block, keys.encodedSessionId, ...argv);
  }

  async close(): Promise<void> {
    this.closed = true;
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  get isClosed(): boolean {
    return this.closed;
  }
}

/** The keys of the session block that `command` takes (lua/include/keys.lua order), or all of them. */
function scriptKeys(command: string, block: string[]): string[] {
  const indexes = sessionKeyIndexes(command);
  if (!indexes) return block;
  const out = new Array<string>(indexes.length);
  for (let i = 0; i < indexes.length; i++) out[i] = block[indexes[i]];
  return out;
}

function unwrapBufferReply(reply: unknown): unknown[] {
  if (Array.isArray(reply) && typeof reply[0] === 'number' && reply[0] !== 0) {
    return unwrapReply(reply.map((x) => (Buffer.isBuffer(x) ? x.toString('utf8') : x)));
  }
  return unwrapReply(reply);
}
