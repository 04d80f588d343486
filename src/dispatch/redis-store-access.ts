/**
 * Idle dispatch needs what only the Redis store has: its key layout (the dispatch queue's name
 * and BullMQ prefix, the shard dispatch index) and its script context. This is the one place that
 * reaches into a store for them, and the one error for a store that has neither.
 */
import { StoreError } from '../contract/errors.js';
import type { RuntimeStore } from '../contract/types.js';
import type { RedisContext } from '../redis/context.js';

/** A RuntimeStore made by createRedisRuntimeStore (it exposes its script context as `ctx`). */
export type RedisBackedStore = RuntimeStore & { readonly ctx: RedisContext };

export const NOT_A_REDIS_STORE_ISSUE =
  'store: idle dispatch needs a Redis store made by createRedisRuntimeStore (it uses the store’s ' +
  'dispatch queue and dispatch index); the in-memory store has no dispatch queue';

export function isRedisBackedStore(store: unknown): store is RedisBackedStore {
  const ctx = (store as { ctx?: Partial<RedisContext> } | null | undefined)?.ctx;
  return (
    typeof ctx === 'object' &&
    ctx !== null &&
    typeof ctx.run === 'function' &&
    typeof ctx.layout?.dispatchQueue === 'function' &&
    typeof ctx.settings === 'object'
  );
}

/**
 * Returns the store typed as a Redis store, or throws StoreError InvalidInput
 * (`details.issues[0]` is NOT_A_REDIS_STORE_ISSUE) for anything else, the in-memory store included.
 */
export function requireRedisStore(store: unknown): RedisBackedStore {
  if (!isRedisBackedStore(store)) throw new StoreError('InvalidInput', { issues: [NOT_A_REDIS_STORE_ISSUE] });
  return store;
}

/** The dispatch queue of a store: `<keyPrefix>-idle-dispatch`, BullMQ prefix `{<keyPrefix>}`. */
export function dispatchQueueOf(store: RedisBackedStore): { name: string; prefix: string } {
  return store.ctx.layout.dispatchQueue();
}
