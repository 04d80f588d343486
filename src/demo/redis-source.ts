/**
 * Where the demo's Redis comes from, in order: REDIS_URL; else a server already listening on
 * 127.0.0.1:6379; else a private `redis-server` spawned on a free loopback port with a temp dir
 * (when the binary is on PATH); else nothing, and the caller prints how to start one.
 */
import { Redis } from 'ioredis';
import { redisServerBinary, spawnRedis } from '../local-redis/spawn-redis.js';

export interface DemoRedis {
  url: string;
  /** How it was found, for the log. */
  how: string;
  /** True when the demo spawned the server (it stops it, and its data, on exit). */
  spawned: boolean;
  stop(): Promise<void>;
}

export const NO_REDIS_MESSAGE = `No Redis found: REDIS_URL is not set, nothing answers on 127.0.0.1:6379, and redis-server is not on PATH.
Start one, then run the demo again:
  docker compose up -d          (the repository's docker-compose.yml: Redis 7 on 127.0.0.1:6379)
or install redis-server (for example: apt-get install -y redis-server), or set REDIS_URL.
`;

/** PINGs a URL; resolves false on any failure within the timeout. */
export async function pings(url: string, timeoutMs = 1500): Promise<boolean> {
  const client = new Redis(url, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    connectTimeout: timeoutMs,
    retryStrategy: () => null,
  });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return (await client.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}

async function spawnRedisServer(bin: string): Promise<DemoRedis> {
  const server = await spawnRedis({ bin, killOnExit: true });
  return {
    url: server.url,
    how: `spawned ${bin} on 127.0.0.1:${server.port} (data in ${server.dir}, removed on exit)`,
    spawned: true,
    stop: () => server.stop(),
  };
}

/** Finds or starts a Redis; null when there is none and no way to start one. */
export async function findRedis(
  env: Record<string, string | undefined> = process.env,
  options: { localUrl?: string; redisServer?: string | null } = {},
): Promise<DemoRedis | null> {
  const none = async () => undefined;
  if (env.REDIS_URL) {
    if (!(await pings(env.REDIS_URL))) throw new Error(`REDIS_URL=${env.REDIS_URL} does not answer PING`);
    return { url: env.REDIS_URL, how: 'REDIS_URL', spawned: false, stop: none };
  }
  const local = options.localUrl ?? 'redis://127.0.0.1:6379';
  if (await pings(local)) return { url: local, how: 'the server on 127.0.0.1:6379', spawned: false, stop: none };
  const bin = options.redisServer === undefined ? redisServerBinary() : options.redisServer;
  if (bin) return spawnRedisServer(bin);
  return null;
}
