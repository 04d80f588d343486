/**
 * Global setup of `npm run test:cluster` (vitest.cluster.config.ts). Provides a Redis Cluster to
 * every test file:
 *   1. REDIS_CLUSTER_NODES (comma-separated host:port of the cluster's nodes) when set;
 *   2. otherwise a 3-master cluster spawned on loopback (see cluster-harness.ts), stopped after the run.
 *
 * Provides `clusterNodes` (host:port list) and `redisUrl` (one node, for helpers that need a plain
 * URL; a plain client on it reaches only that node's slots).
 */
import type { TestProject } from 'vitest/node';
import { redisServerBinary } from '../support/redis-server.js';
import { parseNodes, redisCliBinary, type SpawnedCluster, startCluster, waitForClusterOk } from './cluster-harness.js';

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  let nodes: string[];
  let spawned: SpawnedCluster | undefined;
  let how: string;
  if (process.env.REDIS_CLUSTER_NODES) {
    nodes = parseNodes(process.env.REDIS_CLUSTER_NODES).map((n) => `${n.host}:${n.port}`);
    if (nodes.length === 0) throw new Error('REDIS_CLUSTER_NODES is set but lists no host:port');
    await waitForClusterOk(parseNodes(nodes.join(',')), 10_000);
    how = 'REDIS_CLUSTER_NODES';
  } else {
    if (!redisServerBinary() || !redisCliBinary()) {
      throw new Error(
        'No Redis Cluster for the cluster tests: set REDIS_CLUSTER_NODES=host:port,... or install ' +
          'redis-server and redis-cli (apt-get install -y redis-server) so a local cluster can be spawned.',
      );
    }
    spawned = await startCluster({ masters: 3, nodeTimeoutMs: 2000 });
    nodes = spawned.nodes;
    how = 'spawned 3-master cluster';
  }
  const url = `redis://${nodes[0]}`;
  process.env.RTS_TEST_REDIS_URL = url;
  process.env.RTS_TEST_CLUSTER_NODES = nodes.join(',');
  project.provide('clusterNodes', nodes);
  project.provide('redisUrl', url);
  console.log(`[redis-turn-store tests] Redis Cluster: ${how} (${nodes.join(', ')})`);
  return async () => {
    await spawned?.stop();
  };
}

declare module 'vitest' {
  export interface ProvidedContext {
    /** host:port of the Redis Cluster's nodes; absent outside `npm run test:cluster`. */
    clusterNodes: string[];
  }
}
