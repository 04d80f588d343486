/**
 * Redis for the bench, provisioned the way the tests do it (test/support/redis-server.ts), but
 * preferring a PRIVATE redis-server so INFO commandstats / cpu / memory deltas see only the bench:
 *   1. `--redis-url=<url>` or BENCH_REDIS_URL, when given explicitly for the bench (shared figures);
 *   2. a spawned redis-server from PATH (`--save "" --appendonly no`, its own port and temp dir);
 *   3. REDIS_URL as a last resort when no redis-server binary exists.
 * Plain REDIS_URL is deliberately not preferred: the tests' server is shared with other runs.
 */
import type { Redis } from 'ioredis';
import { redisServerBinary, spawnRedis } from '../../test/support/redis-server.js';

export interface BenchRedis {
  url: string;
  /** True when the server is ours alone: server-wide deltas are the bench's own. */
  private: boolean;
  how: string;
  stop(): Promise<void>;
}

export async function provisionRedis(argv: string[]): Promise<BenchRedis> {
  const flag = argv.find((a) => a.startsWith('--redis-url='))?.slice('--redis-url='.length);
  const explicit = flag ?? process.env.BENCH_REDIS_URL;
  if (explicit) return { url: explicit, private: false, how: `explicit ${explicit}`, stop: async () => {} };
  if (redisServerBinary()) {
    const server = await spawnRedis({ extraArgs: ['--maxmemory', '0'] });
    return {
      url: server.url,
      private: true,
      how: `private redis-server on port ${server.port} (--save "" --appendonly no)`,
      stop: () => server.stop(),
    };
  }
  if (process.env.REDIS_URL) {
    return {
      url: process.env.REDIS_URL,
      private: false,
      how: `REDIS_URL ${process.env.REDIS_URL}`,
      stop: async () => {},
    };
  }
  throw new Error('No Redis for the bench: install redis-server, or pass --redis-url=redis://host:port');
}

export function parseInfo(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    const i = line.indexOf(':');
    if (i > 0 && !line.startsWith('#')) out[line.slice(0, i)] = line.slice(i + 1);
  }
  return out;
}

/** `cmdstat_<name>` → calls. */
export async function commandCalls(admin: Redis): Promise<Map<string, number>> {
  const info = parseInfo(await admin.info('commandstats'));
  const m = new Map<string, number>();
  for (const [k, v] of Object.entries(info)) {
    if (!k.startsWith('cmdstat_')) continue;
    const calls = /calls=(\d+)/.exec(v);
    if (calls) m.set(k.slice('cmdstat_'.length), Number(calls[1]));
  }
  return m;
}

/** Redis process CPU (user + sys) in microseconds. */
export async function redisCpuUs(admin: Redis): Promise<number> {
  const info = parseInfo(await admin.info('cpu'));
  return (Number(info.used_cpu_user) + Number(info.used_cpu_sys)) * 1e6;
}

export async function usedMemory(admin: Redis): Promise<number> {
  return Number(parseInfo(await admin.info('memory')).used_memory);
}

/** Deletes every key matching `pattern` (SCAN + UNLINK): the bench never FLUSHes a server. */
export async function deleteKeys(admin: Redis, pattern: string): Promise<number> {
  let cursor = '0';
  let n = 0;
  do {
    const [next, keys] = await admin.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) n += await admin.unlink(...keys);
  } while (cursor !== '0');
  return n;
}

/** Runs `count` tasks with at most `concurrency` in flight. */
export async function pool(count: number, concurrency: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const runners = Array.from({ length: Math.min(concurrency, count) }, async () => {
    while (next < count) {
      const i = next++;
      await task(i);
    }
  });
  await Promise.all(runners);
}

/** Waits until no client is in MONITOR mode (a monitor makes Redis copy every command). */
export async function assertNoMonitor(admin: Redis): Promise<void> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const list = String(await admin.client('LIST'));
    const monitors = list.split('\n').filter((l) => /\bflags=\S*O/.test(l));
    if (monitors.length === 0) return;
    if (Date.now() > deadline) throw new Error(`bench: a MONITOR client is still connected: ${monitors[0]}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
