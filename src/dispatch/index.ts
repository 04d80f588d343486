/** Idle dispatch (SPEC 11): the worker helper, the dispatch sweeper and their types. */
export {
  createIdleDispatchWorker,
  type IdleDispatchEvent,
  type IdleDispatchWorker,
  type IdleDispatchWorkerOptions,
  type RunTurn,
  type RunTurnContext,
  type WakeOutcome,
} from './worker.js';
export { sweepDispatchIndex, type SweepOptions, type SweepReport, type SweepVerdict } from './sweeper.js';
export { NOT_A_REDIS_STORE_ISSUE, isRedisBackedStore, requireRedisStore, type RedisBackedStore } from './redis-store-access.js';
export { WakeQueue, type DispatchConnection } from './wake-queue.js';
