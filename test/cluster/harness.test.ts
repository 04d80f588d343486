/**
 * The cluster harness itself: every master answers, all 16384 slots are served, and a Cluster
 * client reads back what it wrote across many slots.
 */
import { expect, test } from 'vitest';
import { keySlot } from '../../src/redis/cluster-slot.js';
import { clusterNodes, sharedCluster } from '../support/prefix.js';

test('the cluster has three masters serving all slots, and a Cluster client round-trips keys', async () => {
  const nodes = clusterNodes();
  expect(nodes?.length).toBeGreaterThanOrEqual(1);
  const cluster = sharedCluster();
  const masters = cluster.nodes('master');
  if (masters.length === 0) await new Promise((r) => cluster.once('ready', r));
  expect(cluster.nodes('master').length).toBeGreaterThanOrEqual(3);
  for (const node of cluster.nodes('master')) expect(await node.ping()).toBe('PONG');
  const slots = (await cluster.cluster('SLOTS')) as [number, number, ...unknown[]][];
  expect(slots.reduce((n, [a, b]) => n + (b - a + 1), 0)).toBe(16384);

  const keys = Array.from({ length: 200 }, (_, i) => `harness-${process.pid}:{k${i}}`);
  expect(new Set(keys.map((k) => keySlot(k))).size).toBeGreaterThan(150);
  await Promise.all(keys.map((k, i) => cluster.set(k, String(i), 'PX', 60_000)));
  expect(await Promise.all(keys.map((k) => cluster.get(k)))).toEqual(keys.map((_, i) => String(i)));
  await Promise.all(keys.map((k) => cluster.unlink(k)));
});
