/**
 * The CLI's Redis connection from a URL: a plain client, or (--cluster) a Cluster client seeded
 * by that one node, with the URL's credentials and TLS carried over. Fails fast: no retries, no
 * offline queue, so a wrong REDIS_URL is an error message, not a hang.
 */
import { Cluster, Redis, type RedisOptions } from 'ioredis';

export function connectTo(url: string, options: { cluster?: boolean; bullmq?: boolean } = {}): Redis | Cluster {
  // BullMQ (the dashboard's queue) wants maxRetriesPerRequest null; the inspect script one try.
  const maxRetriesPerRequest = options.bullmq ? null : 1;
  if (!options.cluster) {
    return new Redis(url, {
      lazyConnect: !options.bullmq,
      maxRetriesPerRequest,
      ...(options.bullmq ? {} : { enableOfflineQueue: false, retryStrategy: () => null }),
    });
  }
  const u = new URL(url);
  const redisOptions: RedisOptions = { maxRetriesPerRequest, connectTimeout: 5000 };
  if (u.username) redisOptions.username = decodeURIComponent(u.username);
  if (u.password) redisOptions.password = decodeURIComponent(u.password);
  if (u.protocol === 'rediss:') redisOptions.tls = {};
  return new Cluster([{ host: u.hostname, port: Number(u.port || 6379) }], {
    lazyConnect: !options.bullmq,
    ...(options.bullmq ? {} : { enableOfflineQueue: false, clusterRetryStrategy: () => null }),
    redisOptions,
  });
}
