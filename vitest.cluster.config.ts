/**
 * `npm run test:cluster`: the shared conformance suite, the Redis-only tests and the cluster tests
 * against a real Redis Cluster (test/cluster/cluster-setup.ts spawns a 3-master cluster on loopback,
 * or uses REDIS_CLUSTER_NODES).
 */
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    globalSetup: ['./test/cluster/cluster-setup.ts'],
    setupFiles: ['./test/cluster/cluster-per-file.ts'],
    include: ['test/conformance/**/*.test.ts', 'test/redis/**/*.test.ts', 'test/cluster/**/*.test.ts'],
    // Write coalescing applies only to a standalone client the store opens itself.
    exclude: ['node_modules/**', 'test/redis/write-coalescing.test.ts', 'test/redis/script-calls.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
  },
});
