#!/usr/bin/env node
/**
 * The `redis-turn-store` command (package bin):
 *
 *   redis-turn-store inspect <sessionId> [--json] [--prefix rts] [--max-rows 1000] [--cluster]
 *   redis-turn-store dashboard [--writable] [--port 3000] [--host 127.0.0.1] [--prefix rts] [--cluster]
 *
 * Redis comes from REDIS_URL (default redis://127.0.0.1:6379). `main` is exported so tests run the
 * command in-process; it returns the exit code.
 */
import { type ParseArgsConfig, parseArgs } from 'node:util';
import { isStoreError } from '../contract/errors.js';
import { KEY_PREFIX_PATTERN } from '../contract/schemas.js';
import { inspectSession } from '../inspect/inspect-session.js';
import { formatInspect } from '../inspect/inspect-view.js';
import { connectTo } from './connect.js';
import { startDashboard } from './dashboard.js';
import { invokedDirectly, untilSignal } from './entry-point.js';

export const USAGE = `Usage:
  redis-turn-store inspect <sessionId> [--json] [--prefix rts] [--max-rows 1000] [--cluster]
      Read-only view of one session: lease (holder, generation, expiry, liveness), every
      non-terminal input with its state, ingress and claim (stalled claims flagged), head revision
      and graph size.
  redis-turn-store dashboard [--writable] [--port 3000] [--host 127.0.0.1] [--prefix rts] [--cluster]
      bull-board over the idle-dispatch queue <prefix>-idle-dispatch. Read-only unless --writable.
      It has no authentication: keep it on 127.0.0.1.

Environment: REDIS_URL (default redis://127.0.0.1:6379). With --cluster, REDIS_URL names one node
of a Redis Cluster and the client discovers the others.
`;

export interface CliIO {
  stdout(text: string): void;
  stderr(text: string): void;
  env: Record<string, string | undefined>;
  /** Resolves when the dashboard should stop (default: SIGINT or SIGTERM). */
  untilStopped?: () => Promise<void>;
}

const defaultIO: CliIO = {
  stdout: (t) => process.stdout.write(t),
  stderr: (t) => process.stderr.write(t),
  env: process.env,
};

function redisUrl(io: CliIO): string {
  return io.env.REDIS_URL || 'redis://127.0.0.1:6379';
}

export async function main(argv: string[] = process.argv.slice(2), io: CliIO = defaultIO): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === 'help' || command === '--help' || command === '-h') {
    (command === undefined ? io.stderr : io.stdout)(USAGE);
    return command === undefined ? 2 : 0;
  }
  try {
    if (command === 'inspect') return await inspectCommand(rest, io);
    if (command === 'dashboard') return await dashboardCommand(rest, io);
    io.stderr(`redis-turn-store: unknown command ${JSON.stringify(command)}\n\n${USAGE}`);
    return 2;
  } catch (e) {
    if (e instanceof UsageError) {
      io.stderr(`redis-turn-store: ${e.message}\n\n${USAGE}`);
      return 2;
    }
    const message = isStoreError(e) || e instanceof Error ? e.message : String(e);
    const hint = /CROSSSLOT|MOVED/.test(message) ? ' (a Redis Cluster? add --cluster)' : '';
    io.stderr(`redis-turn-store: ${message}${hint}\n`);
    return 1;
  }
}

class UsageError extends Error {}

function parse(rest: string[], options: NonNullable<ParseArgsConfig['options']>) {
  try {
    return parseArgs({ args: rest, options, allowPositionals: true, strict: true });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

function prefixOf(value: unknown): string {
  const prefix = typeof value === 'string' ? value : 'rts';
  if (!KEY_PREFIX_PATTERN.test(prefix)) throw new UsageError(`--prefix must match ${KEY_PREFIX_PATTERN}`);
  return prefix;
}

function intOf(value: unknown, name: string, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`${name} must be an integer in ${min}..${max}`);
  return n;
}

async function inspectCommand(rest: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parse(rest, {
    json: { type: 'boolean', default: false },
    prefix: { type: 'string' },
    'max-rows': { type: 'string' },
    cluster: { type: 'boolean', default: false },
  });
  if (positionals.length !== 1) throw new UsageError('inspect takes exactly one <sessionId>');
  const keyPrefix = prefixOf(values.prefix);
  const maxRows = intOf(values['max-rows'], '--max-rows', 1000, 0, 1_000_000);
  const url = redisUrl(io);
  const client = connectTo(url, { cluster: values.cluster === true });
  let connectionError: Error | undefined;
  client.on('error', (e: Error) => {
    connectionError ??= e;
  });
  try {
    try {
      await client.connect();
    } catch (e) {
      throw new Error(`cannot reach Redis at ${url} (set REDIS_URL): ${(connectionError ?? (e as Error)).message}`);
    }
    const view = await inspectSession({ client, keyPrefix }, positionals[0], { maxRows });
    io.stdout(values.json ? `${JSON.stringify(view, null, 2)}\n` : formatInspect(view));
    return 0;
  } finally {
    await client.quit().catch(() => client.disconnect());
  }
}

async function dashboardCommand(rest: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parse(rest, {
    writable: { type: 'boolean', default: false },
    cluster: { type: 'boolean', default: false },
    port: { type: 'string' },
    host: { type: 'string' },
    prefix: { type: 'string' },
  });
  if (positionals.length > 0) throw new UsageError('dashboard takes no positional arguments');
  const keyPrefix = prefixOf(values.prefix);
  const port = intOf(values.port, '--port', 3000, 0, 65535);
  const host = typeof values.host === 'string' ? values.host : '127.0.0.1';
  const dashboard = await startDashboard({
    redis: redisUrl(io),
    cluster: values.cluster === true,
    keyPrefix,
    writable: values.writable === true,
    port,
    host,
  });
  io.stdout(
    `redis-turn-store dashboard for prefix "${keyPrefix}" (queue ${dashboard.queueName}, ${dashboard.readOnly ? 'read-only' : 'WRITABLE'}) on ${dashboard.url}\n`,
  );
  if (!['127.0.0.1', 'localhost', '::1'].includes(host)) {
    io.stderr(`redis-turn-store: warning: the dashboard has no authentication and listens on ${host}\n`);
  }
  await (io.untilStopped ?? untilSignal)();
  await dashboard.close();
  return 0;
}

if (invokedDirectly(import.meta.url)) {
  main().then(
    (code) => {
      process.exitCode = code;
    },
    (e) => {
      process.stderr.write(`redis-turn-store: ${(e as Error)?.stack ?? e}\n`);
      process.exitCode = 1;
    },
  );
}
