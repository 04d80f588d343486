/** The tests' private redis-server: the same spawner the demo and the benchmarks use. */
export {
  freePort,
  redisServerBinary,
  type SpawnedRedis,
  spawnRedis,
} from '../../src/local-redis/spawn-redis.js';
