/**
 * What every Redis operation module needs: the client, the key layout, the options, and `run`,
 * which sends one script call for one session through ioredis's defined command and unwraps its
 * reply. Operation modules
 * (lease-ops, turn-input-ops, commit-ops, attachment-ops, vacuum-ops) take this, never globals.
 */
import type { Cluster, Redis } from 'ioredis';
import { StoreError, storeClosed } from '../contract/errors.js';
import { connectionAwareError } from './connection-errors.js';
import { unwrapReply } from './error-map.js';
import type { KeyLayout, SessionKeys, ShardKeyName } from './keys.js';
import { fullCommandName, type LoadedScript, scriptOf } from './scripts/registry.js';

export type RedisClient = Redis | Cluster;

/** ioredis marks its Cluster client with `isCluster` (instanceof fails across copies of ioredis). */
export function isClusterClient(client: unknown): client is Cluster {
  return (client as { isCluster?: boolean } | null)?.isCluster === true;
}

export interface RedisStoreSettings {
  keyPrefix: string;
  strandedTurnInputs: 'requeue' | 'keep';
  /** SPEC 3.5, T9: how long no-lease active input waits for a turn (lua/enqueue-active-input.lua). */
  activeInputGraceMs: number;
  tombstoneRetentionMs: number;
  idleDispatch: boolean;
  /** sessionRetentionMs (SPEC 8.4): when set, scripts are also sent their optional `activity` key. */
  sessionRetentionMs?: number;
  /** Queue cap (issue 18): enqueues go to the scripts that count, with this limit. */
  maxPendingPerSession?: number;
  /** Input expiry (issue 18): enqueues record deadlines; claims and lists expire first. */
  pendingTtlMs?: number;
}

export class RedisContext {
  /** Calls started and not yet settled; close() waits for this to reach 0. */
  private inFlight = 0;
  /** Set by close() while it waits: resolves `idle` when the last in-flight call settles. */
  private onIdle: (() => void) | undefined;
  private idle: Promise<void> | undefined;
  private closed = false;
  private readonly methods = new Map<string, ScriptFn>();

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
    if (this.closed) throw storeClosed();
  }

  /** Tracks a call so close() can wait for it; wraps raw client errors as Backend. */
  track<T>(work: () => Promise<T>): Promise<T> {
    let p: Promise<T>;
    try {
      this.assertOpen();
      p = work();
    } catch (e) {
      return Promise.reject(connectionAwareError(this.client, e));
    }
    this.inFlight++;
    return p.then(
      (value) => {
        this.settled();
        return value;
      },
      (e: unknown) => {
        this.settled();
        throw connectionAwareError(this.client, e);
      },
    );
  }

  private settled(): void {
    if (--this.inFlight === 0 && this.onIdle) this.onIdle();
  }

  /**
   * One script call for one session: KEYS are the session's keys the script's header names,
   * ARGV[1] the encoded session id, then `argv`. Returns the reply after the status element, or
   * throws the mapped StoreError.
   */
  run(command: string, sessionId: string, argv: Argv): Promise<unknown[]> {
    return this.call(command, sessionId, argv, false).then(unwrapReply);
  }

  /** Like run, but bulk strings come back as Buffers (for raw executionState bytes). */
  runBuffer(command: string, sessionId: string, argv: Argv): Promise<unknown[]> {
    return this.call(command, sessionId, argv, true).then(unwrapBufferReply);
  }

  /** One call of a shard-level script (no session): KEYS are the shard's keys its header names. */
  runShard(command: string, shardTag: string, argv: Argv): Promise<unknown[]> {
    try {
      const script = scriptFor(command);
      const keys = script.keys.map((name) => this.layout.shardKey(shardTag, name as ShardKeyName));
      return this.method(command, false)(...keys, ...argv).then(unwrapReply);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  private call(command: string, sessionId: string, argv: Argv, buffer: boolean): Promise<unknown> {
    try {
      const script = scriptFor(command);
      const keys = this.keys(sessionId);
      const names = keys.byName as Record<string, string>;
      // Optional keys (the activity index) only when the store tracks activity: with the option
      // off a hot script gets exactly the keys it had before.
      const full = script.optional > 0 && this.settings.sessionRetentionMs !== undefined;
      const count = full ? script.keys.length : script.keys.length - script.optional;
      const all: Argv = [];
      for (let i = 0; i < count; i++) all.push(names[script.keys[i]]);
      all.push(keys.encodedSessionId, ...argv);
      return this.method(full ? fullCommandName(command) : command, buffer)(...all);
    } catch (e) {
      // run/runBuffer reject, never throw (e.g. a session id encodeId cannot encode).
      return Promise.reject(e);
    }
  }

  /** The ioredis defined command (registerScripts), bound to the client once. */
  private method(command: string, buffer: boolean): ScriptFn {
    const name = buffer ? `${command}Buffer` : command;
    let bound = this.methods.get(name);
    if (bound === undefined) {
      const fn = (this.client as unknown as Record<string, ScriptFn>)[name];
      if (typeof fn !== 'function') throw new StoreError('Backend', { cause: `script ${command} is not registered` });
      bound = fn.bind(this.client);
      this.methods.set(name, bound);
    }
    return bound;
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.inFlight === 0) return;
    this.idle ??= new Promise<void>((resolve) => {
      this.onIdle = resolve;
    });
    await this.idle;
  }

  get isClosed(): boolean {
    return this.closed;
  }
}

type Argv = (string | Buffer | number)[];
type ScriptFn = (...args: Argv) => Promise<unknown>;

function scriptFor(command: string): LoadedScript {
  const script = scriptOf(command);
  if (!script) throw new StoreError('Backend', { cause: `no script ${command}` });
  return script;
}

function unwrapBufferReply(reply: unknown): unknown[] {
  if (Array.isArray(reply) && typeof reply[0] === 'number' && reply[0] !== 0) {
    return unwrapReply(reply.map((x) => (Buffer.isBuffer(x) ? x.toString('utf8') : x)));
  }
  return unwrapReply(reply);
}
