/**
 * Connection failures that say what went wrong. ioredis reports a refused, unresolvable, TLS or
 * authentication failure only as an 'error' event, and then rejects the call itself with a bare
 * "Connection is closed." This module remembers the last such event per client and turns the two
 * into one Backend error naming the server (host:port) and the system cause (ECONNREFUSED,
 * ENOTFOUND, NOAUTH, WRONGPASS, a TLS code, ...). It also holds the creation-time checks that need
 * a connection: waiting (bounded) for a client to be ready, and refusing a /db the server lacks.
 */
import type { Cluster, Redis } from 'ioredis';
import { backendError, invalidInput, isStoreError, StoreError } from '../contract/errors.js';

type Client = Redis | Cluster;

interface Watch {
  last?: Error;
  listener: (e: Error) => void;
}

const watches = new WeakMap<object, Watch>();

/** Starts remembering the client's last 'error' event (idempotent). Returns a function that stops. */
export function watchConnection(client: Client): () => void {
  let watch = watches.get(client);
  if (!watch) {
    const w: Watch = {
      listener: (e: Error) => {
        w.last = e;
      },
    };
    watch = w;
    watches.set(client, w);
    client.on('error', w.listener);
    // A successful (re)connection makes an older error stale.
    client.on('ready', () => {
      w.last = undefined;
    });
  }
  const w = watch;
  return () => {
    client.off('error', w.listener);
    watches.delete(client);
  };
}

/** The server a client talks to, as host:port (the seed nodes of a Cluster, a socket path). */
export function serverAddress(client: unknown): string {
  const c = client as {
    isCluster?: boolean;
    startupNodes?: Array<{ host?: string; port?: number } | string | number>;
    options?: { host?: string; port?: number; path?: string };
  };
  if (c.isCluster === true && Array.isArray(c.startupNodes)) {
    return c.startupNodes
      .map((n) => (typeof n === 'object' ? `${n.host ?? '127.0.0.1'}:${n.port ?? 6379}` : String(n)))
      .join(',');
  }
  const o = c.options ?? {};
  if (o.path) return o.path;
  return `${o.host ?? '127.0.0.1'}:${o.port ?? 6379}`;
}

function usesTls(client: unknown): boolean {
  const o = (client as { options?: { tls?: unknown; redisOptions?: { tls?: unknown } } }).options;
  return Boolean(o?.tls ?? o?.redisOptions?.tls);
}

/** ECONNREFUSED, ENOTFOUND, a TLS code, or a Redis error's first word (NOAUTH, WRONGPASS, ERR). */
function errorCodeOf(e: Error): string | undefined {
  const code = (e as { code?: unknown }).code;
  if (typeof code === 'string' && code !== '') return code;
  return /^([A-Z][A-Z_]+)\b/.exec(e.message)?.[1];
}

const TLS_CODE = /^(ERR_SSL_|ERR_TLS_|CERT_|UNABLE_TO_|DEPTH_ZERO_|SELF_SIGNED_|HOSTNAME_MISMATCH|ERR_OSSL)/;

function explain(code: string | undefined, tls: boolean): string {
  if (code === 'ECONNREFUSED') return 'nothing listens there';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'the host name does not resolve';
  if (code === 'NOAUTH')
    return 'the server needs a password: put it in the URL (redis://:pass@host) or the client options';
  if (code === 'WRONGPASS') return 'the user name or password is wrong';
  if (code && TLS_CODE.test(code)) return 'the TLS handshake failed';
  if (code === 'ETIMEDOUT' && tls) return 'no answer in time: does the server speak TLS (rediss://)?';
  if (code === 'ETIMEDOUT') return 'no answer in time';
  return '';
}

/** True for the messages ioredis rejects a call with when the connection itself is the problem. */
function isConnectionLoss(e: unknown): boolean {
  const m = e instanceof Error ? e.message : '';
  return /Connection is closed|Stream isn't writeable|max retries per request|None of startup nodes is available|Connection timeout|connect ETIMEDOUT/.test(
    m,
  );
}

/** A Backend error naming the server and the system cause of `connection` (the client's last error). */
export function connectionError(client: unknown, connection: Error, original?: unknown): StoreError {
  const address = serverAddress(client);
  const tls = usesTls(client);
  const code = errorCodeOf(connection);
  const why = explain(code, tls);
  const cause = `cannot reach Redis at ${address}${tls ? ' (TLS)' : ''}: ${connection.message}${why ? ` (${why})` : ''}`;
  return new StoreError(
    'Backend',
    { cause, address, ...(code ? { errorCode: code } : {}) },
    { cause: original ?? connection },
  );
}

/**
 * What a failed store call rejects with: StoreErrors as they are; a connection loss explained by
 * the client's last connection error when one is known; anything else as Backend { cause }.
 */
export function connectionAwareError(client: unknown, e: unknown): StoreError {
  if (isStoreError(e)) return e;
  const last = watches.get(client as object)?.last;
  if (last && isConnectionLoss(e)) return connectionError(client, last, e);
  if (
    e instanceof Error &&
    (e as { code?: unknown }).code !== undefined &&
    /^E[A-Z]+$/.test(String((e as { code?: unknown }).code))
  ) {
    return connectionError(client, e);
  }
  return backendError(e);
}

/**
 * Waits until the client is ready, at most `timeoutMs`; connects a lazy one. Rejects with a Backend
 * error naming the server and its last connection error. A client aimed at a dead server would
 * otherwise retry for as long as ioredis's own defaults allow (over a minute).
 */
export async function untilReady(client: Client, timeoutMs: number): Promise<void> {
  const status = (client as { status?: string }).status;
  if (status === 'ready') return;
  if (status === 'end' || status === 'close') {
    throw new StoreError('Backend', {
      cause: `the client for Redis at ${serverAddress(client)} is closed (status ${status})`,
      address: serverAddress(client),
    });
  }
  let last: Error | undefined;
  let onError!: (e: Error) => void;
  let onReady!: () => void;
  let timer: NodeJS.Timeout | undefined;
  const ready = new Promise<void>((resolve, reject) => {
    onReady = resolve;
    onError = (e: Error) => {
      last = e;
    };
    timer = setTimeout(() => {
      const why = last ?? new Error(`no connection within ${timeoutMs} ms (connectTimeoutMs)`);
      const err = connectionError(client, why);
      err.details.cause = `${err.details.cause} [gave up after connectTimeoutMs=${timeoutMs}]`;
      reject(err);
    }, timeoutMs);
  });
  client.once('ready', onReady);
  client.on('error', onError);
  try {
    if (status === 'wait') {
      // A lazyConnect client: connect() rejects on the first failure while ioredis keeps retrying.
      client.connect().catch(() => undefined);
    }
    await ready;
  } finally {
    clearTimeout(timer);
    client.off('ready', onReady);
    client.off('error', onError);
  }
}

/**
 * Refuses a database index the server does not have. ioredis sends SELECT when it connects but
 * goes on in db 0 when the server refuses it (redis://host/99 on a server with 16 databases), so
 * the store would silently write to db 0.
 */
export async function refuseMissingDatabase(client: Client): Promise<void> {
  if ((client as { isCluster?: boolean }).isCluster === true) return;
  const db = Number((client as Redis).options?.db ?? 0);
  if (!db) return;
  try {
    await (client as Redis).select(db);
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    if (/DB index|invalid DB|out of range/i.test(message)) {
      throw invalidInput([
        `options.redis: database ${db} does not exist on ${serverAddress(client)} (${message}); ` +
          "the server's `databases` setting bounds the /db number of the URL",
      ]);
    }
    throw e;
  }
}
