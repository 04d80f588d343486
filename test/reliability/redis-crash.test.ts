/**
 * Redis crash (issue 7, SPEC 12): a private redis-server with `appendonly yes` and `appendfsync
 * always` is SIGKILLed under load (enqueuers, and committers that claim and complete inputs in
 * stamped CAS commits) and restarted on the same directory and port. Every acknowledged enqueue,
 * commit, completion and lease generation is there afterwards, and the store reported `durable`.
 * With `appendonly no` the store reports `inline`, and a crash indeed loses acknowledged writes.
 */
import { rmSync } from 'node:fs';
import { afterAll, expect, test } from 'vitest';
import {
  claimCompletion,
  createRedisRuntimeStore,
  isStoreError,
  type PendingTurnInputDraft,
  type RuntimeCommit,
  type RuntimeCommitResult,
  type RuntimeStore,
  type SessionExecutionLease,
  turnCommitHash,
} from '../../src/index.js';
import { redisServerBinary, type SpawnedRedis, spawnRedis } from '../support/redis-server.js';

const servers: SpawnedRedis[] = [];
const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(servers.map((s) => s.stop({ keepDir: true })));
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const OWNER = { ownerId: 'committer', incarnationId: 'committer:1', liveness: { kind: 'opaque' as const } };

interface AckedCommit {
  sessionId: string;
  commit: RuntimeCommit;
  result: RuntimeCommitResult;
  completed: string[];
}

function assertBackend(e: unknown, problems: string[], what: string): void {
  if (!isStoreError(e, 'Backend')) problems.push(`${what}: ${isStoreError(e) ? e.code : String(e)}`);
}

test.skipIf(!redisServerBinary())(
  'appendonly yes + appendfsync always: SIGKILL under load, restart on the same dir: every acknowledged write is there; tier durable',
  { timeout: 90_000 },
  async () => {
    const server = await spawnRedis({ appendonly: true });
    servers.push(server);
    dirs.push(server.dir);
    const store = await createRedisRuntimeStore({ redis: server.url, keyPrefix: 'crash', idleDispatch: false });
    expect(store.durabilityTier()).toBe('durable');
    expect(store.session('x').durabilityTier()).toBe('durable');

    const problems: string[] = [];
    const ackedEnqueues: Array<{ draft: PendingTurnInputDraft; inputId: string }> = [];
    const ackedCommits: AckedCommit[] = [];
    const leases = new Map<string, SessionExecutionLease>();
    let crashed = false;
    let errorsAfterCrash = 0;

    const enqueuer = async (e: number) => {
      for (let n = 0; !crashed; n++) {
        const draft: PendingTurnInputDraft = {
          sessionId: `in}:${n % 10}`,
          sourceKey: `e${e}-${n}`,
          ingress: n % 3 === 0 ? { scope: 'active_turn', turnId: `t${n % 4}` } : { scope: 'next_turn' },
          input: { e, n, text: 'x'.repeat(n % 50) },
        };
        try {
          const row = await store.enqueuePendingTurnInput(draft);
          ackedEnqueues.push({ draft, inputId: row.inputId });
        } catch (err) {
          assertBackend(err, problems, 'enqueue');
          errorsAfterCrash++;
        }
      }
    };

    const committer = async (c: number) => {
      const sessionId = `commit}{${c}`;
      const acquired = await store.tryClaimSessionExecutionLease(sessionId, OWNER, 600_000);
      if (acquired.outcome !== 'acquired') throw new Error('lease not acquired');
      const lease = acquired.lease;
      leases.set(sessionId, lease);
      let head = 0;
      for (let k = 1; !crashed; k++) {
        try {
          await store.enqueuePendingTurnInput({
            sessionId,
            sourceKey: `c-${k}`,
            ingress: { scope: 'next_turn' },
            input: { k },
          });
          const claim = await store.claimNextTurnInputs({
            sessionId,
            fence: lease,
            owner: OWNER,
            leaseTtlMs: 600_000,
            maxInputs: 5,
          });
          const commit: RuntimeCommit = {
            sessionId,
            expectedHeadRevision: head,
            sessionExecutionLease: lease,
            config: { k },
            agentFrames: [],
            currentAgentFrameId: 'main',
            graph: { kind: 'append', nodes: [{ nodeId: `n${k}`, timestamp: 't', k }], leafNodeId: `n${k}` },
            checkpoint: { turnState: { k }, toolState: { k } },
            usageDeltas: [],
            completedTurnInputClaims: claim ? [claimCompletion(claim)] : [],
            committedAttachmentIds: [],
          };
          commit.turnCommit = { sessionId, turnId: `turn-${k}`, turnCommitHash: turnCommitHash(commit) };
          const result = await store.session(sessionId).commitRuntimeState(commit);
          head = result.headRevision;
          ackedCommits.push({ sessionId, commit, result, completed: claim ? claim.inputs.map((i) => i.inputId) : [] });
        } catch (err) {
          assertBackend(err, problems, 'commit path');
          errorsAfterCrash++;
          return;
        }
      }
    };

    const loops = [0, 1, 2, 3].map(enqueuer).concat([0, 1].map(committer));
    while (ackedEnqueues.length < 400 || ackedCommits.length < 60) await new Promise((r) => setTimeout(r, 20));
    await server.stop({ crash: true, keepDir: true });
    const atCrash = { enqueues: ackedEnqueues.length, commits: ackedCommits.length };
    // Let the loops meet the dead server for a moment; their calls must fail with Backend, not hang.
    await new Promise((r) => setTimeout(r, 300));
    crashed = true;
    await Promise.all(loops);
    expect(problems).toEqual([]);
    await store.close();

    const restarted = await spawnRedis({ port: server.port, dir: server.dir, appendonly: true });
    servers.push(restarted);
    const after: RuntimeStore = await createRedisRuntimeStore({
      redis: restarted.url,
      keyPrefix: 'crash',
      idleDispatch: false,
    });
    expect(after.durabilityTier()).toBe('durable');

    // Enqueues: a source-key replay returns the stored row; a lost row would come back as a new id.
    const lostEnqueues: string[] = [];
    for (const { draft, inputId } of ackedEnqueues) {
      const row = await after.enqueuePendingTurnInput(draft);
      if (row.inputId !== inputId) lostEnqueues.push(draft.sourceKey ?? '?');
    }
    // Commits: each stamped commit replays to its acknowledged result (without a fence, which a
    // lost stamp would need); completions are completed; heads and lease generations are there.
    const lostCommits: string[] = [];
    for (const a of ackedCommits) {
      const { sessionExecutionLease: _fence, ...unfenced } = a.commit;
      try {
        const replay = await after.session(a.sessionId).commitRuntimeState(unfenced);
        if (JSON.stringify(replay) !== JSON.stringify(a.result))
          lostCommits.push(`${a.sessionId}/${a.commit.turnCommit?.turnId}: other result`);
      } catch (e) {
        lostCommits.push(`${a.sessionId}/${a.commit.turnCommit?.turnId}: ${isStoreError(e) ? e.code : e}`);
      }
      if (a.completed.length > 0) {
        const outcomes = await after.cancelPendingTurnInputs(
          a.sessionId,
          a.completed.map((value) => ({ kind: 'input_id' as const, value })),
        );
        for (const o of outcomes)
          if (o.outcome.outcome !== 'already_completed') lostCommits.push(`${o.target.value}: ${o.outcome.outcome}`);
      }
    }
    for (const [sessionId, lease] of leases) {
      const last = ackedCommits.filter((a) => a.sessionId === sessionId).at(-1);
      const read = await after.session(sessionId).loadSession({ kind: 'full_graph' });
      expect(read?.headRevision ?? 0).toBeGreaterThanOrEqual(last?.result.headRevision ?? 0);
      const busy = await after.tryClaimSessionExecutionLease(sessionId, { ownerId: 'other', incarnationId: 'o' }, 1000);
      expect(busy.outcome).toBe('busy');
      if (busy.outcome === 'busy') expect(busy.holder.fencingToken).toBe(lease.fencingToken);
    }
    console.log(
      `[redis-crash] SIGKILL after ${atCrash.enqueues} acknowledged enqueues and ${atCrash.commits} acknowledged commits ` +
        `(${ackedEnqueues.length} / ${ackedCommits.length} in all, ${errorsAfterCrash} calls failed with Backend); ` +
        `after restart: lost enqueues ${lostEnqueues.length}, lost commits ${lostCommits.length}`,
    );
    expect(lostEnqueues).toEqual([]);
    expect(lostCommits).toEqual([]);
    await after.close();
  },
);

test.skipIf(!redisServerBinary())(
  'appendonly no: the tier is inline (and a crash does lose acknowledged writes)',
  async () => {
    const server = await spawnRedis({ appendonly: false });
    servers.push(server);
    dirs.push(server.dir);
    const store = await createRedisRuntimeStore({ redis: server.url, keyPrefix: 'inline', idleDispatch: false });
    expect(store.durabilityTier()).toBe('inline');
    const draft: PendingTurnInputDraft = { sessionId: 's', sourceKey: 'k', ingress: { scope: 'next_turn' }, input: 1 };
    const row = await store.enqueuePendingTurnInput(draft);
    await store.close();
    await server.stop({ crash: true, keepDir: true });
    const restarted = await spawnRedis({ port: server.port, dir: server.dir, appendonly: false });
    servers.push(restarted);
    const after = await createRedisRuntimeStore({ redis: restarted.url, keyPrefix: 'inline', idleDispatch: false });
    expect(after.durabilityTier()).toBe('inline');
    expect(await after.listPendingTurnInputs('s')).toEqual([]);
    expect((await after.enqueuePendingTurnInput(draft)).inputId).not.toBe(row.inputId);
    await after.close();
  },
);
