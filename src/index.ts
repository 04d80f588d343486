/** redis-turn-store: the public surface (pinned by the contract). */
export type * from './contract/types.js';
export { StoreError, isStoreError, type StoreErrorCode } from './contract/errors.js';
export * as schemas from './contract/schemas.js';
export { leaseFence, leaseCompletion, claimCompletion } from './core/projections.js';
export { turnCommitHash } from './core/turn-commit-hash.js';
export { canonical, sha256hex } from './core/canonical.js';
export { createRedisRuntimeStore } from './redis/redis-store.js';
export { createInMemoryRuntimeStore } from './memory/memory-store.js';
