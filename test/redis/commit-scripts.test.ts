/**
 * Redis-only tests of the session commit store scripts (lua/commit-runtime-state.lua,
 * lua/load-session.lua, the attachment manifest scripts): all-or-nothing checked by reading back
 * every key of the prefix, the CAS race on two connections, byte-exact executionState, blob
 * collection, stored schemaVersion checks, replay without a lease, the claim-completion walk and
 * the shard-level attachment queries. The shared conformance suite covers the rest.
 */
import { describe, expect, type TestContext, test } from 'vitest';
import { isStoreError, type StoreError, type StoreErrorCode } from '../../src/contract/errors.js';
import type {
  LeaseOwnerIdentity,
  PendingTurnInput,
  RuntimeCommit,
  RuntimeStore,
  SessionExecutionLease,
  SessionNodeRecord,
  TurnInputClaim,
} from '../../src/contract/types.js';
import { canonical, sha256hex } from '../../src/core/canonical.js';
import { claimCompletion, leaseCompletion, leaseFence } from '../../src/core/projections.js';
import { turnCommitHash } from '../../src/core/turn-commit-hash.js';
import { createRedisRuntimeStore, type RedisRuntimeStore } from '../../src/redis/redis-store.js';
import { adminClient, redisTarget, snapshotPrefix, testPrefix } from '../support/prefix.js';

const TTL = 60_000;

function O(x: string): LeaseOwnerIdentity {
  return { ownerId: x, incarnationId: `${x}:1`, liveness: { kind: 'opaque' } };
}

async function fresh(ctx: TestContext, prefix = testPrefix(ctx)): Promise<{ store: RuntimeStore; prefix: string }> {
  const store = await createRedisRuntimeStore({ redis: redisTarget(), keyPrefix: prefix, idleDispatch: false });
  ctx.onTestFinished(() => store.close());
  return { store, prefix };
}

function keyOf(store: RuntimeStore, sessionId: string, name: 'head' | 'blobs' | 'nodes' | 'order' | 'inputs'): string {
  return (store as RedisRuntimeStore).ctx.keys(sessionId).byName[name];
}

async function acquire(store: RuntimeStore, sessionId: string, owner = O('w')): Promise<SessionExecutionLease> {
  const r = await store.tryClaimSessionExecutionLease(sessionId, owner, TTL);
  if (r.outcome !== 'acquired') throw new Error('lease busy');
  return r.lease;
}

function nt(store: RuntimeStore, sessionId: string, text: string): Promise<PendingTurnInput> {
  return store.enqueuePendingTurnInput({ sessionId, ingress: { scope: 'next_turn' }, input: { text } });
}

function at(store: RuntimeStore, sessionId: string, turnId: string, text: string): Promise<PendingTurnInput> {
  return store.enqueuePendingTurnInput({ sessionId, ingress: { scope: 'active_turn', turnId }, input: { text } });
}

async function claimNext(store: RuntimeStore, lease: SessionExecutionLease, maxInputs = 10): Promise<TurnInputClaim> {
  const claim = await store.claimNextTurnInputs({
    sessionId: lease.sessionId,
    fence: leaseFence(lease),
    owner: lease.owner,
    leaseTtlMs: TTL,
    maxInputs,
  });
  if (!claim) throw new Error('nothing claimed');
  return claim;
}

async function claimActive(store: RuntimeStore, lease: SessionExecutionLease, turnId: string, maxInputs = 10) {
  const claim = await store.claimActiveTurnInputs({
    sessionId: lease.sessionId,
    fence: leaseFence(lease),
    owner: lease.owner,
    turnId,
    checkpoint: 'after_work',
    leaseTtlMs: TTL,
    maxInputs,
  });
  if (!claim) throw new Error('nothing claimed');
  return claim;
}

function node(nodeId: string, parentNodeId?: string): SessionNodeRecord {
  const n: SessionNodeRecord = { nodeId, timestamp: '2025-01-01T00:00:00Z', body: { text: nodeId, list: [] } };
  if (parentNodeId !== undefined) n.parentNodeId = parentNodeId;
  return n;
}

function commitOf(sessionId: string, lease: SessionExecutionLease | undefined, extra: Partial<RuntimeCommit> = {}) {
  const c: RuntimeCommit = {
    sessionId,
    config: { model: 'm', empty: [], nested: { a: [] } },
    agentFrames: [],
    currentAgentFrameId: 'frame-0',
    graph: { kind: 'unchanged' },
    checkpoint: { turnState: { step: 1 } },
    usageDeltas: [],
    completedTurnInputClaims: [],
    committedAttachmentIds: [],
  };
  if (lease) c.sessionExecutionLease = leaseFence(lease);
  return { ...c, ...extra };
}

function stamped(c: RuntimeCommit, turnId: string): RuntimeCommit {
  return { ...c, turnCommit: { sessionId: c.sessionId, turnId, turnCommitHash: turnCommitHash(c) } };
}

async function rejection(p: Promise<unknown>): Promise<StoreError> {
  try {
    await p;
  } catch (e) {
    if (isStoreError(e)) return e;
    throw e;
  }
  throw new Error('expected a rejection');
}

async function expectCode(p: Promise<unknown>, code: StoreErrorCode, details?: Record<string, unknown>) {
  const e = await rejection(p);
  expect(e.code, e.message).toBe(code);
  if (details) expect(e.details).toEqual(details);
  return e;
}

describe('commitRuntimeState: all or nothing (every key of the prefix read back)', () => {
  test('every rejection path leaves every key unchanged', async (ctx) => {
    const { store, prefix } = await fresh(ctx);
    const s = 'sess:{a}/1 %x';
    const facet = store.session(s);
    const admin = adminClient();

    // A settled session with a stamp, a graph, usage, blobs and an attachment entry.
    let lease = await acquire(store, s);
    const first = stamped(
      commitOf(s, lease, {
        graph: { kind: 'replace_full', graph: { nodes: [node('root'), node('left', 'root')], leafNodeId: 'left' } },
        checkpoint: { turnState: { step: 0 }, toolState: { gen: 1 }, executionState: new Uint8Array([1, 2, 3]) },
        usageDeltas: [{ source: 'turn', model: 'm1', usage: u(3, 1) }],
      }),
      'turn-0',
    );
    const r1 = await facet.commitRuntimeState(first);
    expect(r1.headRevision).toBe(1);
    await facet.recordIntent({ sessionId: s, attachmentId: 'att-1', canonicalUri: 'blob://1', intentAtEpochMs: 5 });

    // Input: a (seq 1), b (seq 2), c (seq 3) next-turn; x1 active for t1 (seq 4).
    const a = await nt(store, s, 'a');
    await nt(store, s, 'b');
    await nt(store, s, 'c');
    await at(store, s, 't1', 'x1');
    const K1 = await claimNext(store, lease, 1);
    const K2 = await claimNext(store, lease, 1);
    await store.abandonTurnInputClaim(K2);
    const K3 = await claimNext(store, lease, 2); // b and c
    expect(K1.inputs.map((i) => i.inputId)).toEqual([a.inputId]);
    expect(K3.claimId).toBe('tic:2:2');
    expect(K3.inputs).toHaveLength(2);

    // A commit that would write everything: graph, blobs, usage, completions, deferral, stamps,
    // attachment stamp and the release.
    const full = (extra: Partial<RuntimeCommit> = {}) =>
      stamped(
        commitOf(s, lease, {
          graph: { kind: 'append', nodes: [node('n2', 'left')], leafNodeId: 'n2' },
          checkpoint: { turnState: { step: 2 }, toolState: { gen: 2 }, executionState: new Uint8Array([9]) },
          usageDeltas: [{ source: 'tool', model: 'm2', usage: u(5, 5) }],
          completedTurnInputClaims: [claimCompletion(K1)],
          interruptedTurnInputTurnId: 't1',
          committedAttachmentIds: ['att-1'],
          releaseSessionExecutionLease: leaseCompletion(lease),
          ...extra,
        }),
        'turn-1',
      );

    const cases: Array<[string, () => Promise<unknown>, StoreErrorCode, Record<string, unknown>?]> = [
      [
        'binding',
        () => facet.commitRuntimeState({ ...full({ releaseSessionExecutionLease: undefined }), sessionId: 'other' }),
        'SessionBindingMismatch',
        { boundSessionId: s, attemptedSessionId: 'other' },
      ],
      [
        'stamp names another session',
        () =>
          facet.commitRuntimeState({
            ...full(),
            turnCommit: { sessionId: 'other', turnId: 'turn-1', turnCommitHash: 'h' },
          }),
        'RuntimeTurnCommitConflict',
        { sessionId: s, turnId: 'turn-1' },
      ],
      [
        'stamp with another hash (no fence)',
        () =>
          facet.commitRuntimeState({
            ...full({ sessionExecutionLease: undefined }),
            turnCommit: { sessionId: s, turnId: 'turn-0', turnCommitHash: 'different' },
          }),
        'RuntimeTurnCommitConflict',
        { sessionId: s, turnId: 'turn-0' },
      ],
      [
        'fence absent',
        () => facet.commitRuntimeState(full({ sessionExecutionLease: undefined })),
        'SessionExecutionLeaseExpired',
        { sessionId: s, reason: 'no_lease_fence' },
      ],
      [
        'fence with a wrong token',
        () => facet.commitRuntimeState(full({ sessionExecutionLease: { ...leaseFence(lease), leaseToken: 'nope' } })),
        'SessionExecutionLeaseExpired',
        { sessionId: s },
      ],
      [
        'fence of another generation',
        () =>
          facet.commitRuntimeState(
            full({ sessionExecutionLease: { ...leaseFence(lease), fencingToken: lease.fencingToken + 1 } }),
          ),
        'SessionExecutionLeaseExpired',
        { sessionId: s },
      ],
      [
        'fence naming another session',
        () => facet.commitRuntimeState(full({ sessionExecutionLease: { ...leaseFence(lease), sessionId: 'other' } })),
        'SessionExecutionLeaseExpired',
        { sessionId: s },
      ],
      [
        'head CAS',
        () => facet.commitRuntimeState(full({ expectedHeadRevision: 5 })),
        'HeadRevisionConflict',
        { expected: 5, actual: 1 },
      ],
      [
        'head CAS against a first commit',
        () => facet.commitRuntimeState(full({ expectedHeadRevision: 0 })),
        'HeadRevisionConflict',
        { expected: 0, actual: 1 },
      ],
      [
        'queued-work claims',
        () =>
          facet.commitRuntimeState(
            full({
              completedQueueClaims: [
                { sessionId: s, claimId: 'q1', leaseToken: 't', batchIds: [] },
                { sessionId: s, claimId: 'q2', leaseToken: 't', batchIds: [] },
              ],
            }),
          ),
        'QueuedWorkClaimSuperseded',
        { sessionId: s, claimId: 'q1' },
      ],
      [
        'a superseded second completion (E10)',
        () => facet.commitRuntimeState(full({ completedTurnInputClaims: [claimCompletion(K1), claimCompletion(K2)] })),
        'TurnInputClaimSuperseded',
        { sessionId: s, claimId: K2.claimId },
      ],
      [
        'a completion with the wrong claim token',
        () =>
          facet.commitRuntimeState(
            full({ completedTurnInputClaims: [{ ...claimCompletion(K3), leaseToken: 'forged' }] }),
          ),
        'TurnInputClaimSuperseded',
        { sessionId: s, claimId: K3.claimId },
      ],
      [
        'a completion leaving an unlisted row of the claim',
        () =>
          facet.commitRuntimeState(
            full({ completedTurnInputClaims: [{ ...claimCompletion(K3), inputIds: [K3.inputs[0].inputId] }] }),
          ),
        'TurnInputClaimSuperseded',
        { sessionId: s, claimId: K3.claimId },
      ],
      [
        'a completion listing an unknown input',
        () =>
          facet.commitRuntimeState(
            full({
              completedTurnInputClaims: [{ ...claimCompletion(K1), inputIds: [a.inputId, 'ti_missing'] }],
            }),
          ),
        'TurnInputClaimSuperseded',
        { sessionId: s, claimId: K1.claimId },
      ],
      [
        'a completion of another session',
        () =>
          facet.commitRuntimeState(
            full({ completedTurnInputClaims: [{ ...claimCompletion(K1), sessionId: 'other' }] }),
          ),
        'TurnInputClaimSuperseded',
        { sessionId: 'other', claimId: K1.claimId },
      ],
      [
        'appending an existing node',
        () => facet.commitRuntimeState(full({ graph: { kind: 'append', nodes: [node('n3'), node('left')] } })),
        'InvalidInput',
        { issues: ['graph.nodes.1.nodeId: already exists in the session graph'] },
      ],
      [
        'a dangling ref',
        () =>
          facet.commitRuntimeState(
            full({ checkpoint: { turnState: null, pluginSnapshotRef: 'bogus', executionStateRef: sha256hex('x') } }),
          ),
        'InvalidInput',
      ],
    ];

    for (const [name, attempt, code, details] of cases) {
      const before = await snapshotPrefix(admin, prefix);
      const e = await rejection(attempt()).catch((err) => {
        throw new Error(`${name}: ${err.message}`);
      });
      expect(e.code, `${name}: ${e.message}`).toBe(code);
      if (details) expect(e.details, name).toEqual(details);
      if (name === 'a dangling ref') {
        const issues = e.details.issues as string[];
        expect(issues).toHaveLength(2);
        expect(issues[0]).toMatch(/^checkpoint\.pluginSnapshotRef: /);
        expect(issues[1]).toMatch(/^checkpoint\.executionStateRef: /);
      }
      expect(await snapshotPrefix(admin, prefix), name).toEqual(before);
    }

    // The same commit with valid completions succeeds and applies everything.
    const ok = await facet.commitRuntimeState(
      full({ completedTurnInputClaims: [claimCompletion(K1), claimCompletion(K3)], expectedHeadRevision: 1 }),
    );
    expect(ok.headRevision).toBe(2);
    expect(await store.listPendingTurnInputs(s)).toEqual([
      expect.objectContaining({ state: 'deferred_next_turn', ingress: { scope: 'next_turn' }, enqueueSeq: 4 }),
    ]);
    const outcome = await store.cancelPendingTurnInput(s, a.inputId);
    expect(outcome.outcome).toBe('already_completed');
    expect(await store.tryClaimSessionExecutionLease(s, O('other'), TTL)).toMatchObject({ outcome: 'acquired' });
    const [entry] = await adminClient().hvals((store as RedisRuntimeStore).ctx.keys(s).byName.att);
    expect(JSON.parse(entry)).toMatchObject({ attachmentId: 'att-1', committedAtEpochMs: expect.any(Number) });
    lease = undefined as never;
  });
});

function u(inputTokens: number, outputTokens: number, reasoningOutputTokens = 0) {
  return { inputTokens, outputTokens, cacheReadInputTokens: 0, cacheWriteInputTokens: 0, reasoningOutputTokens };
}

describe('commitRuntimeState: races, bytes, blobs, schema versions, replay', () => {
  test('two committers on separate connections with one expectedHeadRevision: exactly one wins', async (ctx) => {
    const { store: a, prefix } = await fresh(ctx);
    const { store: b } = await fresh(ctx, prefix);
    const s = 'race';
    const lease = await acquire(a, s);
    await a.session(s).commitRuntimeState(commitOf(s, lease));
    for (let round = 1; round <= 5; round++) {
      const results = await Promise.allSettled([
        a.session(s).commitRuntimeState(commitOf(s, lease, { expectedHeadRevision: round, config: { by: 'a' } })),
        b.session(s).commitRuntimeState(commitOf(s, lease, { expectedHeadRevision: round, config: { by: 'b' } })),
      ]);
      const won = results.filter((r) => r.status === 'fulfilled');
      const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      expect(won).toHaveLength(1);
      expect(lost).toHaveLength(1);
      expect((won[0] as PromiseFulfilledResult<{ headRevision: number }>).value.headRevision).toBe(round + 1);
      expect(isStoreError(lost[0].reason, 'HeadRevisionConflict')).toBe(true);
      expect(lost[0].reason.details).toEqual({ expected: round, actual: round + 1 });
    }
  });

  test('executionState round-trips byte-exact as a plain Uint8Array (all 256 values, and empty)', async (ctx) => {
    const { store } = await fresh(ctx);
    const s = 'bytes';
    const lease = await acquire(store, s);
    const all = new Uint8Array(512);
    for (let i = 0; i < 512; i++) all[i] = (i * 7 + 3) % 256;
    for (const bytes of [all, new Uint8Array(0), Buffer.from([0, 255, 0x80, 0xc3, 0x28]), all.subarray(100, 357)]) {
      const r = await store
        .session(s)
        .commitRuntimeState(commitOf(s, lease, { checkpoint: { turnState: [], executionState: bytes } }));
      expect(r.manifest.executionStateRef).toBe(sha256hex(bytes));
      const read = await store.session(s).loadSession({ kind: 'full_graph' });
      const got = read?.checkpoint?.executionState;
      expect(got).toBeDefined();
      expect(Object.getPrototypeOf(got)).toBe(Uint8Array.prototype);
      expect(Buffer.from(got as Uint8Array).equals(Buffer.from(bytes))).toBe(true);
      expect(read?.checkpoint?.turnState).toEqual([]);
      expect(read?.checkpoint?.executionStateRef).toBe(sha256hex(bytes));
    }
  });

  test('blobs the head no longer references are gone; kept refs survive', async (ctx) => {
    const { store } = await fresh(ctx);
    const s = 'blobs';
    const facet = store.session(s);
    const lease = await acquire(store, s);
    const blobs = () => adminClient().hkeys(keyOf(store, s, 'blobs'));
    const r1 = await facet.commitRuntimeState(
      commitOf(s, lease, {
        checkpoint: { turnState: 1, toolState: { gen: 1 }, pluginSnapshot: [], executionState: new Uint8Array([1]) },
      }),
    );
    expect((await blobs()).sort()).toEqual(
      [r1.checkpointRef, r1.manifest.toolStateRef, r1.manifest.pluginSnapshotRef, r1.manifest.executionStateRef].sort(),
    );
    // Keep the tool state by ref, replace the plugin snapshot, drop the execution state.
    const r2 = await facet.commitRuntimeState(
      commitOf(s, lease, {
        checkpoint: { turnState: 2, toolStateRef: r1.manifest.toolStateRef, pluginSnapshot: { p: 2 } },
      }),
    );
    expect(r2.manifest.toolStateRef).toBe(r1.manifest.toolStateRef);
    expect(r2.manifest.pluginSnapshotRef).toBe(sha256hex(canonical({ p: 2 })));
    expect(r2.checkpointRef).toBe(sha256hex(canonical(r2.manifest)));
    expect((await blobs()).sort()).toEqual(
      [r2.checkpointRef, r2.manifest.toolStateRef, r2.manifest.pluginSnapshotRef].sort(),
    );
    const read = await facet.loadSession({ kind: 'full_graph' });
    expect(read?.checkpoint).toEqual({
      turnState: 2,
      toolStateRef: r1.manifest.toolStateRef,
      toolState: { gen: 1 },
      pluginSnapshotRef: r2.manifest.pluginSnapshotRef,
      pluginSnapshot: { p: 2 },
    });
    // The dropped execution state's ref now dangles.
    await expectCode(
      facet.commitRuntimeState(
        commitOf(s, lease, { checkpoint: { turnState: 3, executionStateRef: r1.manifest.executionStateRef } }),
      ),
      'InvalidInput',
    );
    // A referenced blob removed by hand: loadSession is Backend.
    await adminClient().hdel(keyOf(store, s, 'blobs'), r1.manifest.toolStateRef as string);
    await expectCode(facet.loadSession({ kind: 'full_graph' }), 'Backend');
  });

  test('a stored head with a bad schemaVersion: the three schema codes, for commit and load', async (ctx) => {
    const { store, prefix } = await fresh(ctx);
    const s = 'schema';
    const facet = store.session(s);
    const lease = await acquire(store, s);
    await facet.commitRuntimeState(commitOf(s, lease));
    const admin = adminClient();
    const head = keyOf(store, s, 'head');
    const cases: Array<[() => Promise<unknown>, StoreErrorCode, Record<string, unknown>]> = [
      [
        () => admin.hdel(head, 'schemaVersion'),
        'MissingRecordSchemaVersion',
        { recordKind: 'session_head', expected: 1 },
      ],
      [
        () => admin.hset(head, 'schemaVersion', 'x'),
        'InvalidRecordSchemaVersion',
        { recordKind: 'session_head', actual: 'x', expected: 1 },
      ],
      [
        () => admin.hset(head, 'schemaVersion', '2'),
        'UnsupportedRecordSchemaVersion',
        { recordKind: 'session_head', actual: 2, expected: 1 },
      ],
    ];
    for (const [tamper, code, details] of cases) {
      await tamper();
      const before = await snapshotPrefix(admin, prefix);
      await expectCode(facet.commitRuntimeState(commitOf(s, lease)), code, details);
      await expectCode(facet.loadSession({ kind: 'full_graph' }), code, details);
      await expectCode(facet.loadSession({ kind: 'active_path' }), code, details);
      expect(await snapshotPrefix(admin, prefix)).toEqual(before);
    }
    // The replay check comes first: a stamped replay still answers with a bad head.
    await admin.hset(head, 'schemaVersion', '1');
    const stampedCommit = stamped(commitOf(s, lease), 'turn-x');
    const r = await facet.commitRuntimeState(stampedCommit);
    await admin.hset(head, 'schemaVersion', '2');
    expect(await facet.commitRuntimeState(stampedCommit)).toEqual(r);
    await expectCode(facet.commitRuntimeState(commitOf(s, lease)), 'UnsupportedRecordSchemaVersion');
  });

  test('a manifest blob with a bad schemaVersion: the three schema codes on load', async (ctx) => {
    const { store } = await fresh(ctx);
    const s = 'manifest';
    const facet = store.session(s);
    const lease = await acquire(store, s);
    const r = await facet.commitRuntimeState(commitOf(s, lease));
    const blobs = keyOf(store, s, 'blobs');
    const cases: Array<[string, StoreErrorCode, Record<string, unknown>]> = [
      ['{"turnState":null}', 'MissingRecordSchemaVersion', { recordKind: 'session_checkpoint', expected: 1 }],
      [
        '{"schemaVersion":"x","turnState":null}',
        'InvalidRecordSchemaVersion',
        { recordKind: 'session_checkpoint', actual: 'x', expected: 1 },
      ],
      [
        '{"schemaVersion":2,"turnState":null}',
        'UnsupportedRecordSchemaVersion',
        { recordKind: 'session_checkpoint', actual: 2, expected: 1 },
      ],
    ];
    for (const [manifest, code, details] of cases) {
      await adminClient().hset(blobs, r.checkpointRef, manifest);
      await expectCode(facet.loadSession({ kind: 'full_graph' }), code, details);
    }
  });

  test('a replay without a lease returns the first result deep-equal; a foreign release is ignored', async (ctx) => {
    const { store } = await fresh(ctx);
    const s = 'replay';
    const facet = store.session(s);
    const lease = await acquire(store, s);
    const c1 = stamped(
      commitOf(s, lease, {
        checkpoint: { turnState: { deep: [1, 2.5, 1e21, -0, 'x'], empty: {} }, toolState: [] },
        releaseSessionExecutionLease: leaseCompletion(lease),
      }),
      'turn-1',
    );
    const r1 = await facet.commitRuntimeState(c1);
    expect(r1.headRevision).toBe(1);
    const { sessionExecutionLease: _drop, ...noFence } = c1;
    expect(await facet.commitRuntimeState(noFence)).toEqual(r1);
    // Someone else holds the lease now; the replay's release does not match and is not applied.
    const other = await acquire(store, s, O('other'));
    expect(await facet.commitRuntimeState(c1)).toEqual(r1);
    const busy = await store.tryClaimSessionExecutionLease(s, O('third'), TTL);
    expect(busy).toMatchObject({ outcome: 'busy', holder: { leaseToken: other.leaseToken } });
    expect((await facet.loadSession({ kind: 'full_graph' }))?.headRevision).toBe(1);
    // The holder's own replay with its release applies the release.
    expect(await facet.commitRuntimeState({ ...c1, releaseSessionExecutionLease: leaseCompletion(other) })).toEqual(r1);
    expect(await store.tryClaimSessionExecutionLease(s, O('third'), TTL)).toMatchObject({ outcome: 'acquired' });
  });
});

describe('completion checks walk only the claim index from its first row', () => {
  test('active claims: an unlisted accepted row is found; listed completions settle', async (ctx) => {
    const { store } = await fresh(ctx);
    const s = 'active-walk';
    const facet = store.session(s);
    const lease = await acquire(store, s);
    for (let i = 0; i < 5; i++) await at(store, s, 't1', `x${i}`);
    const K = await claimActive(store, lease, 't1', 3);
    const L = await claimActive(store, lease, 't1', 2);
    await expectCode(
      facet.commitRuntimeState(
        commitOf(s, lease, {
          completedTurnInputClaims: [{ ...claimCompletion(K), inputIds: [K.inputs[0].inputId, K.inputs[2].inputId] }],
        }),
      ),
      'TurnInputClaimSuperseded',
      { sessionId: s, claimId: K.claimId },
    );
    const r = await facet.commitRuntimeState(
      commitOf(s, lease, { completedTurnInputClaims: [claimCompletion(L), claimCompletion(K)] }),
    );
    expect(r.headRevision).toBe(1);
    for (const i of [...K.inputs, ...L.inputs]) {
      expect((await store.cancelPendingTurnInput(s, i.inputId)).outcome).toBe('already_completed');
    }
  });

  test('next claims behind a backlog: a missing tail row is found', async (ctx) => {
    const { store } = await fresh(ctx);
    const s = 'next-walk';
    const facet = store.session(s);
    const lease = await acquire(store, s);
    for (let i = 0; i < 300; i++) await nt(store, s, `n${i}`);
    const K = await claimNext(store, lease, 4);
    const partial = { ...claimCompletion(K), inputIds: K.inputs.slice(0, 3).map((i) => i.inputId) };
    await expectCode(
      facet.commitRuntimeState(commitOf(s, lease, { completedTurnInputClaims: [partial] })),
      'TurnInputClaimSuperseded',
      { sessionId: s, claimId: K.claimId },
    );
    await facet.commitRuntimeState(commitOf(s, lease, { completedTurnInputClaims: [claimCompletion(K)] }));
    expect(await store.listPendingTurnInputs(s)).toHaveLength(296);
  });
});

describe('graph reads', () => {
  test('active_path stops at a missing ancestor and at a cycle; loadNode is a point lookup', async (ctx) => {
    const { store } = await fresh(ctx);
    const s = 'graph';
    const facet = store.session(s);
    const lease = await acquire(store, s);
    expect(await facet.loadSession({ kind: 'full_graph' })).toBeNull();
    expect(await facet.loadNode('a')).toBeNull();
    await facet.commitRuntimeState(
      commitOf(s, lease, {
        graph: {
          kind: 'replace_full',
          graph: { nodes: [node('b', 'ghost'), node('c', 'b'), node('x', 'y'), node('y', 'x')], leafNodeId: 'c' },
        },
      }),
    );
    const ids = (r: { graph: { nodes: SessionNodeRecord[] } } | null) => r?.graph.nodes.map((n) => n.nodeId);
    expect(ids(await facet.loadSession({ kind: 'active_path' }))).toEqual(['b', 'c']);
    const cyc = await facet.loadSession({ kind: 'active_path', leafNodeId: 'x' });
    expect(ids(cyc)).toEqual(['y', 'x']);
    expect(cyc?.graph.leafNodeId).toBe('x');
    const ghost = await facet.loadSession({ kind: 'active_path', leafNodeId: 'ghost' });
    expect(ghost?.graph).toEqual({ nodes: [], leafNodeId: 'ghost' });
    expect(await facet.loadNode('c')).toEqual(node('c', 'b'));
    // Append after replace, then replace again frees the ids.
    await facet.commitRuntimeState(commitOf(s, lease, { graph: { kind: 'append', nodes: [node('d', 'c')] } }));
    const full = await facet.loadSession({ kind: 'full_graph' });
    expect(ids(full)).toEqual(['b', 'c', 'x', 'y', 'd']);
    expect(full?.graph.leafNodeId).toBeUndefined();
    expect(await facet.loadSession({ kind: 'active_path' })).toMatchObject({ graph: { nodes: [] } });
    expect((await facet.loadSession({ kind: 'active_path' }))?.graph).not.toHaveProperty('leafNodeId');
    await facet.commitRuntimeState(
      commitOf(s, lease, { graph: { kind: 'replace_full', graph: { nodes: [node('d')] } } }),
    );
    expect(ids(await facet.loadSession({ kind: 'full_graph' }))).toEqual(['d']);
    expect(await facet.loadNode('c')).toBeNull();
    expect(await adminClient().hget(keyOf(store, s, 'head'), 'nodeCount')).toBe('1');
  });

  test('stored layout: `<pct(parent)>|<node JSON>` in nodes, ids in insertion order in the order list', async (ctx) => {
    const { store } = await fresh(ctx);
    const s = 'graph-layout';
    const facet = store.session(s);
    const lease = await acquire(store, s);
    // Ids with `|`, `%`, spaces and non-ASCII; node text with `|` and a look-alike prefix.
    const root: SessionNodeRecord = { nodeId: 'r|1', timestamp: '2025-01-01T00:00:00.000Z', role: 'user', text: 'a|b' };
    const mid: SessionNodeRecord = {
      nodeId: 'm %2F é',
      parentNodeId: 'r|1',
      timestamp: '2025-01-01T00:00:00.000Z',
      text: 'x|{"nodeId":"z"}',
    };
    const leaf: SessionNodeRecord = { nodeId: 'l', parentNodeId: 'm %2F é', timestamp: '2025-01-01T00:00:00.000Z' };
    await facet.commitRuntimeState(
      commitOf(s, lease, { graph: { kind: 'append', nodes: [root, mid, leaf], leafNodeId: 'l' } }),
    );
    const admin = adminClient();
    const nodesKey = keyOf(store, s, 'nodes');
    expect(await admin.hget(nodesKey, 'r|1')).toBe(`|${JSON.stringify(root)}`);
    expect(await admin.hget(nodesKey, 'm %2F é')).toBe(`r%7C1|${JSON.stringify(mid)}`);
    expect(await admin.hget(nodesKey, 'l')).toBe(`m%20%252F%20%C3%A9|${JSON.stringify(leaf)}`);
    expect(await admin.type(keyOf(store, s, 'order'))).toBe('list');
    expect(await admin.lrange(keyOf(store, s, 'order'), 0, -1)).toEqual(['r|1', 'm %2F é', 'l']);
    expect(await admin.exists(`${nodesKey.slice(0, -'nodes'.length)}parents`)).toBe(0);
    const path = await facet.loadSession({ kind: 'active_path' });
    expect(path?.graph.nodes).toEqual([root, mid, leaf]);
    expect((await facet.loadSession({ kind: 'full_graph' }))?.graph.nodes).toEqual([root, mid, leaf]);
    expect(await facet.loadNode('m %2F é')).toEqual(mid);
    expect(await facet.loadNode('r|1')).toEqual(root);
    // replace_full drops both keys' entries and starts the order again.
    await facet.commitRuntimeState(commitOf(s, lease, { graph: { kind: 'replace_full', graph: { nodes: [leaf] } } }));
    expect(await admin.hkeys(nodesKey)).toEqual(['l']);
    expect(await admin.lrange(keyOf(store, s, 'order'), 0, -1)).toEqual(['l']);
  });
});

describe('attachment manifest shard scripts', () => {
  test('upsert keeps the stamp; commit stamps only existing entries; store-wide queries', async (ctx) => {
    const { store } = await fresh(ctx);
    const f = store.session('s1');
    // Ids that would collide under naive concatenation.
    await f.recordIntent({ sessionId: 'a:b', attachmentId: 'c', canonicalUri: 'u1', intentAtEpochMs: 30 });
    await f.recordIntent({ sessionId: 'a', attachmentId: 'b:c', canonicalUri: 'u2', intentAtEpochMs: 10 });
    await f.recordIntent({ sessionId: 'z', attachmentId: 'b', canonicalUri: 'u3', intentAtEpochMs: 10 });
    await f.recordIntent({ sessionId: 'a', attachmentId: 'b', canonicalUri: 'u4', intentAtEpochMs: 10 });
    expect(await f.holdsRef('a', 'b:c')).toBe(true);
    expect(await f.holdsRef('a:b', 'c')).toBe(true);
    expect(await f.holdsRef('a', 'c')).toBe(false);
    const list = await f.listUncommitted(30);
    expect(list.map((e) => [e.sessionId, e.attachmentId])).toEqual([
      ['a', 'b'],
      ['a', 'b:c'],
      ['z', 'b'],
      ['a:b', 'c'],
    ]);
    expect(list[0]).toEqual({ sessionId: 'a', attachmentId: 'b', canonicalUri: 'u4', intentAtEpochMs: 10 });
    expect(await f.listUncommitted(9)).toEqual([]);

    await f.commitRefs('a', ['b', 'missing']);
    expect(await f.holdsRef('a', 'missing')).toBe(false);
    const stamp = (await f.listUncommitted(100)).find((e) => e.sessionId === 'a' && e.attachmentId === 'b');
    expect(stamp).toBeUndefined();
    // A refresh keeps the stamp.
    await f.recordIntent({ sessionId: 'a', attachmentId: 'b', canonicalUri: 'u5', intentAtEpochMs: 1 });
    expect(await f.hasLiveRefForId('b', 1_000)).toBe(true);
    await f.commitRefs('a', ['b']);
    expect(await f.listUncommitted(100)).toHaveLength(3);

    expect(await f.hasLiveRefForId('c', 29)).toBe(true);
    expect(await f.hasLiveRefForId('c', 30)).toBe(false);
    expect(await f.hasLiveRefForId('nope', 0)).toBe(false);
    expect(await f.listAllRefs()).toEqual(['b', 'b:c', 'c']);

    expect(await f.forgetAgedUncommittedIntents(10)).toBe(2);
    expect(await f.holdsRef('a', 'b')).toBe(true); // committed: kept
    expect(await f.holdsRef('z', 'b')).toBe(false);
    expect(await f.listAllRefs()).toEqual(['b', 'c']);
    await f.forget('a', 'b');
    await f.forget('a', 'b');
    expect(await f.listAllRefs()).toEqual(['c']);
    expect(await f.forgetAgedUncommittedIntents(1_000)).toBe(1);
    expect(await f.listAllRefs()).toEqual([]);
  });

  test('a commit stamps only existing entries of its own session', async (ctx) => {
    const { store } = await fresh(ctx);
    const f = store.session('s');
    const lease = await acquire(store, 's');
    await f.recordIntent({ sessionId: 's', attachmentId: 'one', canonicalUri: 'u', intentAtEpochMs: 1 });
    await f.recordIntent({ sessionId: 'other', attachmentId: 'two', canonicalUri: 'u', intentAtEpochMs: 1 });
    await f.commitRuntimeState(commitOf('s', lease, { committedAttachmentIds: ['one', 'two', 'three'] }));
    const left = await f.listUncommitted(10);
    expect(left.map((e) => [e.sessionId, e.attachmentId])).toEqual([['other', 'two']]);
    expect(await f.holdsRef('s', 'three')).toBe(false);
  });
});

describe('session meta', () => {
  test('round-trips exactly; binding is checked', async (ctx) => {
    const { store } = await fresh(ctx);
    const f = store.session('m');
    expect(await f.loadSessionMeta()).toBeNull();
    const meta = {
      sessionId: 'm',
      sessionName: 'n',
      createdAt: 't',
      model: 'x',
      relation: { kind: 'child' as const, parentSessionId: 'p', causedBy: { list: [], n: 0.1 } },
    };
    await f.saveSessionMeta(meta);
    const got = await f.loadSessionMeta();
    expect(got).toEqual(meta);
    expect(got).not.toHaveProperty('cwd');
    await expectCode(f.saveSessionMeta({ ...meta, sessionId: 'other' }), 'SessionBindingMismatch', {
      boundSessionId: 'm',
      attemptedSessionId: 'other',
    });
    await f.saveSessionMeta({ ...meta, cwd: '/w', relation: { kind: 'root' } });
    expect(await f.loadSessionMeta()).toEqual({ ...meta, cwd: '/w', relation: { kind: 'root' } });
  });
});

describe('wake-ups after a commit', () => {
  test('sent when the commit deferred input, or released the lease with dispatchable input', async (ctx) => {
    const { store } = await fresh(ctx);
    const woken: string[] = [];
    // A store that sends wake-ups (fresh() opens one with idleDispatch off), the sender captured.
    const rctx = (store as RedisRuntimeStore).ctx;
    Object.assign(rctx, { wake: (sessionId: string) => woken.push(sessionId) });
    Object.assign(rctx.settings, { idleDispatch: true });
    const s = 'wake';
    const f = store.session(s);
    let lease = await acquire(store, s);
    await f.commitRuntimeState(commitOf(s, lease));
    expect(woken).toEqual([]);
    await at(store, s, 't1', 'late');
    await f.commitRuntimeState(commitOf(s, lease, { interruptedTurnInputTurnId: 't1' }));
    expect(woken).toEqual([s]);
    // Released with next-turn input pending: dispatchable.
    await f.commitRuntimeState(commitOf(s, lease, { releaseSessionExecutionLease: leaseCompletion(lease) }));
    expect(woken).toEqual([s, s]);
    // Released with nothing left: no wake-up.
    lease = await acquire(store, s);
    const K = await claimNext(store, lease);
    await f.commitRuntimeState(
      commitOf(s, lease, {
        completedTurnInputClaims: [claimCompletion(K)],
        releaseSessionExecutionLease: leaseCompletion(lease),
      }),
    );
    expect(woken).toEqual([s, s]);
  });

  test('a store without idle dispatch is told of none (the script skips the check)', async (ctx) => {
    const { store } = await fresh(ctx);
    const woken: string[] = [];
    Object.assign((store as RedisRuntimeStore).ctx, { wake: (sessionId: string) => woken.push(sessionId) });
    const s = 'nowake';
    const f = store.session(s);
    const lease = await acquire(store, s);
    await at(store, s, 't1', 'late');
    await f.commitRuntimeState(commitOf(s, lease, { interruptedTurnInputTurnId: 't1' }));
    await f.commitRuntimeState(commitOf(s, lease, { releaseSessionExecutionLease: leaseCompletion(lease) }));
    expect(woken).toEqual([]);
    // The deferred input is there for a sweeper to find.
    expect((await store.listPendingTurnInputs(s)).map((i) => i.state)).toEqual(['deferred_next_turn']);
  });
});
