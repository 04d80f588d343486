/**
 * redis-turn-store/dashboard: bull-board over a store's idle-dispatch queue. A separate entry point
 * so the core package never loads (or makes apps install) express and bull-board: they are optional
 * peer dependencies, needed only by whoever imports this module or runs `redis-turn-store dashboard`.
 * @module redis-turn-store/dashboard
 */
export {
  createDashboardApp,
  type DashboardApp,
  type DashboardOptions,
  type RunningDashboard,
  startDashboard,
} from './dashboard.js';
