/**
 * Provides one Redis URL to every test file, in this order (issue 2):
 *   1. REDIS_URL when set;
 *   2. a testcontainers Redis when a Docker engine answers (the docker CLI alone is not enough);
 *   3. a redis-server from PATH, spawned on a free loopback port with its own temp dir.
 * Fails with instructions when none is possible.
 */
import { spawnSync } from 'node:child_process';
import type { TestProject } from 'vitest/node';
import { redisServerBinary, type SpawnedRedis, spawnRedis } from './support/redis-server.js';

let stopAll: (() => Promise<void>) | undefined;

function dockerEngineAnswers(): boolean {
  const r = spawnSync('docker', ['info', '--format', '{{.ServerVersion}}'], { timeout: 4000, encoding: 'utf8' });
  return r.status === 0 && r.stdout.trim() !== '';
}

async function provision(): Promise<{ url: string; how: string }> {
  if (process.env.REDIS_URL) return { url: process.env.REDIS_URL, how: 'REDIS_URL' };
  if (dockerEngineAnswers()) {
    const { RedisContainer } = await import('@testcontainers/redis');
    const container = await new RedisContainer('redis:7').start();
    stopAll = async () => {
      await container.stop();
    };
    return { url: container.getConnectionUrl(), how: 'testcontainers' };
  }
  if (redisServerBinary()) {
    const server: SpawnedRedis = await spawnRedis();
    stopAll = () => server.stop();
    return { url: server.url, how: `spawned redis-server on port ${server.port}` };
  }
  throw new Error(
    'No Redis for the tests: set REDIS_URL, start a Docker engine (testcontainers), ' +
      'or install redis-server (apt-get install -y redis-server), or run `docker compose up -d`.',
  );
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const { url, how } = await provision();
  process.env.RTS_TEST_REDIS_URL = url;
  project.provide('redisUrl', url);
  console.log(`[redis-turn-store tests] Redis: ${how}`);
  return async () => {
    await stopAll?.();
  };
}

declare module 'vitest' {
  export interface ProvidedContext {
    redisUrl: string;
  }
}
