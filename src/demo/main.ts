#!/usr/bin/env node
import { parseArgs } from 'node:util';
/**
 * `npm start`: finds a Redis (REDIS_URL, else 127.0.0.1:6379, else a spawned redis-server, else
 * it says how to start one and exits 1), runs the demo (src/demo/run-demo.ts) and exits 0 when
 * every input was processed exactly once.
 *
 *   node dist/demo/main.js [--keep-running] [--prefix demo-x] [--sessions 5] [--messages 4]
 *                          [--workers 3] [--cleanup]
 */
import { invokedDirectly } from '../cli/entry-point.js';
import { KEY_PREFIX_PATTERN } from '../contract/schemas.js';
import { findRedis, NO_REDIS_MESSAGE } from './redis-source.js';
import { runDemo } from './run-demo.js';

const USAGE = `Usage: npm start -- [--keep-running] [--prefix <keyPrefix>] [--sessions 5] [--messages 4] [--workers 3] [--cleanup]
  --keep-running  keep the dispatch workers up after the summary (Ctrl-C to stop)
  --prefix        key prefix of this run (default demo-<timestamp>)
  --cleanup       delete this run's keys at the end
Redis: REDIS_URL, else 127.0.0.1:6379, else a redis-server spawned for the run.
`;

export async function main(argv: string[] = process.argv.slice(2)): Promise<number> {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        'keep-running': { type: 'boolean', default: false },
        cleanup: { type: 'boolean', default: false },
        prefix: { type: 'string' },
        sessions: { type: 'string' },
        messages: { type: 'string' },
        workers: { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
      strict: true,
    }));
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const int = (v: unknown, name: string, min: number, max: number): number | undefined => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max) throw new Error(`--${name} must be an integer in ${min}..${max}`);
    return n;
  };
  const prefix = values.prefix as string | undefined;
  if (prefix !== undefined && !KEY_PREFIX_PATTERN.test(prefix)) {
    process.stderr.write(`--prefix must match ${KEY_PREFIX_PATTERN}\n`);
    return 2;
  }

  const redis = await findRedis();
  if (!redis) {
    process.stderr.write(NO_REDIS_MESSAGE);
    return 1;
  }
  try {
    const summary = await runDemo({
      redisUrl: redis.url,
      redisHow: redis.how,
      redisIsTemporary: redis.spawned,
      keyPrefix: prefix,
      sessions: int(values.sessions, 'sessions', 1, 50),
      messagesPerSession: int(values.messages, 'messages', 1, 100),
      workers: int(values.workers, 'workers', 1, 6),
      keepRunning: values['keep-running'] === true,
      cleanup: values.cleanup === true,
    });
    return summary.ok ? 0 : 1;
  } finally {
    await redis.stop();
  }
}

if (invokedDirectly(import.meta.url)) {
  main().then(
    (code) => process.exit(code),
    (e) => {
      process.stderr.write(`demo failed: ${(e as Error)?.stack ?? e}\n`);
      process.exit(1);
    },
  );
}
