/**
 * A real Redis Cluster on loopback for the tests: N masters, each a private redis-server spawned
 * with `--cluster-enabled yes` in its own temp dir, joined with `redis-cli --cluster create` and
 * waited on until every node reports `cluster_state:ok`. Used by the cluster global setup (the
 * shared cluster) and by tests that need a cluster of their own (the failover drill).
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cluster, type ClusterOptions, Redis } from 'ioredis';
import { freePort, type SpawnedRedis, spawnRedis } from '../support/redis-server.js';

export interface ClusterNode {
  host: string;
  port: number;
}

export interface SpawnedCluster {
  /** `host:port` of every master, in spawn order. */
  nodes: string[];
  /** The spawned servers (same order as `nodes`), for drills that stop one. */
  servers: SpawnedRedis[];
  /** Starts server `index` again on its port and dir (after a drill stopped it); it rejoins from nodes.conf. */
  restart(index: number): Promise<SpawnedRedis>;
  /** Stops every server that is still running and removes their dirs. */
  stop(): Promise<void>;
}

export function redisCliBinary(): string | undefined {
  const r = spawnSync('sh', ['-c', 'command -v redis-cli'], { encoding: 'utf8' });
  const path = r.stdout.trim();
  return r.status === 0 && path ? path : undefined;
}

export function parseNodes(list: string): ClusterNode[] {
  return list
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map((s) => {
      const i = s.lastIndexOf(':');
      if (i <= 0) throw new Error(`cluster node '${s}' is not host:port`);
      return { host: s.slice(0, i), port: Number(s.slice(i + 1)) };
    });
}

function run(bin: string, argv: string[], timeoutMs: number): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(bin, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => {
      output += String(d);
    });
    child.stderr.on('data', (d) => {
      output += String(d);
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

/** Polls CLUSTER INFO on every node until all say `cluster_state:ok` and agree on 16384 slots. */
export async function waitForClusterOk(nodes: ClusterNode[], timeoutMs = 30_000): Promise<void> {
  const clients = nodes.map(
    (n) => new Redis({ host: n.host, port: n.port, lazyConnect: true, maxRetriesPerRequest: 1 }),
  );
  const started = Date.now();
  let last = '';
  try {
    for (const c of clients) await c.connect();
    for (;;) {
      const infos = await Promise.all(clients.map((c) => c.cluster('INFO') as Promise<string>));
      const ok = infos.every((i) => /cluster_state:ok/.test(i) && /cluster_slots_assigned:16384/.test(i));
      const allKnowEachOther = new Set(infos.map((i) => /cluster_known_nodes:(\d+)/.exec(i)?.[1])).size === 1;
      if (ok && allKnowEachOther) return;
      last = infos.join('\n---\n');
      if (Date.now() - started > timeoutMs) throw new Error(`cluster did not reach cluster_state:ok:\n${last}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    for (const c of clients) c.disconnect();
  }
}

/**
 * Starts `masters` cluster-enabled redis-servers on free loopback ports and joins them into one
 * cluster with no replicas. `cluster-require-full-coverage no`, so a stopped master only takes its
 * own slots offline.
 */
export async function startCluster(
  options: { masters?: number; nodeTimeoutMs?: number; appendonly?: boolean } = {},
): Promise<SpawnedCluster> {
  const masters = options.masters ?? 3;
  const nodeTimeoutMs = options.nodeTimeoutMs ?? 2000;
  const appendonly = options.appendonly ?? false;
  const clusterArgs = (dir: string) => [
    '--cluster-enabled',
    'yes',
    '--cluster-config-file',
    join(dir, 'nodes.conf'),
    '--cluster-node-timeout',
    String(nodeTimeoutMs),
    '--cluster-require-full-coverage',
    'no',
  ];
  const cli = redisCliBinary();
  if (!cli) throw new Error('redis-cli is not on PATH (apt-get install -y redis-tools)');
  const servers: SpawnedRedis[] = [];
  const dirs: string[] = [];
  const stop = async () => {
    await Promise.allSettled(servers.map((s) => s.stop()));
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < masters; i++) {
      const dir = mkdtempSync(join(tmpdir(), 'rts-cluster-'));
      dirs.push(dir);
      const port = await freePort();
      servers.push(await spawnRedis({ port, dir, appendonly, extraArgs: clusterArgs(dir) }));
    }
    const nodes = servers.map((s) => `127.0.0.1:${s.port}`);
    const created = await run(
      cli,
      ['--cluster', 'create', ...nodes, '--cluster-replicas', '0', '--cluster-yes'],
      60_000,
    );
    if (created.code !== 0) throw new Error(`redis-cli --cluster create failed (${created.code}):\n${created.output}`);
    await waitForClusterOk(parseNodes(nodes.join(',')));
    const restart = async (index: number) => {
      const old = servers[index];
      await old.stop({ keepDir: true });
      servers[index] = await spawnRedis({ port: old.port, dir: old.dir, appendonly, extraArgs: clusterArgs(old.dir) });
      return servers[index];
    };
    return { nodes, servers, restart, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

/** Cluster client options for the tests: bounded retries so a dead master fails calls, never hangs. */
export const TEST_CLUSTER_OPTIONS: ClusterOptions = {
  maxRedirections: 8,
  retryDelayOnFailover: 100,
  retryDelayOnClusterDown: 100,
  retryDelayOnTryAgain: 100,
  slotsRefreshTimeout: 2000,
  clusterRetryStrategy: (times) => (times > 10 ? null : Math.min(100 * times, 1000)),
  redisOptions: {
    maxRetriesPerRequest: 3,
    connectTimeout: 2000,
  },
};

export function clusterClient(nodes: string[], options: ClusterOptions = TEST_CLUSTER_OPTIONS): Cluster {
  return new Cluster(parseNodes(nodes.join(',')), options);
}

export interface SlotMap {
  /** host:port of every master that serves slots, sorted. */
  masters: string[];
  /** The master (host:port) serving `slot`, or undefined when no node serves it. */
  ownerOf(slot: number): string | undefined;
}

/** Reads CLUSTER SLOTS through `client` (any node) into a slot → master map. */
export async function readSlotMap(client: Cluster | Redis): Promise<SlotMap> {
  const ranges = (await client.cluster('SLOTS')) as unknown as [
    number,
    number,
    [string, number, ...unknown[]],
    ...unknown[],
  ][];
  const owners: (string | undefined)[] = new Array(16384);
  const masters = new Set<string>();
  for (const [from, to, [host, port]] of ranges) {
    const node = `${host}:${port}`;
    masters.add(node);
    for (let s = from; s <= to; s++) owners[s] = node;
  }
  return { masters: [...masters].sort(), ownerOf: (slot) => owners[slot] };
}
