/**
 * Hostile identifiers end to end (issue 7, SPEC 2.3 and 10.3): pairs of session ids that collide
 * under naive key concatenation (`a` / `a}:x`, `a:b` / `a`, `{b}` / `b`, `%41` / `A`, newlines,
 * NFC/NFD twins, 4096-byte ids, ...), whose input ids, source keys, turn ids, node ids and
 * attachment ids collide the same way. For each pair (both orders):
 *   1. session Y gets inputs, a live lease, claims, a commit with nodes, meta and attachments;
 *   2. every method is then used on session X with the very same ids;
 *   3. Y's observable state (list, graph, every node, meta, lease holder, attachment refs) is
 *      unchanged, every Redis key under the prefix belongs to `<p>:{enc(X)}:`, `<p>:{enc(Y)}:`, the
 *      shard or the layout key (enc = SPEC 10.3's encoding, computed here independently), and
 *   4. every result on Redis equals, after normalising generated ids and tokens, the result of the
 *      same calls on the in-memory store (whose maps cannot collide).
 */
import { expect, test } from 'vitest';
import {
  claimCompletion,
  createInMemoryRuntimeStore,
  createRedisRuntimeStore,
  type LeaseOwnerIdentity,
  leaseFence,
  type RuntimeStore,
  type SessionExecutionLease,
  type TurnInputClaim,
} from '../../src/index.js';
import { capture, newRunState, normalise, type RunState } from '../model/model.js';
import { adminClient, redisUrl, snapshotPrefix, testPrefix } from '../support/prefix.js';

const LONG = 'é'.repeat(2047) + 'xy'; // 4096 bytes in UTF-8
const LONG_TWIN = 'é'.repeat(2047) + 'xz';
const PAIRS: Array<[string, string]> = [
  ['a', 'a}:x'],
  ['a:b', 'a'],
  ['{b}', 'b'],
  ['%41', 'A'],
  ['x\ny', 'x y'],
  ['é', 'e\u0301'],
  [LONG, LONG_TWIN],
  [':', '::'],
  ['s}{', 's'],
  ['😀', '\uD83D\uDE00 '],
];
/**
 * Ids used inside both sessions: they collide with each other and with the session ids. The long
 * one has 4092 bytes, so that node ids made of it plus `#n` stay within the 4096-byte limit.
 */
const IDS = ['b', 'b:c', 'a}:x', '{b}', '%41', 'A', 'x\ny', 'é', 'e\u0301', LONG.slice(3), ':'];

const OWNER: LeaseOwnerIdentity = { ownerId: 'o:{1}', incarnationId: 'i\n1', liveness: { kind: 'opaque' } };
const OTHER: LeaseOwnerIdentity = { ownerId: 'probe', incarnationId: 'probe', liveness: { kind: 'opaque' } };

/** SPEC 10.3: UTF-8 bytes; keep A-Z a-z 0-9 . _ ~ -; every other byte as %XX (uppercase). */
function enc(id: string): string {
  let out = '';
  for (const b of Buffer.from(id, 'utf8')) {
    const c = String.fromCharCode(b);
    out += /[A-Za-z0-9._~-]/.test(c) ? c : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

interface Session {
  lease?: SessionExecutionLease;
  claims: TurnInputClaim[];
}

/** Runs `fn` on a backend, returning its normalised outcome (value or error code + details). */
async function run(rs: RunState, fn: (s: RuntimeStore) => Promise<unknown>): Promise<unknown> {
  return normalise(await capture(() => fn(rs.store)), rs);
}

function commitFor(sessionId: string, st: Session, n: number, extra: Record<string, unknown> = {}) {
  return {
    sessionId,
    sessionExecutionLease: st.lease ? leaseFence(st.lease) : undefined,
    config: { sessionId, n },
    agentFrames: [{ sessionId }],
    currentAgentFrameId: IDS[n % IDS.length],
    graph: {
      kind: 'append' as const,
      nodes: IDS.slice(0, 4).map((id, i) => ({
        nodeId: `${id}#${n}`,
        parentNodeId: i ? `${IDS[i - 1]}#${n}` : undefined,
        timestamp: 't',
        sessionId,
      })),
      leafNodeId: `${IDS[3]}#${n}`,
    },
    checkpoint: { turnState: { sessionId }, toolState: { sessionId } },
    usageDeltas: [
      {
        source: IDS[1],
        model: IDS[2],
        usage: {
          inputTokens: 1,
          outputTokens: 1,
          cacheReadInputTokens: 0,
          cacheWriteInputTokens: 0,
          reasoningOutputTokens: 0,
        },
      },
    ],
    completedTurnInputClaims: st.claims.map(claimCompletion),
    committedAttachmentIds: IDS.slice(0, 3),
    ...extra,
  };
}

/** Fills session `s` with one of everything; returns the per-session handles. */
async function populate(rs: RunState, s: string, results: unknown[]): Promise<Session> {
  const st: Session = { claims: [] };
  for (const [i, id] of IDS.entries()) {
    results.push(
      await run(rs, (store) =>
        store.enqueuePendingTurnInput({
          sessionId: s,
          inputId: id,
          sourceKey: IDS[(i + 1) % IDS.length],
          ingress: i % 2 ? { scope: 'next_turn' } : { scope: 'active_turn', turnId: IDS[i % 3] },
          input: { s, id },
        }),
      ),
    );
  }
  const got = await rs.store.tryClaimSessionExecutionLease(s, OWNER, 3_600_000);
  results.push(normalise(got, rs));
  if (got.outcome === 'acquired') st.lease = got.lease;
  const fence = st.lease ? leaseFence(st.lease) : undefined;
  for (const turnId of IDS.slice(0, 3)) {
    const claim = await rs.store.claimActiveTurnInputs({
      sessionId: s,
      fence: fence!,
      owner: OWNER,
      turnId,
      checkpoint: 'after_work',
      leaseTtlMs: 1000,
      maxInputs: 1,
    });
    results.push(normalise(claim, rs));
    if (claim) st.claims.push(claim);
  }
  const next = await rs.store.claimNextTurnInputs({
    sessionId: s,
    fence: fence!,
    owner: OWNER,
    leaseTtlMs: 1000,
    maxInputs: 2,
  });
  results.push(normalise(next, rs));
  results.push(
    await run(rs, (store) =>
      store.session(s).commitRuntimeState({
        ...commitFor(s, { ...st, claims: [] }, 1),
        turnCommit: { sessionId: s, turnId: IDS[0], turnCommitHash: 'h' },
      }),
    ),
  );
  results.push(
    await run(rs, (store) =>
      store.session(s).saveSessionMeta({
        sessionId: s,
        sessionName: s,
        createdAt: 'c',
        model: 'm',
        cwd: s,
        relation: { kind: 'child', parentSessionId: s, causedBy: { s } },
      }),
    ),
  );
  for (const id of IDS.slice(0, 4)) {
    results.push(
      await run(rs, (store) =>
        store.session(s).recordIntent({ attachmentId: id, sessionId: s, canonicalUri: `u:${s}`, intentAtEpochMs: 5 }),
      ),
    );
  }
  results.push(await run(rs, (store) => store.session(s).commitRefs(s, IDS.slice(0, 4))));
  if (next) st.claims.push(next);
  return st;
}

/** Read-only view of a session (and a lease probe that is `busy` while the lease is live). */
async function observe(rs: RunState, s: string): Promise<unknown> {
  const f = rs.store.session(s);
  const nodes: unknown[] = [];
  for (const id of IDS) for (const n of [1, 2, 3]) nodes.push(await f.loadNode(`${id}#${n}`));
  const refs: boolean[] = [];
  for (const id of IDS) refs.push(await f.holdsRef(s, id));
  return normalise(
    {
      list: await rs.store.listPendingTurnInputs(s),
      graph: await f.loadSession({ kind: 'full_graph' }),
      path: await f.loadSession({ kind: 'active_path' }),
      nodes,
      meta: await f.loadSessionMeta(),
      lease: await rs.store.tryClaimSessionExecutionLease(s, OTHER, 1000),
      refs,
    },
    rs,
  );
}

/** Every method on session `x` with the same ids `y` uses. */
async function attack(rs: RunState, x: string, st: Session, results: unknown[]): Promise<void> {
  const push = async (fn: (s: RuntimeStore) => Promise<unknown>) => results.push(await run(rs, fn));
  const fence = () =>
    st.lease ? leaseFence(st.lease) : { sessionId: x, owner: OWNER, leaseToken: 'none', fencingToken: 1 };
  await push((s) => s.listPendingTurnInputs(x));
  await push((s) =>
    s.cancelPendingTurnInputs(
      x,
      IDS.flatMap((value) => [
        { kind: 'input_id' as const, value },
        { kind: 'source_key' as const, value },
      ]),
    ),
  );
  await push((s) => s.cancelPendingTurnInput(x, IDS[1]));
  await push((s) => s.cancelPendingTurnInputSuffix(x, { kind: 'input_id', value: IDS[2] }));
  for (const [i, id] of IDS.entries()) {
    // Half of them replay-or-conflict on the session's own source keys, half are new rows.
    const sourceKey = i % 2 ? id : `${id}?`;
    await push((s) =>
      s.enqueuePendingTurnInput({
        sessionId: x,
        inputId: `${id}!`,
        sourceKey,
        ingress: { scope: 'active_turn', turnId: id },
        input: { x, id },
      }),
    );
  }
  await push((s) => s.renewSessionExecutionLease(fence(), 3_600_000));
  await push((s) => s.reclaimSessionExecutionLease(x, OTHER, fence(), 1000));
  for (const turnId of IDS.slice(0, 4)) {
    await push(async (s) => {
      const c = await s.claimActiveTurnInputs({
        sessionId: x,
        fence: fence(),
        owner: OWNER,
        turnId,
        checkpoint: 'before_completion',
        leaseTtlMs: 1,
        maxInputs: 3,
      });
      if (c) st.claims.push(c);
      return c;
    });
  }
  await push(async (s) => {
    const c = await s.claimNextTurnInputs({ sessionId: x, fence: fence(), owner: OWNER, leaseTtlMs: 1, maxInputs: 3 });
    if (c) st.claims.push(c);
    return c;
  });
  const [first, ...rest] = st.claims;
  if (first) await push((s) => s.abandonTurnInputClaim(first));
  await push((s) =>
    s.session(x).commitRuntimeState({
      ...commitFor(x, { ...st, claims: rest }, 2),
      turnCommit: { sessionId: x, turnId: IDS[1], turnCommitHash: 'h2' },
      interruptedTurnInputTurnId: IDS[0],
    }),
  );
  // Replays of the stamp under both turn ids, a replace_full with Y's node ids, CAS and reads.
  await push((s) =>
    s.session(x).commitRuntimeState({
      ...commitFor(x, { ...st, claims: [] }, 2),
      turnCommit: { sessionId: x, turnId: IDS[1], turnCommitHash: 'h2' },
    }),
  );
  await push((s) =>
    s.session(x).commitRuntimeState({
      ...commitFor(x, { ...st, claims: [] }, 3),
      turnCommit: { sessionId: x, turnId: IDS[0], turnCommitHash: 'h' },
    }),
  );
  await push((s) =>
    s.session(x).commitRuntimeState({
      ...commitFor(x, { ...st, claims: [] }, 3),
      expectedHeadRevision: 2,
      graph: {
        kind: 'replace_full',
        graph: { nodes: IDS.map((id) => ({ nodeId: `${id}#1`, timestamp: 't', x })), leafNodeId: `${IDS[0]}#1` },
      },
    }),
  );
  await push((s) => s.session(x).loadSession({ kind: 'active_path', leafNodeId: `${IDS[3]}#1` }));
  for (const id of IDS) await push((s) => s.session(x).loadNode(`${id}#1`));
  await push((s) =>
    s
      .session(x)
      .saveSessionMeta({ sessionId: x, sessionName: 'x', createdAt: 'c', model: 'm', relation: { kind: 'root' } }),
  );
  await push((s) => s.session(x).loadSessionMeta());
  for (const id of IDS.slice(0, 4)) {
    await push((s) =>
      s.session(x).recordIntent({ attachmentId: id, sessionId: x, canonicalUri: 'evil', intentAtEpochMs: 1 }),
    );
    await push((s) => s.session(x).holdsRef(x, id));
  }
  await push((s) => s.session(x).commitRefs(x, IDS.slice(0, 2)));
  await push((s) => s.session(x).forget(x, IDS[0]));
  await push((s) => s.session(x).forgetAgedUncommittedIntents(1_000_000));
  await push((s) => s.session(x).listAllRefs());
  await push((s) => s.session(x).hasLiveRefForId(IDS[3], 1_000_000));
  await push((s) => s.vacuum({ olderThanMs: 0 }));
  if (st.lease) {
    const lease = st.lease;
    await push((s) => s.releaseSessionExecutionLease(leaseFence(lease)));
  }
  await push((s) => s.tryClaimSessionExecutionLease(x, OWNER, 0));
  await push((s) => s.listPendingTurnInputs(x));
}

test.for(
  PAIRS.flatMap(([a, b]) => [[a, b] as const, [b, a] as const]).map(([x, y]) => ({
    x,
    y,
    label: `${JSON.stringify(x).slice(0, 24)} vs ${JSON.stringify(y).slice(0, 24)}`,
  })),
)(
  'hostile ids $label: every method on one session leaves the other untouched; Redis equals memory',
  { timeout: 60_000 },
  async ({ x, y }, ctx) => {
    const prefix = testPrefix(ctx);
    const redis = await createRedisRuntimeStore({ redis: redisUrl(), keyPrefix: prefix, idleDispatch: false });
    ctx.onTestFinished(() => redis.close());
    const backends = [newRunState('redis', redis), newRunState('memory', createInMemoryRuntimeStore())];
    const transcripts: unknown[][] = [];
    for (const rs of backends) {
      const results: unknown[] = [];
      const stY = await populate(rs, y, results);
      const before = await observe(rs, y);
      const stX = await populate(rs, x, results);
      await attack(rs, x, stX, results);
      const after = await observe(rs, y);
      expect(after, `${rs.name}: session ${JSON.stringify(y).slice(0, 40)} changed`).toEqual(before);
      results.push(before, await observe(rs, x));
      transcripts.push(results);
      void stY;
    }
    expect(transcripts[0]).toEqual(transcripts[1]);
    if (process.env.RTS_DEBUG_HOSTILE)
      console.log(transcripts[0].map((r) => JSON.stringify(r).slice(0, 150)).join('\n'));

    // Every key belongs to one of the two sessions, the shard or the layout key.
    const keys = Object.keys(await snapshotPrefix(adminClient(), prefix));
    const own = [`${prefix}:{${enc(x)}}:`, `${prefix}:{${enc(y)}}:`];
    const stray = keys.filter(
      (k) => !own.some((p) => k.startsWith(p)) && !k.startsWith(`${prefix}:shard:{`) && k !== `${prefix}:layout`,
    );
    expect(stray).toEqual([]);
    expect(keys.some((k) => k.startsWith(own[0]))).toBe(true);
    expect(keys.some((k) => k.startsWith(own[1]))).toBe(true);
    for (const k of keys) expect(k).not.toMatch(/[\s]/);
  },
);
