/**
 * `npm run bench:validation [-- --rounds=7] [-- --iterations=50000]`
 *
 * Client CPU of the argument checks of one cycle's four calls (enqueue, tryClaim, claimNext and a
 * commit that completes the claim and releases the lease), with the bench's own arguments
 * (bench/lib/fixtures.ts), in a warm loop. No Redis. Prints the median and range over the rounds
 * of µs per call and per cycle. Not part of `npm run bench`.
 */
import { args } from '../src/contract/arguments.js';
import type { SessionExecutionLease, TurnInputClaim } from '../src/index.js';
import { leaseFence } from '../src/index.js';
import { finishingCommit, INPUT_150, OWNER, TTL } from './lib/fixtures.js';
import { round, spreadOf } from './lib/stats.js';

const argv = process.argv.slice(2);
const flag = (name: string, dflt: number) => {
  const a = argv.find((x) => x.startsWith(`--${name}=`));
  return a ? Number(a.slice(name.length + 3)) : dflt;
};
const ROUNDS = flag('rounds', 7);
const ITERATIONS = flag('iterations', 50_000);

const sessionId = 'bench-c0-17';
const lease: SessionExecutionLease = {
  sessionId,
  owner: OWNER,
  leaseToken: 'lt-0f3a9c2e-5b7d-4e1a-9c3f-2d8b6a4e1f70',
  fencingToken: 12,
  claimedAtEpochMs: 1_767_225_600_000,
  expiresAtEpochMs: 1_767_225_600_000 + TTL,
};
const claim: TurnInputClaim = {
  sessionId,
  claimId: 'cl-7e2b1d4c-9a3f-4b8e-a1c5-3f6d9e2b7a40',
  owner: OWNER,
  leaseToken: 'ct-2a9e4f1b-7c3d-4e8a-b5f2-9d1c6e3a8b70',
  fencingToken: 1,
  sessionLeaseGeneration: 12,
  claimedAtEpochMs: 1_767_225_600_000,
  expiresAtEpochMs: 1_767_225_600_000 + TTL,
  mode: { kind: 'next_turn' },
  inputs: [],
};
const draft = { sessionId, ingress: { scope: 'next_turn' as const }, input: INPUT_150 };
const request = { sessionId, fence: leaseFence(lease), owner: OWNER, leaseTtlMs: TTL, maxInputs: 1 };
const commit = finishingCommit(lease, [{ ...claim, inputs: [] }]);
// A claim completion lists the claimed ids.
commit.completedTurnInputClaims[0].inputIds = ['in-000000000017-0000000001'];

const calls: Record<string, () => unknown> = {
  enqueue: () => args.enqueue(draft),
  tryClaim: () => args.tryClaim(sessionId, OWNER, TTL),
  claimNext: () => args.claimNext(request),
  commit: () => args.commit(commit),
};

let sink = 0;
function timeUs(fn: () => unknown, n: number): number {
  const t0 = process.cpuUsage();
  for (let i = 0; i < n; i++) if (fn() !== undefined) sink++;
  const d = process.cpuUsage(t0);
  return (d.user + d.system) / n;
}

const perCall: Record<string, number[]> = Object.fromEntries(Object.keys(calls).map((k) => [k, []]));
const perCycle: number[] = [];
for (const fn of Object.values(calls)) timeUs(fn, ITERATIONS); // warm-up
for (let r = 0; r < ROUNDS; r++) {
  let total = 0;
  for (const [name, fn] of Object.entries(calls)) {
    const us = timeUs(fn, ITERATIONS);
    perCall[name].push(us);
    total += us;
  }
  perCycle.push(total);
}
const fmt = (xs: number[]) => {
  const s = spreadOf(xs);
  return `${round(s.median, 2)} (${round(s.min, 2)} – ${round(s.max, 2)})`;
};
for (const [name, xs] of Object.entries(perCall)) process.stdout.write(`${name.padEnd(10)} ${fmt(xs)} µs\n`);
process.stdout.write(`${'cycle'.padEnd(10)} ${fmt(perCycle)} µs  (${ROUNDS} rounds × ${ITERATIONS} calls)\n`);
// Keeps the results observable, so the loop cannot be optimised away.
(globalThis as { benchSink?: number }).benchSink = sink;
