#!/usr/bin/env node
/**
 * The `redis-turn-store` command (package bin):
 *
 *   redis-turn-store inspect <sessionId> [--json] [--prefix rts] [--max-rows 1000] [--keep] [--cluster]
 *   redis-turn-store dashboard [--writable] [--port 3000] [--host 127.0.0.1] [--prefix rts] [--cluster]
 *   redis-turn-store drop --prefix P [--yes] [--cluster]
 *
 * Redis comes from REDIS_URL (default redis://127.0.0.1:6379). `main` is exported so tests run the
 * command in-process; it returns the exit code.
 */
import { readFileSync } from 'node:fs';
import { type ParseArgsConfig, parseArgs } from 'node:util';
import { isStoreError } from '../contract/errors.js';
import { KEY_PREFIX_PATTERN } from '../contract/schemas.js';
import { DASHBOARD_INSTALL_COMMAND, missingPackage } from '../dashboard/requirements.js';
import { inspectSession } from '../inspect/inspect-session.js';
import { formatInspect } from '../inspect/inspect-view.js';
import { refuseMissingDatabase } from '../redis/connection-errors.js';
import { dropStore } from '../redis/drop-prefix.js';
import { KeyLayout } from '../redis/keys.js';
import { connectTo } from './connect.js';
import { invokedDirectly, untilSignal } from './entry-point.js';

const ENVIRONMENT = `Environment: REDIS_URL (default redis://127.0.0.1:6379). With --cluster, REDIS_URL names one node
of a Redis Cluster and the client discovers the others.
`;

export const INSPECT_USAGE = `Usage: redis-turn-store inspect <sessionId> [--json] [--prefix rts] [--max-rows 1000] [--keep] [--cluster]
      Read-only view of one session: lease (holder, generation, expiry, liveness), every
      non-terminal input with its state, ingress and claim (stalled claims flagged, and STUCK rows
      that nothing will move, judged in requeue mode or with --keep in keep mode), head revision
      and graph size. Exits 1 when no store has ever used the prefix on this Redis.
`;

export const DASHBOARD_USAGE = `Usage: redis-turn-store dashboard [--writable] [--port 3000] [--host 127.0.0.1] [--prefix rts] [--cluster]
      bull-board over the idle-dispatch queue <prefix>-idle-dispatch. Read-only unless --writable.
      It has no authentication: keep it on 127.0.0.1. Needs the optional peer dependencies:
      ${DASHBOARD_INSTALL_COMMAND}
`;

export const DROP_USAGE = `Usage: redis-turn-store drop --prefix P [--yes] [--cluster]
      Deletes every key of the store with key prefix P: its sessions, shard indexes, layout key
      and BullMQ dispatch queue ({P}:P-idle-dispatch:*), on every master of a Cluster. Without
      --yes it only lists what it would delete. Stop every process using the prefix first.
`;

export const USAGE = `Usage:
  redis-turn-store inspect <sessionId> [--json] [--prefix rts] [--max-rows 1000] [--keep] [--cluster]
      Read-only view of one session: lease (holder, generation, expiry, liveness), every
      non-terminal input with its state, ingress and claim (stalled claims flagged), head revision
      and graph size.
  redis-turn-store dashboard [--writable] [--port 3000] [--host 127.0.0.1] [--prefix rts] [--cluster]
      bull-board over the idle-dispatch queue <prefix>-idle-dispatch. Read-only unless --writable.
      It has no authentication: keep it on 127.0.0.1.
  redis-turn-store drop --prefix P [--yes] [--cluster]
      Deletes every key of the store with prefix P, dispatch queue included; without --yes it
      only lists them.
  redis-turn-store --version
  redis-turn-store <command> --help

${ENVIRONMENT}`;

/** The package's version, read from its package.json (two levels above dist/cli/ and src/cli/). */
export function packageVersion(): string {
  const json = readFileSync(new URL('../../package.json', import.meta.url), 'utf8');
  return (JSON.parse(json) as { version: string }).version;
}

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
  if (command === '--version' || command === '-v' || command === 'version') {
    io.stdout(`${packageVersion()}\n`);
    return 0;
  }
  const usage =
    command === 'inspect'
      ? INSPECT_USAGE
      : command === 'dashboard'
        ? DASHBOARD_USAGE
        : command === 'drop'
          ? DROP_USAGE
          : USAGE;
  // `<command> --help` (anywhere before a `--`): that command's usage, and nothing is run.
  const end = rest.indexOf('--');
  if ((end === -1 ? rest : rest.slice(0, end)).some((a) => a === '--help' || a === '-h') && usage !== USAGE) {
    io.stdout(`${usage}\n${ENVIRONMENT}`);
    return 0;
  }
  try {
    if (command === 'inspect') return await inspectCommand(rest, io);
    if (command === 'dashboard') return await dashboardCommand(rest, io);
    if (command === 'drop') return await dropCommand(rest, io);
    io.stderr(`redis-turn-store: unknown command ${JSON.stringify(command)}\n\n${USAGE}`);
    return 2;
  } catch (e) {
    if (e instanceof UsageError) {
      io.stderr(`redis-turn-store: ${e.message}\n\n${usage}`);
      return 2;
    }
    if (e instanceof NotFound) {
      io.stderr(`redis-turn-store: ${e.message}\n`);
      return 1;
    }
    const message = isStoreError(e) || e instanceof Error ? e.message : String(e);
    const hint = /CROSSSLOT|MOVED/.test(message) ? ' (a Redis Cluster? add --cluster)' : '';
    io.stderr(`redis-turn-store: ${message}${hint}\n`);
    return 1;
  }
}

class UsageError extends Error {}
/** Nothing to show: a hint, exit code 1. */
class NotFound extends Error {}

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
    keep: { type: 'boolean', default: false },
    cluster: { type: 'boolean', default: false },
  });
  if (positionals.length !== 1) throw new UsageError('inspect takes exactly one <sessionId>');
  const keyPrefix = prefixOf(values.prefix);
  const maxRows = intOf(values['max-rows'], '--max-rows', 1000, 0, 1_000_000);
  const url = redisUrl(io);
  const client = await connectFailFast(url, values.cluster === true);
  try {
    // Every store writes <prefix>:layout when it is created: without it, nobody used this prefix here.
    if ((await client.exists(new KeyLayout(keyPrefix).layoutKey())) === 0) {
      throw new NotFound(
        `no store has used the prefix "${keyPrefix}" on ${redactedUrl(url)} (no key ${keyPrefix}:layout). ` +
          'Check --prefix (default rts) and REDIS_URL (including its /db number).',
      );
    }
    const view = await inspectSession({ client, keyPrefix }, positionals[0], {
      maxRows,
      strandedTurnInputs: values.keep ? 'keep' : 'requeue',
    });
    io.stdout(values.json ? `${JSON.stringify(view, null, 2)}\n` : formatInspect(view));
    return 0;
  } finally {
    await client.quit().catch(() => client.disconnect());
  }
}

async function dropCommand(rest: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parse(rest, {
    prefix: { type: 'string' },
    yes: { type: 'boolean', default: false },
    cluster: { type: 'boolean', default: false },
  });
  if (positionals.length > 0) throw new UsageError('drop takes no positional arguments');
  // No default: dropping the default store by omission would be too easy.
  if (typeof values.prefix !== 'string') throw new UsageError('drop needs --prefix');
  const prefix = prefixOf(values.prefix);
  const client = await connectFailFast(redisUrl(io), values.cluster === true);
  try {
    const yes = values.yes === true;
    const { keys, deleted } = await dropStore(client, prefix, { dryRun: !yes });
    if (!yes) {
      for (const k of keys) io.stdout(`${k}\n`);
      io.stdout(`${keys.length} key(s) of prefix "${prefix}" would be deleted; run again with --yes to delete them.\n`);
    } else {
      io.stdout(`deleted ${deleted} key(s) of prefix "${prefix}".\n`);
    }
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
  let startDashboard: typeof import('../dashboard/index.js').startDashboard;
  try {
    ({ startDashboard } = await import('../dashboard/index.js'));
  } catch (e) {
    const missing = missingPackage(e);
    if (missing === undefined) throw e;
    io.stderr(
      `redis-turn-store: the dashboard needs packages that are not installed (${missing} is missing).\n` +
        `Install them next to redis-turn-store:\n  ${DASHBOARD_INSTALL_COMMAND}\n`,
    );
    return 1;
  }
  // Fail fast: BullMQ's own connection retries for ever, so check Redis with a one-try client first.
  const probe = await connectFailFast(redisUrl(io), values.cluster === true);
  await probe.quit().catch(() => probe.disconnect());
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

/** The URL without its password, for messages. */
function redactedUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url;
  }
}

/** A one-try client that is connected, or an Error naming the URL and the system cause. */
async function connectFailFast(url: string, cluster: boolean) {
  const client = connectTo(url, { cluster });
  let connectionError: Error | undefined;
  client.on('error', (e: Error) => {
    connectionError ??= e;
  });
  try {
    await client.connect();
  } catch (e) {
    client.disconnect();
    throw new Error(
      `cannot reach Redis at ${redactedUrl(url)} (set REDIS_URL): ${(connectionError ?? (e as Error)).message}`,
    );
  }
  try {
    // redis://host/99 on a server with 16 databases: ioredis would go on in db 0.
    await refuseMissingDatabase(client);
  } catch (e) {
    client.disconnect();
    throw new Error(
      `REDIS_URL ${redactedUrl(url)}: ${isStoreError(e) ? (e.details.issues as string[]).join('; ') : e}`,
    );
  }
  return client;
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
