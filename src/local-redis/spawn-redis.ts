/**
 * Spawns a private redis-server on a free loopback port with its own temp dir. Used by the demo
 * (`npm start` with no Redis reachable), the test global setup (no REDIS_URL and no Docker engine),
 * the benchmarks, and tests that need a server of their own (crash, durability, cluster).
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export function redisServerBinary(): string | undefined {
  const r = spawnSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' });
  const path = r.stdout.trim();
  return r.status === 0 && path ? path : undefined;
}

export function freePort(): Promise<number> {
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

export interface SpawnedRedis {
  url: string;
  port: number;
  dir: string;
  process: ChildProcess;
  /** Stops the server (SIGTERM, or SIGKILL when `crash`), waiting for exit. */
  stop(options?: { crash?: boolean; keepDir?: boolean }): Promise<void>;
}

export async function spawnRedis(
  options: {
    port?: number;
    dir?: string;
    extraArgs?: string[];
    appendonly?: boolean;
    /** The redis-server binary; default: the one on PATH. */
    bin?: string;
    /** Also kill the server if this process exits without calling stop() (the demo). */
    killOnExit?: boolean;
  } = {},
): Promise<SpawnedRedis> {
  const bin = options.bin ?? redisServerBinary();
  if (!bin) throw new Error('redis-server is not on PATH');
  const port = options.port ?? (await freePort());
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'rts-redis-'));
  const aof = options.appendonly ?? false;
  const argv = [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--dir',
    dir,
    '--save',
    '',
    '--appendonly',
    aof ? 'yes' : 'no',
    ...(aof ? ['--appendfsync', 'always'] : []),
    '--daemonize',
    'no',
    '--protected-mode',
    'no',
    ...(options.extraArgs ?? []),
  ];
  const child = spawn(bin, argv, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d) => {
    stderr += String(d);
  });
  const killAtExit = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  };
  if (options.killOnExit) process.once('exit', killAtExit);
  const started = Date.now();
  while (!(await canConnect(port))) {
    if (child.exitCode !== null) throw new Error(`redis-server exited early: ${stderr}`);
    if (Date.now() - started > 10_000) {
      child.kill('SIGKILL');
      throw new Error(`redis-server did not start on ${port}: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    dir,
    process: child,
    async stop({ crash = false, keepDir = false } = {}) {
      process.off('exit', killAtExit);
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill(crash ? 'SIGKILL' : 'SIGTERM');
        await exited;
      }
      if (!keepDir && !options.dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}
