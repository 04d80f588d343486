/**
 * Where the demo's Redis comes from, in order: REDIS_URL; else a server already listening on
 * 127.0.0.1:6379; else a private `redis-server` spawned on a free loopback port with a temp dir
 * (when the binary is on PATH); else nothing, and the caller prints how to start one.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';

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

function redisServerBinary(): string | undefined {
  const r = spawnSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' });
  const path = r.stdout?.trim();
  return r.status === 0 && path ? path : undefined;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = new Socket();
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
    s.connect(port, '127.0.0.1');
  });
}

async function spawnRedisServer(bin: string): Promise<DemoRedis> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'rts-demo-redis-'));
  const child: ChildProcess = spawn(
    bin,
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--dir',
      dir,
      '--save',
      '',
      '--appendonly',
      'no',
      '--protected-mode',
      'no',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr?.on('data', (d) => {
    stderr += String(d);
  });
  const kill = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  };
  process.once('exit', kill);
  const started = Date.now();
  while (!(await canConnect(port))) {
    if (child.exitCode !== null) throw new Error(`redis-server exited early: ${stderr}`);
    if (Date.now() - started > 10_000) {
      child.kill('SIGKILL');
      throw new Error(`redis-server did not start on port ${port}: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  return {
    url: `redis://127.0.0.1:${port}`,
    how: `spawned ${bin} on 127.0.0.1:${port} (data in ${dir}, removed on exit)`,
    spawned: true,
    async stop() {
      process.off('exit', kill);
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
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
