/**
 * What every Redis operation module needs: the client, the key layout, the options, and `run`,
 * which sends one script call for one session and unwraps its reply. Operation modules
 * (lease-ops, turn-input-ops, commit-ops, attachment-ops, vacuum-ops) take this, never globals.
 */
import { type Cluster, Command, type Redis } from 'ioredis';
import { StoreError, storeClosed } from '../contract/errors.js';
import { connectionAwareError } from './connection-errors.js';
import { unwrapReply } from './error-map.js';
import type { KeyLayout, SessionKeys } from './keys.js';
import { scriptSha, sessionKeyIndexes } from './script-loader.js';

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
  private readonly commands = new Map<string, ScriptCommand>();
  /**
   * Whether calls go out as a bare EVALSHA Command (see call()). Only on a standalone client
   * without friendly error stacks: a Cluster client routes through its own defined commands.
   */
  private readonly direct: boolean;

  constructor(
    readonly client: RedisClient,
    readonly layout: KeyLayout,
    readonly settings: RedisStoreSettings,
    /** Sends an idle-dispatch wake-up after a script settles; never throws, never awaited by callers. */
    readonly wake: (sessionId: string) => void,
  ) {
    const options = (client as { options?: { showFriendlyErrorStack?: boolean } }).options;
    this.direct = !isClusterClient(client) && options?.showFriendlyErrorStack !== true;
  }

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
   * One script call for one session: KEYS is the part of the session's block the script uses
   * (script-loader.ts), ARGV[1] the encoded session id, then `argv`. Returns the reply after the
   * status element, or throws the mapped StoreError. `keyCount` sends only the first keys of a
   * script whose `-- @keys` line orders them for that (the call must not reach the others).
   */
  run(command: string, sessionId: string, argv: Argv, keyCount?: number): Promise<unknown[]> {
    return this.call(command, sessionId, argv, keyCount, false, unwrapReply);
  }

  /** Like run, but returns Buffers for bulk strings (for raw executionState bytes). */
  runBuffer(command: string, sessionId: string, argv: Argv): Promise<unknown[]> {
    return this.call(command, sessionId, argv, undefined, true, unwrapBufferReply);
  }

  /**
   * The one script call: the script's keys of the session block, ARGV[1] = encoded session id.
   * On a standalone client it is written as a bare EVALSHA Command: ioredis's defined-command
   * path costs a spread copy, a WeakSet lookup, a closure and two extra promises per call (about
   * 6 % of the client CPU of a full cycle here, bench/RESULTS.md). A server
   * that does not have the script yet (NOSCRIPT: a restart, SCRIPT FLUSH, a new connection to a
   * replica turned primary) gets the same call through the defined command, which sends EVAL.
   */
  private call(
    command: string,
    sessionId: string,
    argv: Argv,
    keyCount: number | undefined,
    buffer: boolean,
    unwrap: (reply: unknown) => unknown[],
  ): Promise<unknown[]> {
    let cmd: ScriptCommand;
    let all: Argv;
    try {
      cmd = this.command(command);
      all = this.scriptArgs(cmd, sessionId, argv, keyCount);
    } catch (e) {
      // run/runBuffer reject, never throw (e.g. a session id encodeId cannot encode).
      return Promise.reject(e);
    }
    const method = buffer ? cmd.bufferFn : cmd.fn;
    const client = this.client;
    if (!this.direct) return viaDefinedCommand(client, method, all, unwrap);
    // Made empty, then given its arguments: the constructor copies them through Array#flat,
    // which alone was ~5 % of the client CPU of a cycle (these are flat already).
    // stringifyArguments is what the constructor would have run on them: it marks a command with
    // Buffer arguments (executionState bytes) to be written as bytes.
    const evalsha = new Command('evalsha', [], { replyEncoding: buffer ? null : 'utf8' });
    evalsha.args = all;
    evalsha.stringifyArguments();
    const sent = (client as Redis).sendCommand(evalsha) as Promise<unknown>;
    return sent.then(unwrap, (e: unknown) => {
      if (!isNoScript(e)) throw e;
      return viaDefinedCommand(client, method, all, unwrap);
    });
  }

  private command(command: string): ScriptCommand {
    let cmd = this.commands.get(command);
    if (!cmd) {
      const methods = this.client as unknown as Record<string, ScriptFn>;
      const fn = methods[command];
      const bufferFn = methods[`${command}Buffer`];
      const sha = scriptSha(command);
      if (typeof fn !== 'function' || typeof bufferFn !== 'function' || sha === undefined) {
        throw new StoreError('Backend', { cause: `script ${command} is not registered` });
      }
      cmd = { fn, bufferFn, indexes: sessionKeyIndexes(command), sha };
      this.commands.set(command, cmd);
    }
    return cmd;
  }

  /** [sha, numkeys, keys..., encoded session id, argv...]: EVALSHA's arguments. */
  private scriptArgs(cmd: ScriptCommand, sessionId: string, argv: Argv, keyCount: number | undefined): Argv {
    const keys = this.keys(sessionId);
    const block = keys.block;
    const indexes = cmd.indexes;
    const scriptKeys = indexes ? indexes.length : block.length;
    const nKeys = keyCount === undefined ? scriptKeys : Math.min(keyCount, scriptKeys);
    const all: Argv = new Array(3 + nKeys + argv.length);
    all[0] = cmd.sha;
    all[1] = String(nKeys);
    for (let i = 0; i < nKeys; i++) all[2 + i] = block[indexes ? indexes[i] : i];
    all[2 + nKeys] = keys.encodedSessionId;
    for (let i = 0; i < argv.length; i++) all[3 + nKeys + i] = argv[i];
    return all;
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
interface ScriptCommand {
  fn: ScriptFn;
  bufferFn: ScriptFn;
  indexes: number[] | undefined;
  sha: string;
}

/** The same call through ioredis's defined command (EVAL when the server lacks the script). */
function viaDefinedCommand(
  client: RedisClient,
  method: ScriptFn,
  all: Argv,
  unwrap: (reply: unknown) => unknown[],
): Promise<unknown[]> {
  // The defined command takes EVALSHA's arguments without the sha.
  return method.call(client, all.slice(1)).then(unwrap);
}

function isNoScript(e: unknown): boolean {
  return e instanceof Error && e.message.startsWith('NOSCRIPT');
}

function unwrapBufferReply(reply: unknown): unknown[] {
  if (Array.isArray(reply) && typeof reply[0] === 'number' && reply[0] !== 0) {
    return unwrapReply(reply.map((x) => (Buffer.isBuffer(x) ? x.toString('utf8') : x)));
  }
  return unwrapReply(reply);
}
