/**
 * redis-turn-store: the public surface (pinned by the contract).
 * @module redis-turn-store
 */

export { isStoreError, StoreError, type StoreErrorCode } from './contract/errors.js';
export * as schemas from './contract/schemas.js';
export type * from './contract/types.js';
export { canonical, sha256hex } from './core/canonical.js';
export { currentProcessLiveness, isDefinitelyDead } from './core/liveness.js';
export { claimCompletion, leaseCompletion, leaseFence } from './core/projections.js';
export { turnCommitHash } from './core/turn-commit-hash.js';
export {
  buildTurnCommit,
  type CloseStage,
  createIdleDispatchWorker,
  type DispatchConnection,
  type IdleDispatchEvent,
  type IdleDispatchWorker,
  type IdleDispatchWorkerOptions,
  NOT_A_REDIS_STORE_ISSUE,
  type RunTurn,
  type RunTurnCommit,
  type RunTurnContext,
  type SweepOptions,
  type SweepReport,
  type SweepVerdict,
  sweepDispatchIndex,
  type TurnCommitParts,
  type WakeOutcome,
} from './dispatch/index.js';
export { inspectSession } from './inspect/inspect-session.js';
export {
  formatInspect,
  type InspectClaim,
  type InspectLease,
  type InspectRow,
  type InspectView,
  type LeaseStatus,
} from './inspect/inspect-view.js';
export { createInMemoryRuntimeStore } from './memory/memory-store.js';
export { type DropStoreOptions, type DropStoreResult, dropStore } from './redis/drop-prefix.js';
export { createRedisRuntimeStore } from './redis/redis-store.js';
