/**
 * Spawning worker-process.mjs children and talking to them over IPC, plus graph read-back for the
 * exactly-once checks.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { RuntimeStore } from '../../src/index.js';

const SCRIPT = fileURLToPath(new URL('./worker-process.mjs', import.meta.url));

export interface WorkerMessage {
  type: string;
  [k: string]: unknown;
}

export interface WorkerProcess {
  name: string;
  child: ChildProcess;
  messages: WorkerMessage[];
  stderr: () => string;
  /** Resolves with the first message (already received or future) matching `pred`. */
  waitFor(pred: (m: WorkerMessage) => boolean, timeoutMs?: number): Promise<WorkerMessage>;
  send(msg: WorkerMessage): void;
  /** Graceful: worker.close(), store.close(), exit. */
  close(timeoutMs?: number): Promise<void>;
  kill(signal?: NodeJS.Signals): Promise<void>;
  exited: Promise<void>;
}

export interface WorkerOptions {
  build: string;
  redisUrl: string;
  prefix: string;
  name: string;
  mode?: 'toy' | 'hang-after-active';
  concurrency?: number;
  leaseTtlMs?: number;
  maxInputs?: number;
  sweepMs?: number;
  workMs?: number;
  /** The helper's maxAttempts (default 3). */
  maxAttempts?: number;
  onMessage?: (m: WorkerMessage) => void;
}

export function spawnWorker(o: WorkerOptions): WorkerProcess {
  const child = spawn(process.execPath, [SCRIPT], {
    env: {
      ...process.env,
      RTS_BUILD: o.build,
      RTS_REDIS_URL: o.redisUrl,
      RTS_PREFIX: o.prefix,
      RTS_WORKER: o.name,
      RTS_MODE: o.mode ?? 'toy',
      RTS_CONCURRENCY: String(o.concurrency ?? 2),
      RTS_LEASE_TTL_MS: String(o.leaseTtlMs ?? 3000),
      RTS_MAX_INPUTS: String(o.maxInputs ?? 16),
      RTS_SWEEP_MS: String(o.sweepMs ?? 1000),
      RTS_WORK_MS: String(o.workMs ?? 2),
      RTS_MAX_ATTEMPTS: String(o.maxAttempts ?? 3),
    },
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
  });
  let err = '';
  child.stderr?.on('data', (d) => {
    err += String(d);
    if (err.length > 20_000) err = err.slice(-20_000);
  });
  const messages: WorkerMessage[] = [];
  const waiters: Array<{ pred: (m: WorkerMessage) => boolean; resolve: (m: WorkerMessage) => void }> = [];
  child.on('message', (raw) => {
    const m = raw as WorkerMessage;
    messages.push(m);
    o.onMessage?.(m);
    for (const w of [...waiters]) {
      if (w.pred(m)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(m);
      }
    }
  });
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
  const wp: WorkerProcess = {
    name: o.name,
    child,
    messages,
    stderr: () => err,
    waitFor(pred, timeoutMs = 30_000) {
      const found = messages.find(pred);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          reject(new Error(`${o.name}: no matching message within ${timeoutMs} ms; stderr:\n${err.slice(-3000)}`));
        }, timeoutMs);
        const onExit = () => {
          clearTimeout(timer);
          reject(
            new Error(
              `${o.name} exited (${child.exitCode ?? child.signalCode}) before the message; stderr:\n${err.slice(-3000)}`,
            ),
          );
        };
        child.once('exit', onExit);
        waiters.push({
          pred,
          resolve: (m) => {
            clearTimeout(timer);
            child.off('exit', onExit);
            resolve(m);
          },
        });
      });
    },
    send(msg) {
      if (child.connected) child.send(msg);
    },
    async close(timeoutMs = 15_000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      wp.send({ type: 'close' });
      const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      await exited;
      clearTimeout(t);
    },
    async kill(signal = 'SIGKILL') {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill(signal);
      await exited;
    },
    exited,
  };
  return wp;
}

/** Every `user` node of each session's graph: inputId -> number of appearances, plus misplaced ones. */
export async function consumedFromGraphs(
  store: RuntimeStore,
  sessions: string[],
): Promise<{ count: Map<string, number>; sessionOf: Map<string, string>; nodes: number }> {
  const count = new Map<string, number>();
  const sessionOf = new Map<string, string>();
  let nodes = 0;
  for (const s of sessions) {
    const read = await store.session(s).loadSession({ kind: 'full_graph' });
    for (const n of read?.graph.nodes ?? []) {
      nodes++;
      if (n.role !== 'user') continue;
      const id = String(n.inputId);
      count.set(id, (count.get(id) ?? 0) + 1);
      sessionOf.set(id, s);
    }
  }
  return { count, sessionOf, nodes };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
