/**
 * Connection faults (issue 7, SPEC 2.6 and 13): an admin connection kills the store's connection
 * (CLIENT LIST, then CLIENT KILL ID) at random moments while enqueuers, a committer and a reader
 * work. Every call either succeeds or rejects with StoreError `Backend`, nothing else, and none
 * hangs. Retrying an enqueue with a source key, and a stamped commit, until they succeed never
 * duplicates anything: one row per source key, one head revision and one node per turn, every
 * completed input exactly once.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { expect, test } from 'vitest';
import {
  claimCompletion,
  createRedisRuntimeStore,
  isStoreError,
  type LeaseOwnerIdentity,
  leaseCompletion,
  type RuntimeCommit,
  type RuntimeCommitResult,
  type RuntimeStore,
  type SessionExecutionLease,
  type TurnInputClaim,
  turnCommitHash,
} from '../../src/index.js';
import { redisUrl, testPrefix } from '../support/prefix.js';

const OWNER: LeaseOwnerIdentity = { ownerId: 'faulty', incarnationId: 'faulty:1', liveness: { kind: 'opaque' } };
const HANG_MS = 15_000;

class Calls {
  ok = 0;
  backend = 0;
  problems: string[] = [];

  /** Runs `fn`; returns its value, or undefined after a Backend rejection; anything else is a problem. */
  async try<T>(what: string, fn: () => Promise<T>): Promise<{ value: T } | undefined> {
    let timer: NodeJS.Timeout | undefined;
    const hang = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`HANG: ${what} did not settle within ${HANG_MS} ms`)), HANG_MS);
    });
    try {
      const value = await Promise.race([fn(), hang]);
      this.ok++;
      return { value };
    } catch (e) {
      if (isStoreError(e, 'Backend')) {
        this.backend++;
        return undefined;
      }
      this.problems.push(`${what}: ${isStoreError(e) ? `${e.code} ${JSON.stringify(e.details)}` : String(e)}`);
      return undefined;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Retries until success (the retry-safe operations of SPEC 13). */
  async until<T>(what: string, fn: () => Promise<T>): Promise<T> {
    for (let attempt = 0; attempt < 500; attempt++) {
      const r = await this.try(what, fn);
      if (r) return r.value;
      if (this.problems.length > 0) throw new Error(this.problems.join('\n'));
      await new Promise((res) => setTimeout(res, Math.min(100, 5 * (attempt + 1))));
    }
    throw new Error(`${what}: no success in 500 attempts`);
  }
}

/**
 * Two client set-ups: ioredis's defaults (in-flight commands are re-sent after the reconnect, so a
 * script may run twice: the retry-safety rules must hold there too), and a fail-fast client (no
 * re-send, no offline queue), where the kills surface as Backend rejections.
 */
const CLIENTS = [
  { label: 'resending client (ioredis defaults, maxRetriesPerRequest 1)', options: { maxRetriesPerRequest: 1 } },
  {
    label: 'fail-fast client (no re-send, no offline queue)',
    options: { maxRetriesPerRequest: 0, autoResendUnfulfilledCommands: false, enableOfflineQueue: false },
  },
];

test.for(CLIENTS)(
  'CLIENT KILL at random points, $label: every call succeeds or rejects with Backend; retried enqueues and stamped commits never duplicate',
  { timeout: 120_000 },
  async ({ label, options }, ctx) => {
    const prefix = testPrefix(ctx);
    let stop = false;
    const name = `rts-victim-${randomBytes(4).toString('hex')}`;
    // The store runs on a client of ours so the killer can find its connection by name (set again on
    // every reconnect).
    const victim = new Redis(redisUrl(), { connectionName: name, lazyConnect: false, ...options });
    victim.on('error', () => undefined);
    if (victim.status !== 'ready') await new Promise((r) => victim.once('ready', r));
    const store: RuntimeStore = await createRedisRuntimeStore({
      redis: victim,
      keyPrefix: prefix,
      idleDispatch: false,
    });
    const killerConn = new Redis(redisUrl());
    ctx.onTestFinished(async () => {
      stop = true;
      await store.close();
      victim.disconnect();
      killerConn.disconnect();
    });

    let kills = 0;
    // Kills land at a random moment 1-20 ms into each connection's life, so every connection gets
    // some calls through (killing faster than ioredis reconnects would only starve the workload).
    const killer = (async () => {
      while (!stop) {
        while (!stop && victim.status !== 'ready') await new Promise((r) => setTimeout(r, 1));
        await new Promise((r) => setTimeout(r, 1 + Math.floor(Math.random() * 20)));
        const list = String(await killerConn.call('CLIENT', 'LIST'));
        for (const line of list.split('\n')) {
          if (!line.includes(` name=${name} `)) continue;
          const id = /(?:^|\s)id=(\d+)/.exec(line)?.[1];
          if (id) kills += Number(await killerConn.call('CLIENT', 'KILL', 'ID', id));
        }
      }
    })();

    const calls = new Calls();

    // Enqueuers: 4 sessions x 120 inputs, each retried with its source key until acknowledged.
    const ENQ_SESSIONS = ['f}:0', 'f{1}', 'f%2', 'f 3'];
    const PER_SESSION = 120;
    const idsByKey = new Map<string, Set<string>>();
    const enqueuer = async (sessionId: string, from = 0) => {
      for (let k = from; k < PER_SESSION; k++) {
        const sourceKey = `k${k}`;
        const draft = { sessionId, sourceKey, ingress: { scope: 'next_turn' as const }, input: { k, sessionId } };
        // Sometimes ask again after a success too: a replay must give the same row.
        const times = k % 10 === 0 ? 2 : 1;
        for (let t = 0; t < times; t++) {
          const row = await calls.until(`enqueue ${sessionId}/${sourceKey}`, () =>
            store.enqueuePendingTurnInput(draft),
          );
          const key = `${sessionId}/${sourceKey}`;
          const set = idsByKey.get(key) ?? new Set();
          set.add(row.inputId);
          idsByKey.set(key, set);
        }
      }
    };

    // Committer: per turn, one input (source key), a claim, and a stamped CAS commit completing it.
    const TURNS = 40;
    const commitSession = 'commit}:{s';
    const results = new Map<number, RuntimeCommitResult[]>();
    const completedBy = new Map<string, number[]>();
    const committer = async () => {
      let lease: SessionExecutionLease = await acquire();
      async function acquire(): Promise<SessionExecutionLease> {
        const r = await calls.until('tryClaim', () =>
          store.tryClaimSessionExecutionLease(commitSession, OWNER, 600_000),
        );
        if (r.outcome !== 'acquired') throw new Error('lease busy');
        return r.lease;
      }
      for (let k = 1; k <= TURNS; k++) {
        const input = await calls.until(`enqueue turn ${k}`, () =>
          store.enqueuePendingTurnInput({
            sessionId: commitSession,
            sourceKey: `turn-${k}`,
            ingress: { scope: 'next_turn' },
            input: { k },
          }),
        );
        let claim: TurnInputClaim | null = null;
        while (!claim) {
          const r = await calls.try('claimNext', () =>
            store.claimNextTurnInputs({
              sessionId: commitSession,
              fence: lease,
              owner: OWNER,
              leaseTtlMs: 600_000,
              maxInputs: 10,
            }),
          );
          if (calls.problems.length > 0) throw new Error(calls.problems.join('\n'));
          if (r?.value) {
            claim = r.value;
            break;
          }
          // Unknown outcome (Backend) or null after a hidden success: end the generation, which frees
          // the rows, and start a new one (SPEC 13, retry guidance for claims).
          const done = leaseCompletion(lease);
          await calls.until('release', () => store.releaseSessionExecutionLease(done));
          lease = await acquire();
        }
        expect(claim.inputs.map((i) => i.inputId)).toContain(input.inputId);
        const commit: RuntimeCommit = {
          sessionId: commitSession,
          expectedHeadRevision: k - 1,
          sessionExecutionLease: lease,
          config: { k },
          agentFrames: [],
          currentAgentFrameId: 'main',
          graph: {
            kind: 'append',
            nodes: [{ nodeId: `n${k}`, timestamp: 't', inputIds: claim.inputs.map((i) => i.inputId) }],
            leafNodeId: `n${k}`,
          },
          checkpoint: { turnState: { k } },
          usageDeltas: [
            {
              source: 'turn',
              model: 'm',
              usage: {
                inputTokens: 1,
                outputTokens: 1,
                cacheReadInputTokens: 0,
                cacheWriteInputTokens: 0,
                reasoningOutputTokens: 0,
              },
            },
          ],
          completedTurnInputClaims: [claimCompletion(claim)],
          committedAttachmentIds: [],
        };
        commit.turnCommit = { sessionId: commitSession, turnId: `turn-${k}`, turnCommitHash: turnCommitHash(commit) };
        // Sometimes send it again after the success: the replay returns the same result.
        const times = k % 7 === 0 ? 2 : 1;
        for (let t = 0; t < times; t++) {
          const result = await calls.until(`commit turn ${k}`, () =>
            store.session(commitSession).commitRuntimeState(commit),
          );
          results.set(k, [...(results.get(k) ?? []), result]);
        }
        for (const i of claim.inputs) completedBy.set(i.inputId, [...(completedBy.get(i.inputId) ?? []), k]);
      }
      await calls.until('release', () => store.releaseSessionExecutionLease(leaseCompletion(lease)));
    };

    // Reader: read-only calls and harmless cancels; only success or Backend is acceptable.
    const reader = async () => {
      while (!stop) {
        // A fail-fast client rejects at once while reconnecting: yield to timers (and the reconnect).
        await new Promise((r) => setTimeout(r, 3));
        await calls.try('list', () => store.listPendingTurnInputs(ENQ_SESSIONS[0]));
        await calls.try('load', () => store.session(commitSession).loadSession({ kind: 'active_path' }));
        await calls.try('loadNode', () => store.session(commitSession).loadNode('n1'));
        await calls.try('cancel ghost', () => store.cancelPendingTurnInput(ENQ_SESSIONS[1], 'ghost'));
        await calls.try('meta', () => store.session(commitSession).loadSessionMeta());
        await calls.try('refs', () => store.session(commitSession).listAllRefs());
      }
    };

    const readerDone = reader();
    await Promise.all([...ENQ_SESSIONS.map((sid) => enqueuer(sid)), committer()]);
    // On a fast machine the workload can finish before many kills landed: replay every enqueue
    // (each must return its row) until at least MIN_KILLS connections were killed.
    const MIN_KILLS = 30;
    for (let round = 0; kills < MIN_KILLS && round < 50; round++) {
      await Promise.all(ENQ_SESSIONS.map((sid) => enqueuer(sid, PER_SESSION - 30)));
    }
    stop = true;
    await Promise.all([readerDone, killer]);
    expect(calls.problems).toEqual([]);

    // Verification on a clean connection.
    const check = await createRedisRuntimeStore({ redis: redisUrl(), keyPrefix: prefix, idleDispatch: false });
    try {
      for (const [key, ids] of idsByKey) expect(ids.size, `${key} answered with several ids`).toBe(1);
      for (const s of ENQ_SESSIONS) {
        const rows = await check.listPendingTurnInputs(s);
        expect(rows.length).toBe(PER_SESSION);
        expect(new Set(rows.map((r) => r.sourceKey)).size).toBe(PER_SESSION);
      }
      const read = await check.session(commitSession).loadSession({ kind: 'full_graph' });
      expect(read?.headRevision).toBe(TURNS);
      expect(read?.graph.nodes.map((n) => n.nodeId)).toEqual(Array.from({ length: TURNS }, (_, i) => `n${i + 1}`));
      expect(read?.tokenLedger).toEqual([
        {
          source: 'turn',
          model: 'm',
          usage: {
            inputTokens: TURNS,
            outputTokens: TURNS,
            cacheReadInputTokens: 0,
            cacheWriteInputTokens: 0,
            reasoningOutputTokens: 0,
          },
        },
      ]);
      for (const [k, rs] of results) for (const r of rs) expect(r, `turn ${k}`).toEqual(rs[0]);
      for (const [id, turns] of completedBy) expect(turns, id).toHaveLength(1);
      const outcomes = await check.cancelPendingTurnInputs(
        commitSession,
        [...completedBy.keys()].map((value) => ({ kind: 'input_id' as const, value })),
      );
      expect(outcomes.every((o) => o.outcome.outcome === 'already_completed')).toBe(true);
      expect(await check.listPendingTurnInputs(commitSession)).toEqual([]);
    } finally {
      await check.close();
    }
    console.log(
      `[connection-faults] ${label}: ${kills} connections killed; ${calls.ok} calls succeeded, ${calls.backend} rejected with Backend, ` +
        `0 with anything else, 0 hung; ${ENQ_SESSIONS.length * PER_SESSION} source keys -> ${ENQ_SESSIONS.length * PER_SESSION} rows; ` +
        `${TURNS} stamped commits -> head ${TURNS}, ${TURNS} nodes`,
    );
    expect(kills).toBeGreaterThanOrEqual(MIN_KILLS);
  },
);
