/** Idle dispatch (SPEC 11): the worker helper, the dispatch sweeper and their types. */

export { type DispatchConnection, WakeQueue } from '../redis/wake-queue.js';
export {
  isRedisBackedStore,
  NOT_A_REDIS_STORE_ISSUE,
  type RedisBackedStore,
  requireRedisStore,
} from './redis-store-access.js';
export { type SweepOptions, type SweepReport, type SweepVerdict, sweepDispatchIndex } from './sweeper.js';
export { buildTurnCommit, type TurnCommitParts } from './turn-commit.js';
export {
  type CloseStage,
  createIdleDispatchWorker,
  type IdleDispatchEvent,
  type IdleDispatchWorker,
  type IdleDispatchWorkerOptions,
  type RunTurn,
  type RunTurnCommit,
  type RunTurnContext,
  type WakeOutcome,
} from './worker.js';
