/**
 * Every store operation, each as setup (untimed) → run (measured) → teardown (untimed), on its own
 * session so the operations never disturb each other. Used for round trips per operation and for
 * sequential latency.
 */
import type {
  PendingTurnInput,
  RuntimeStore,
  SessionCommitStore,
  SessionExecutionLease,
  SessionMeta,
  TurnInputClaim,
} from '../../src/index.js';
import { claimCompletion, leaseCompletion, leaseFence } from '../../src/index.js';
import { appendCommit, baseCommit, INPUT_150, node, OTHER, OWNER, TTL } from './fixtures.js';

export interface Op {
  name: string;
  /** Untimed: prepares one call; returns what run needs. */
  setup(i: number): Promise<unknown>;
  /** Timed: exactly the store method call. */
  run(prepared: unknown, i: number): Promise<unknown>;
  /** Untimed: puts the session back so the next iteration sees the same state. */
  teardown(prepared: unknown, result: unknown): Promise<void>;
}

const none = async () => undefined;

async function acquire(store: RuntimeStore, sessionId: string, ttl = TTL): Promise<SessionExecutionLease> {
  const c = await store.tryClaimSessionExecutionLease(sessionId, OWNER, ttl);
  if (c.outcome !== 'acquired') throw new Error(`bench: lease on ${sessionId} is busy`);
  return c.lease;
}

async function enqueueNext(store: RuntimeStore, sessionId: string): Promise<PendingTurnInput> {
  return store.enqueuePendingTurnInput({ sessionId, ingress: { scope: 'next_turn' }, input: INPUT_150 });
}

/** Builds the catalogue; `tag` keeps sessions of separate catalogues apart. */
export async function buildOps(store: RuntimeStore, tag: string): Promise<Op[]> {
  const s = (name: string) => `${tag}-${name}`;
  const facet = (name: string): SessionCommitStore => store.session(s(name));

  // Long-lived leases for the operations that need a fence.
  const renewLease = await acquire(store, s('renew'));
  const activeLease = await acquire(store, s('claimActive'));
  const nextLease = await acquire(store, s('claimNext'));
  const abandonLease = await acquire(store, s('abandon'));
  const abandonManyLease = await acquire(store, s('abandonMany'));
  const commitLease = await acquire(store, s('commit'));
  let commitLeaf = 'c-root';
  await facet('commit').commitRuntimeState(appendCommit(commitLease, [node(commitLeaf, undefined)], commitLeaf));

  // Read fixtures: 10 pending inputs; a 10-node chain; meta; a few attachment entries.
  for (let i = 0; i < 10; i++) await enqueueNext(store, s('list'));
  const readLease = await acquire(store, s('read'));
  const chain = Array.from({ length: 10 }, (_, i) => node(`n${i}`, i === 0 ? undefined : `n${i - 1}`));
  await facet('read').commitRuntimeState(appendCommit(readLease, chain, 'n9'));
  await store.releaseSessionExecutionLease(leaseCompletion(readLease));
  const meta: SessionMeta = {
    sessionId: s('meta'),
    sessionName: 'bench session',
    createdAt: '2025-01-01T00:00:00.000Z',
    model: 'bench-model',
    relation: { kind: 'root' },
  };
  await facet('meta').saveSessionMeta(meta);
  const att = facet('att');
  const attSession = s('att');
  for (let i = 0; i < 5; i++) {
    await att.recordIntent({
      attachmentId: `fixed-${i}`,
      sessionId: attSession,
      canonicalUri: `file:///a/${i}`,
      intentAtEpochMs: 1000 + i,
    });
  }
  await att.commitRefs(attSession, ['fixed-0', 'fixed-1']);
  const intent = (id: string, at = Date.now()) => ({
    attachmentId: id,
    sessionId: attSession,
    canonicalUri: 'file:///a/x',
    intentAtEpochMs: at,
  });

  const completeClaim = async (lease: SessionExecutionLease, claim: TurnInputClaim | null) => {
    if (!claim) throw new Error('bench: expected a claim');
    await store.session(lease.sessionId).commitRuntimeState(
      baseCommit(lease.sessionId, {
        sessionExecutionLease: leaseFence(lease),
        completedTurnInputClaims: [claimCompletion(claim)],
      }),
    );
  };
  const cancelRows = async (sessionId: string, rows: PendingTurnInput[]) => {
    await store.cancelPendingTurnInputs(
      sessionId,
      rows.map((r) => ({ kind: 'input_id' as const, value: r.inputId })),
    );
  };

  const ops: Op[] = [
    {
      name: 'tryClaimSessionExecutionLease',
      setup: none,
      run: () => store.tryClaimSessionExecutionLease(s('try'), OWNER, TTL),
      teardown: async (_p, r) => {
        const c = r as Awaited<ReturnType<RuntimeStore['tryClaimSessionExecutionLease']>>;
        if (c.outcome !== 'acquired') throw new Error('bench: tryClaim was busy');
        await store.releaseSessionExecutionLease(leaseCompletion(c.lease));
      },
    },
    {
      name: 'reclaimSessionExecutionLease',
      setup: async () => {
        const c = await store.tryClaimSessionExecutionLease(s('reclaim'), OTHER, 0);
        if (c.outcome !== 'acquired') throw new Error('bench: reclaim setup was busy');
        return c.lease;
      },
      run: (p) => store.reclaimSessionExecutionLease(s('reclaim'), OWNER, leaseFence(p as SessionExecutionLease), TTL),
      teardown: async (_p, r) => {
        const c = r as Awaited<ReturnType<RuntimeStore['reclaimSessionExecutionLease']>>;
        if (c.outcome !== 'acquired') throw new Error('bench: reclaim was busy');
        await store.releaseSessionExecutionLease(leaseCompletion(c.lease));
      },
    },
    {
      name: 'renewSessionExecutionLease',
      setup: none,
      run: () => store.renewSessionExecutionLease(leaseFence(renewLease), TTL),
      teardown: none,
    },
    {
      name: 'releaseSessionExecutionLease',
      setup: () => acquire(store, s('release')),
      run: (p) => store.releaseSessionExecutionLease(leaseCompletion(p as SessionExecutionLease)),
      teardown: none,
    },
    {
      name: 'enqueuePendingTurnInput',
      setup: none,
      run: () => enqueueNext(store, s('enqueue')),
      teardown: none,
    },
    {
      name: 'listPendingTurnInputs',
      setup: none,
      run: () => store.listPendingTurnInputs(s('list')),
      teardown: none,
    },
    {
      name: 'cancelPendingTurnInputs',
      setup: async () => [await enqueueNext(store, s('cancel')), await enqueueNext(store, s('cancel'))],
      run: (p) =>
        store.cancelPendingTurnInputs(
          s('cancel'),
          (p as PendingTurnInput[]).map((r) => ({ kind: 'input_id' as const, value: r.inputId })),
        ),
      teardown: none,
    },
    {
      name: 'cancelPendingTurnInput',
      setup: () => enqueueNext(store, s('cancelOne')),
      run: (p) => store.cancelPendingTurnInput(s('cancelOne'), (p as PendingTurnInput).inputId),
      teardown: none,
    },
    {
      name: 'cancelPendingTurnInputSuffix',
      setup: async () => {
        const first = await enqueueNext(store, s('suffix'));
        await enqueueNext(store, s('suffix'));
        await enqueueNext(store, s('suffix'));
        return first;
      },
      run: (p) =>
        store.cancelPendingTurnInputSuffix(s('suffix'), { kind: 'input_id', value: (p as PendingTurnInput).inputId }),
      teardown: none,
    },
    {
      name: 'claimActiveTurnInputs',
      setup: () =>
        store.enqueuePendingTurnInput({
          sessionId: s('claimActive'),
          ingress: { scope: 'active_turn', turnId: 'turn-1' },
          input: INPUT_150,
        }),
      run: () =>
        store.claimActiveTurnInputs({
          sessionId: s('claimActive'),
          fence: leaseFence(activeLease),
          owner: OWNER,
          turnId: 'turn-1',
          checkpoint: 'after_work',
          leaseTtlMs: TTL,
          maxInputs: 10,
        }),
      teardown: (_p, r) => completeClaim(activeLease, r as TurnInputClaim | null),
    },
    {
      name: 'claimNextTurnInputs',
      setup: () => enqueueNext(store, s('claimNext')),
      run: () =>
        store.claimNextTurnInputs({
          sessionId: s('claimNext'),
          fence: leaseFence(nextLease),
          owner: OWNER,
          leaseTtlMs: TTL,
          maxInputs: 10,
        }),
      teardown: (_p, r) => completeClaim(nextLease, r as TurnInputClaim | null),
    },
    {
      name: 'abandonTurnInputClaim',
      setup: async () => {
        await enqueueNext(store, s('abandon'));
        const claim = await store.claimNextTurnInputs({
          sessionId: s('abandon'),
          fence: leaseFence(abandonLease),
          owner: OWNER,
          leaseTtlMs: TTL,
          maxInputs: 10,
        });
        if (!claim) throw new Error('bench: abandon setup claimed nothing');
        return claim;
      },
      run: (p) => store.abandonTurnInputClaim(p as TurnInputClaim),
      teardown: (p) => cancelRows(s('abandon'), (p as TurnInputClaim).inputs),
    },
    {
      name: 'abandonTurnInputClaims',
      setup: async () => {
        const claims: TurnInputClaim[] = [];
        for (let k = 0; k < 2; k++) {
          await enqueueNext(store, s('abandonMany'));
          const claim = await store.claimNextTurnInputs({
            sessionId: s('abandonMany'),
            fence: leaseFence(abandonManyLease),
            owner: OWNER,
            leaseTtlMs: TTL,
            maxInputs: 1,
          });
          if (!claim) throw new Error('bench: abandonMany setup claimed nothing');
          claims.push(claim);
        }
        return claims;
      },
      run: (p) => store.abandonTurnInputClaims(p as TurnInputClaim[]),
      teardown: (p) =>
        cancelRows(
          s('abandonMany'),
          (p as TurnInputClaim[]).flatMap((c) => c.inputs),
        ),
    },
    {
      name: 'commitRuntimeState',
      setup: async (i) => {
        const id = `c-${i}-${commitLeaf}`;
        const n = node(id, commitLeaf);
        commitLeaf = id;
        return appendCommit(commitLease, [n], id);
      },
      run: (p) => facet('commit').commitRuntimeState(p as ReturnType<typeof appendCommit>),
      teardown: none,
    },
    {
      name: 'loadSession:full_graph',
      setup: none,
      run: () => facet('read').loadSession({ kind: 'full_graph' }),
      teardown: none,
    },
    {
      name: 'loadSession:active_path',
      setup: none,
      run: () => facet('read').loadSession({ kind: 'active_path' }),
      teardown: none,
    },
    { name: 'loadNode', setup: none, run: () => facet('read').loadNode('n5'), teardown: none },
    { name: 'saveSessionMeta', setup: none, run: () => facet('meta').saveSessionMeta(meta), teardown: none },
    { name: 'loadSessionMeta', setup: none, run: () => facet('meta').loadSessionMeta(), teardown: none },
    {
      name: 'recordIntent',
      setup: async (i) => `rec-${i}`,
      run: (p) => att.recordIntent(intent(p as string)),
      teardown: (p) => att.forget(attSession, p as string),
    },
    {
      name: 'commitRefs',
      setup: async (i) => {
        await att.recordIntent(intent(`cr-${i}`));
        return `cr-${i}`;
      },
      run: (p) => att.commitRefs(attSession, [p as string]),
      teardown: (p) => att.forget(attSession, p as string),
    },
    { name: 'listUncommitted', setup: none, run: () => att.listUncommitted(1_000_000), teardown: none },
    {
      name: 'forgetAgedUncommittedIntents',
      setup: async (i) => att.recordIntent(intent(`aged-${i}`, 500)),
      run: () => att.forgetAgedUncommittedIntents(600),
      teardown: none,
    },
    { name: 'hasLiveRefForId', setup: none, run: () => att.hasLiveRefForId('fixed-3', 0), teardown: none },
    {
      name: 'forget',
      setup: async (i) => {
        await att.recordIntent(intent(`fg-${i}`));
        return `fg-${i}`;
      },
      run: (p) => att.forget(attSession, p as string),
      teardown: none,
    },
    { name: 'holdsRef', setup: none, run: () => att.holdsRef(attSession, 'fixed-2'), teardown: none },
    { name: 'listAllRefs', setup: none, run: () => att.listAllRefs(), teardown: none },
  ];
  return ops;
}
