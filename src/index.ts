/** redis-turn-store: the public surface (pinned by the contract). */

export { isStoreError, StoreError, type StoreErrorCode } from './contract/errors.js';
export * as schemas from './contract/schemas.js';
export type * from './contract/types.js';
export { canonical, sha256hex } from './core/canonical.js';
export { claimCompletion, leaseCompletion, leaseFence } from './core/projections.js';
export { turnCommitHash } from './core/turn-commit-hash.js';
export { createInMemoryRuntimeStore } from './memory/memory-store.js';
export { createRedisRuntimeStore } from './redis/redis-store.js';
