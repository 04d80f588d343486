/**
 * The dispatch dashboard (SPEC 11, 17.5): Express + bull-board over one store's idle-dispatch queue
 * and the sessions page (sessions-page.ts)
 * (`<prefix>-idle-dispatch`, BullMQ prefix `{<prefix>}`). Read-only unless `writable` (bull-board's
 * readOnlyMode), and bound to 127.0.0.1 by default because it has no authentication.
 *
 * `createDashboardApp` builds the Express app; `startDashboard` also listens (port 0 picks a free
 * port, which is how the tests start it).
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import { Queue } from 'bullmq';
import express, { type Express } from 'express';
import type { Cluster, Redis } from 'ioredis';
import { connectTo } from '../cli/connect.js';
import { KEY_PREFIX_PATTERN } from '../contract/schemas.js';
import { KeyLayout } from '../redis/keys.js';
import { sessionsRouter } from './sessions-page.js';

export interface DashboardOptions {
  /** A redis:// URL (a connection is opened and closed here) or an ioredis instance (shared). */
  redis: string | Redis | Cluster;
  /** With a URL: it names one node of a Redis Cluster (the client discovers the others). */
  cluster?: boolean;
  /** The store's keyPrefix; default 'rts'. */
  keyPrefix?: string;
  /** Allow retries, removals and other writes from the UI; default false (read-only). */
  writable?: boolean;
}

export interface DashboardApp {
  app: Express;
  queue: Queue;
  queueName: string;
  readOnly: boolean;
  close(): Promise<void>;
}

export function createDashboardApp(options: DashboardOptions): DashboardApp {
  const keyPrefix = options.keyPrefix ?? 'rts';
  if (!KEY_PREFIX_PATTERN.test(keyPrefix)) throw new Error(`invalid key prefix ${JSON.stringify(keyPrefix)}`);
  const { name, prefix } = new KeyLayout(keyPrefix).dispatchQueue();
  const ownsConnection = typeof options.redis === 'string';
  const connection =
    typeof options.redis === 'string'
      ? connectTo(options.redis, { cluster: options.cluster === true, bullmq: true })
      : options.redis;
  const queue = new Queue(name, { connection: connection as never, prefix });
  queue.on('error', (error) =>
    process.emitWarning(`redis-turn-store dashboard: ${(error as Error)?.message ?? error}`, { code: 'RTS_DASHBOARD' }),
  );
  const readOnly = options.writable !== true;

  const serverAdapter = new ExpressAdapter();
  serverAdapter.setBasePath('/');
  createBullBoard({
    queues: [
      new BullMQAdapter(queue, {
        readOnlyMode: readOnly,
        description: `idle-dispatch wake-ups of the redis-turn-store with keyPrefix "${keyPrefix}" (job data: { sessionId })`,
      }),
    ],
    serverAdapter,
    options: { uiConfig: { boardTitle: `rts ${keyPrefix}`, miscLinks: [{ text: 'Sessions', url: '/sessions' }] } },
  });

  const app = express();
  app.disable('x-powered-by');
  // The sessions page (SPEC 17.5) first: bull-board's router answers every other path.
  app.use(sessionsRouter({ client: connection, keyPrefix, writable: !readOnly }));
  app.use('/', serverAdapter.getRouter());

  return {
    app,
    queue,
    queueName: name,
    readOnly,
    async close() {
      await queue.close();
      if (ownsConnection) await connection.quit().catch(() => connection.disconnect());
    },
  };
}

export interface RunningDashboard extends DashboardApp {
  server: Server;
  /** `http://<host>:<port>/` */
  url: string;
  port: number;
}

export async function startDashboard(
  options: DashboardOptions & { port?: number; host?: string },
): Promise<RunningDashboard> {
  const built = createDashboardApp(options);
  const host = options.host ?? '127.0.0.1';
  const server = await new Promise<Server>((resolve, reject) => {
    const s = built.app.listen(options.port ?? 3000, host, (error?: Error) => (error ? reject(error) : resolve(s)));
    s.once('error', reject);
  });
  const { port } = server.address() as AddressInfo;
  const urlHost = host.includes(':') ? `[${host}]` : host;
  return {
    ...built,
    server,
    port,
    url: `http://${urlHost}:${port}/`,
    async close() {
      server.closeAllConnections?.();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await built.close();
    },
  };
}
