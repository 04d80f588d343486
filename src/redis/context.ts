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
  /** Calls started and not yet settled; close() waits for this to reach 0. */
  private inFlight = 0;
  /** Set by close() while it waits: resolves `idle` when the last in-flight call settles. */
  private onIdle: (() => void) | undefined;
  private idle: Promise<void> | undefined;
  private closed = false;
  /** Per command: the ioredis method and the session-block positions it takes (see call()). */
  private readonly commands = new Map<string, { fn: ScriptFn; indexes: number[] | undefined }>();

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

  /**
   * Tracks a call so close() can wait for it; wraps raw client errors as Backend. A counter and
   * one .then per call instead of an async wrapper and a Set entry: this runs on every store call.
   */
  track<T>(work: () => Promise<T>): Promise<T> {
    let p: Promise<T>;
    try {
      this.assertOpen();
      p = work();
    } catch (e) {
      return Promise.reject(backendError(e));
    }
    this.inFlight++;
    return p.then(
      (value) => {
        this.settled();
        return value;
      },
      (e: unknown) => {
        this.settled();
        throw backendError(e);
      },
    );
  }

  private settled(): void {
    if (--this.inFlight === 0 && this.onIdle) this.onIdle();
  }

  /**
   * One script call for one session: KEYS is the part of the session's block the script uses
   * (script-loader.ts), ARGV[1] the encoded session id, then `argv`. Returns the reply after the
   * status element, or throws the mapped StoreError. `keyCount` sends only the first keys of a
   * script whose `-- @keys` line orders them for that (the call must not reach the others).
   */
  run(command: string, sessionId: string, argv: Argv, keyCount?: number): Promise<unknown[]> {
    return this.call(command, command, sessionId, argv, keyCount).then(unwrapReply);
  }

  /** Like run, but returns Buffers for bulk strings (for raw executionState bytes). */
  runBuffer(command: string, sessionId: string, argv: Argv): Promise<unknown[]> {
    return this.call(`${command}Buffer`, command, sessionId, argv).then(unwrapBufferReply);
  }

  /**
   * The one script call: the script's keys of the session block, ARGV[1] = encoded session id.
   * The whole command goes to ioredis as ONE array (ioredis flattens array arguments), which
   * skips its rest-parameter and spread copies; what is sent is the same.
   */
  private call(method: string, command: string, sessionId: string, argv: Argv, keyCount?: number): Promise<unknown> {
    try {
      return this.send(method, command, sessionId, argv, keyCount);
    } catch (e) {
      // run/runBuffer reject, never throw (e.g. a session id encodeId cannot encode).
      return Promise.reject(e);
    }
  }

  private send(method: string, command: string, sessionId: string, argv: Argv, keyCount?: number): Promise<unknown> {
    let cmd = this.commands.get(method);
    if (!cmd) {
      const fn = (this.client as unknown as Record<string, ScriptFn>)[method];
      if (typeof fn !== 'function') {
        return Promise.reject(new StoreError('Backend', { cause: `script ${method} is not registered` }));
      }
      cmd = { fn, indexes: sessionKeyIndexes(command) };
      this.commands.set(method, cmd);
    }
    const keys = this.keys(sessionId);
    const block = keys.block;
    const indexes = cmd.indexes;
    const scriptKeys = indexes ? indexes.length : block.length;
    const nKeys = keyCount === undefined ? scriptKeys : Math.min(keyCount, scriptKeys);
    const all: Argv = new Array(2 + nKeys + argv.length);
    all[0] = String(nKeys);
    for (let i = 0; i < nKeys; i++) all[1 + i] = block[indexes ? indexes[i] : i];
    all[1 + nKeys] = keys.encodedSessionId;
    for (let i = 0; i < argv.length; i++) all[2 + nKeys + i] = argv[i];
    return cmd.fn.call(this.client, all);
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
type ScriptFn = (args: Argv) => Promise<unknown>;

function unwrapBufferReply(reply: unknown): unknown[] {
  if (Array.isArray(reply) && typeof reply[0] === 'number' && reply[0] !== 0) {
    return unwrapReply(reply.map((x) => (Buffer.isBuffer(x) ? x.toString('utf8') : x)));
  }
  return unwrapReply(reply);
}
