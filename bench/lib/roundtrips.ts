/**
 * Round trips per operation and sequential latency, on a store with its own dedicated ioredis
 * connection.
 *
 * Round trips = client commands per call, from INFO commandstats deltas taken around one warm call
 * (scripts already cached, so no NOSCRIPT → EVAL fallback). commandstats also counts the commands a
 * script runs internally (redis.call), so those are excluded: a MONITOR connection sees each of them
 * tagged `lua`, and they are subtracted. The admin connection's own INFO/ECHO are excluded by name.
 * Two cross-checks must agree: the MONITOR lines whose source is the store's connection, and the
 * commands the store's ioredis client wrote (sendCommand). On a shared server (explicit URL) the
 * commandstats delta includes other clients, so the MONITOR count by client address is used.
 */
import { Redis } from 'ioredis';
import type { RuntimeStore } from '../../src/index.js';
import { createRedisRuntimeStore } from '../../src/index.js';
import { commandCalls } from './env.js';
import { buildOps } from './ops.js';
import { progress } from './progress.js';
import { percentile, usSince } from './stats.js';

export interface RoundTripReport {
  perOp: Record<string, number>;
  disagreements: string[];
  latencyUs: Record<string, { p50: number; p99: number }>;
}

interface MonitorLine {
  source: string;
  command: string;
  args: string[];
}

export async function measureRoundTripsAndLatency(
  url: string,
  privateServer: boolean,
  prefix: string,
  latencyIterations: number,
): Promise<RoundTripReport> {
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 2 });
  await client.connect();
  let sent = 0;
  const original = client.sendCommand.bind(client);
  (client as unknown as { sendCommand: (...a: unknown[]) => unknown }).sendCommand = (...a: unknown[]) => {
    sent++;
    return (original as (...b: unknown[]) => unknown)(...a);
  };
  const store: RuntimeStore = await createRedisRuntimeStore({
    redis: client,
    keyPrefix: prefix,
    durability: 'inline',
    idleDispatch: false,
  });
  const admin = new Redis(url);
  const monitorClient = new Redis(url);
  const storeAddr = /addr=(\S+)/.exec(String(await client.client('INFO')))?.[1] ?? '?';
  const monitor = await monitorClient.monitor();
  let lines: MonitorLine[] = [];
  monitor.on('monitor', (_time: string, args: string[], source: string) => {
    lines.push({ source, command: String(args[0]).toLowerCase(), args: args.map(String) });
  });
  let markerSeq = 0;
  /** Waits until MONITOR has shown everything executed before this point. */
  /** Waits until MONITOR has shown everything executed before this point; returns those lines. */
  const syncMonitor = async (): Promise<MonitorLine[]> => {
    const marker = `bench-marker-${++markerSeq}`;
    await admin.echo(marker);
    const deadline = Date.now() + 5000;
    for (;;) {
      const at = lines.findIndex((l) => l.command === 'echo' && l.args[1] === marker);
      if (at >= 0) return lines.slice(0, at);
      if (Date.now() > deadline) throw new Error('bench: MONITOR did not show the marker');
      await new Promise((r) => setTimeout(r, 2));
    }
  };

  const report: RoundTripReport = { perOp: {}, disagreements: [], latencyUs: {} };
  try {
    progress('round trips: building fixtures', true);
    const ops = await buildOps(store, 'rt');
    let i = 0;
    for (const op of ops) {
      progress(`round trips: ${op.name}`);
      // Warm-up: loads the script into the server's cache (EVALSHA → NOSCRIPT → EVAL happens here).
      const warm = await op.setup(i);
      await op.teardown(warm, await op.run(warm, i++));
      const prepared = await op.setup(i);
      await syncMonitor();
      const before = await commandCalls(admin);
      lines = [];
      sent = 0;
      const result = await op.run(prepared, i++);
      const sentByClient = sent;
      const observed = await syncMonitor();
      const after = await commandCalls(admin);
      await op.teardown(prepared, result);

      let delta = 0;
      for (const [cmd, calls] of after) {
        if (cmd === 'info' || cmd === 'echo' || cmd === 'monitor') continue;
        delta += calls - (before.get(cmd) ?? 0);
      }
      const luaInternal = observed.filter((l) => l.source === 'lua').length;
      const fromCommandstats = delta - luaInternal;
      const fromMonitor = observed.filter((l) => l.source === storeAddr).length;
      const counted = privateServer ? fromCommandstats : fromMonitor;
      report.perOp[op.name] = counted;
      if ((privateServer && fromCommandstats !== fromMonitor) || fromMonitor !== sentByClient) {
        report.disagreements.push(
          `${op.name}: commandstats ${fromCommandstats}, monitor ${fromMonitor}, client wrote ${sentByClient} ` +
            `[${observed.map((l) => `${l.source === storeAddr ? 'client' : l.source}:${l.command}`).join(' ')}] ` +
            `cmdstats Δ ${[...after]
              .map(([k, v]) => `${k}+${v - (before.get(k) ?? 0)}`)
              .filter((x) => !x.endsWith('+0'))
              .join(' ')}`,
        );
      }
    }
    // The MONITOR connection must be gone before anything is timed: Redis feeds it every command.
    monitor.disconnect();
    monitorClient.disconnect();

    // Sequential latency: setup and teardown untimed, one call at a time.
    const latencyOps = await buildOps(store, 'lat');
    for (const op of latencyOps) {
      const samples: number[] = [];
      for (let k = 0; k < latencyIterations + 10; k++) {
        const prepared = await op.setup(k);
        const t0 = process.hrtime.bigint();
        const result = await op.run(prepared, k);
        const us = usSince(t0);
        await op.teardown(prepared, result);
        if (k >= 10) samples.push(us); // the first 10 are warm-up
        if (k % 50 === 0) progress(`latency: ${op.name} ${k}/${latencyIterations + 10}`);
      }
      report.latencyUs[op.name] = {
        p50: Math.round(percentile(samples, 50)),
        p99: Math.round(percentile(samples, 99)),
      };
    }
  } finally {
    monitor.disconnect();
    monitorClient.disconnect();
    await store.close();
    await client.quit().catch(() => client.disconnect());
    await admin.quit().catch(() => admin.disconnect());
  }
  return report;
}
