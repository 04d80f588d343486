/**
 * Issue 22 item 7: the worker helper fills in what it knows. A runTurn commit without sessionId
 * is committed for the run's session; one naming another session fails once, clearly, without
 * BullMQ retries; buildTurnCommit builds the common append commit.
 */
import { describe, expect, test } from 'vitest';
import { isStoreError } from '../../src/contract/errors.js';
import type { PersistedSessionRead, TurnInputClaim } from '../../src/contract/types.js';
import { claimCompletion, leaseFence } from '../../src/core/projections.js';
import { turnCommitHash } from '../../src/core/turn-commit-hash.js';
import { buildTurnCommit, type RunTurnContext } from '../../src/dispatch/index.js';
import { inspectSession } from '../../src/inspect/inspect-session.js';
import { dispatchQueue, freshStore, inputsInGraph, startWorker, turnCommit, waitFor } from './helpers.js';

describe('idle-dispatch worker: the helper fills in what it knows', () => {
  test('a runTurn commit without sessionId is committed for the run’s session, first time', async (ctx) => {
    const { store } = await freshStore(ctx, { idleDispatch: false });
    let runs = 0;
    const { events, dispatch } = await startWorker(ctx, store, 'w', async ({ sessionId, claim }) => {
      runs += 1;
      const nodes = claim.inputs.map((i) => ({ nodeId: `u-${i.inputId}`, timestamp: 't', inputId: i.inputId }));
      const { sessionId: _left, ...commit } = turnCommit(sessionId, nodes, nodes.at(-1)?.nodeId, 0);
      return commit;
    });
    const row = await store.enqueuePendingTurnInput({ sessionId: 's', ingress: { scope: 'next_turn' }, input: 1 });
    await dispatch.sweep();
    await waitFor('the commit', () => events.some((e) => e.type === 'committed' || e.type === 'failed'), 15_000);
    expect(events.filter((e) => e.type === 'failed')).toEqual([]);
    expect(runs).toBe(1);
    expect(await inputsInGraph(store, 's')).toEqual(new Map([[row.inputId, 1]]));
  });

  test('a commit naming another session fails once as SessionBindingMismatch, not retried by BullMQ', async (ctx) => {
    const { store, prefix } = await freshStore(ctx, { idleDispatch: false });
    let runs = 0;
    const { events, dispatch } = await startWorker(ctx, store, 'w', async ({ claim }) => {
      runs += 1;
      const nodes = claim.inputs.map((i) => ({ nodeId: `u-${i.inputId}`, timestamp: 't', inputId: i.inputId }));
      return turnCommit('another-session', nodes, undefined, 0);
    });
    const queue = dispatchQueue(ctx, prefix);
    const row = await store.enqueuePendingTurnInput({ sessionId: 's', ingress: { scope: 'next_turn' }, input: 1 });
    await dispatch.sweep();
    const failedJob = await waitFor(
      'the wake-up to fail',
      async () => (await queue.getFailed()).find((j) => (j.data as { sessionId?: string }).sessionId === 's'),
      15_000,
    );
    expect(failedJob.attemptsMade).toBe(1);
    expect(failedJob.failedReason).toMatch(/SessionBindingMismatch/);
    expect(runs).toBe(1);
    const failed = events.find((e) => e.type === 'failed');
    const error = failed && 'error' in failed ? failed.error : undefined;
    expect(isStoreError(error, 'SessionBindingMismatch')).toBe(true);
    expect((error as { details: Record<string, unknown> }).details).toMatchObject({
      boundSessionId: 's',
      attemptedSessionId: 'another-session',
    });
    // Nothing was committed; the claim is abandoned and the lease released.
    const view = await inspectSession(store, 's');
    expect(view.lease.status).toBe('released');
    expect(view.rows.map((r) => [r.inputId, r.state, r.claim])).toEqual([
      [row.inputId, 'deferred_next_turn', undefined],
    ]);
  });

  test('buildTurnCommit: two turns keep config, frames and checkpoint, chain the nodes, complete every claim', async (ctx) => {
    const { store } = await freshStore(ctx, { idleDispatch: false });
    let turn = 0;
    const { events, dispatch } = await startWorker(ctx, store, 'w', async (c) => {
      turn += 1;
      const head = await store.session(c.sessionId).loadSession({ kind: 'active_path' });
      const turnId = `turn-${turn}`;
      const users = c.claim.inputs.map((i) => ({ nodeId: `u-${i.inputId}`, timestamp: 't', inputId: i.inputId }));
      if (turn === 1) {
        // Mid-turn input admitted at a checkpoint: its claim is in ctx.claims, completed too.
        const a = await store.enqueuePendingTurnInput({
          sessionId: c.sessionId,
          ingress: { scope: 'active_turn', turnId },
          input: 'mid',
        });
        const active = await c.claimActiveTurnInputs(turnId, 'after_work');
        expect(active?.inputs.map((i) => i.inputId)).toEqual([a.inputId]);
        expect(c.claims.map((x) => x.claimId)).toEqual([c.claim.claimId, active?.claimId]);
        users.push({ nodeId: `u-${a.inputId}`, timestamp: 't', inputId: a.inputId });
        return buildTurnCommit(c, {
          head,
          nodes: [...users, { nodeId: `a-${turn}`, timestamp: 't' }],
          config: { model: 'm1' },
          agentFrames: [{ frameId: 'main', depth: 0 }],
          checkpoint: { turnState: { turn }, toolState: { tools: ['x'] } },
          turnId,
        });
      }
      return buildTurnCommit(c, { head, nodes: [...users, { nodeId: `a-${turn}`, timestamp: 't' }] });
    });
    await store.enqueuePendingTurnInput({ sessionId: 's', ingress: { scope: 'next_turn' }, input: 1 });
    await dispatch.sweep();
    await waitFor('turn 1', () => events.some((e) => e.type === 'committed'));
    const second = await store.enqueuePendingTurnInput({ sessionId: 's', ingress: { scope: 'next_turn' }, input: 2 });
    await dispatch.sweep();
    await waitFor('turn 2', () => events.filter((e) => e.type === 'committed').length === 2);
    expect(events.filter((e) => e.type === 'failed')).toEqual([]);

    const read = await store.session('s').loadSession({ kind: 'full_graph' });
    expect(read?.headRevision).toBe(2);
    expect(read?.config).toEqual({ model: 'm1' });
    expect(read?.agentFrames).toEqual([{ frameId: 'main', depth: 0 }]);
    expect(read?.checkpoint?.turnState).toEqual({ turn: 1 });
    expect(read?.checkpoint?.toolState).toEqual({ tools: ['x'] });
    // One chain: every node's parent is the node before it, across both turns.
    const nodes = read?.graph.nodes ?? [];
    expect(nodes.map((n) => n.parentNodeId)).toEqual([undefined, ...nodes.slice(0, -1).map((n) => n.nodeId)]);
    expect(read?.graph.leafNodeId).toBe('a-2');
    expect(nodes.find((n) => n.inputId === second.inputId)?.parentNodeId).toBe('a-1');
    const view = await inspectSession(store, 's');
    expect(view.counts).toMatchObject({ nonTerminal: 0, tombstones: 3 });
  });

  test('buildTurnCommit defaults, for a new session', () => {
    const claim = {
      sessionId: 's',
      claimId: 'tic:1:1',
      leaseToken: 'tok',
      inputs: [{ inputId: 'in-1' }],
    } as unknown as TurnInputClaim;
    const lease = { sessionId: 's', leaseToken: 'l', fencingToken: 1, owner: {} } as never;
    const ctx = { sessionId: 's', claim, claims: [claim], fence: leaseFence(lease) } as unknown as RunTurnContext;
    const nodes = [
      { nodeId: 'n1', timestamp: 't' },
      { nodeId: 'n2', timestamp: 't', parentNodeId: 'elsewhere' },
      { nodeId: 'n3', timestamp: 't' },
    ];
    const commit = buildTurnCommit(ctx, { head: null, nodes });
    expect(commit).toEqual({
      sessionId: 's',
      expectedHeadRevision: 0,
      config: {},
      agentFrames: [],
      currentAgentFrameId: 'main',
      graph: {
        kind: 'append',
        nodes: [
          { nodeId: 'n1', timestamp: 't' },
          { nodeId: 'n2', timestamp: 't', parentNodeId: 'elsewhere' },
          { nodeId: 'n3', timestamp: 't', parentNodeId: 'n2' },
        ],
        leafNodeId: 'n3',
      },
      checkpoint: { turnState: null },
      usageDeltas: [],
      completedTurnInputClaims: [claimCompletion(claim)],
      committedAttachmentIds: [],
    });
    expect(nodes[2]).toEqual({ nodeId: 'n3', timestamp: 't' }); // the caller's objects are untouched

    const head = {
      sessionId: 's',
      headRevision: 4,
      config: { c: 1 },
      agentFrames: [{ f: 1 }],
      currentAgentFrameId: 'sub',
      graph: { nodes: [], leafNodeId: 'old' },
      checkpoint: { turnState: { t: 1 }, toolStateRef: 'ref-1', toolState: { big: true } },
      tokenLedger: [],
    } as PersistedSessionRead;
    const stamped = buildTurnCommit(ctx, { head, nodes: [{ nodeId: 'n4', timestamp: 't' }], turnId: 'turn-9' });
    expect(stamped).toMatchObject({
      expectedHeadRevision: 4,
      config: { c: 1 },
      agentFrames: [{ f: 1 }],
      currentAgentFrameId: 'sub',
      graph: { kind: 'append', nodes: [{ nodeId: 'n4', parentNodeId: 'old' }], leafNodeId: 'n4' },
      checkpoint: { turnState: { t: 1 }, toolStateRef: 'ref-1' },
      interruptedTurnInputTurnId: 'turn-9',
    });
    expect(stamped.checkpoint).not.toHaveProperty('toolState');
    const { turnCommit: stamp, ...rest } = stamped;
    expect(stamp).toEqual({
      sessionId: 's',
      turnId: 'turn-9',
      turnCommitHash: turnCommitHash({ ...rest, sessionId: 's', completedTurnInputClaims: [claimCompletion(claim)] }),
    });
  });
});
