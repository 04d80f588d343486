/**
 * Issue 18 (SPEC 3.9, 11): the idle-dispatch worker learns of an interrupt within milliseconds
 * through pub/sub, aborts runTurn's signal with TurnInterrupted, settles its claims per the
 * policy, releases, and the next turn starts at once; the renewal and the claim are the fallbacks.
 */
import { Redis } from 'ioredis';
import { describe, expect, test } from 'vitest';
import { isStoreError, type StoreError } from '../../src/contract/errors.js';
import type { RuntimeStore } from '../../src/contract/types.js';
import type { RunTurn, RunTurnContext } from '../../src/dispatch/index.js';
import { inspectSession } from '../../src/inspect/inspect-session.js';
import { formatInspect } from '../../src/inspect/inspect-view.js';
import { redisUrl } from '../support/prefix.js';
import { freshStore, inputsInGraph, startWorker, turnCommit, waitFor } from './helpers.js';

/** A turn that waits for its signal on the first run (recording the reason), and commits later runs. */
function stoppableTurn(store: RuntimeStore) {
  const seen: Array<{ inputIds: string[]; reason?: unknown; abortedAt?: number }> = [];
  let started: (() => void) | undefined;
  const firstStarted = new Promise<void>((r) => {
    started = r;
  });
  const runTurn: RunTurn = async (c: RunTurnContext) => {
    const entry: { inputIds: string[]; reason?: unknown; abortedAt?: number } = {
      inputIds: c.claim.inputs.map((i) => i.inputId),
    };
    seen.push(entry);
    if (seen.length === 1) {
      started?.();
      await new Promise<void>((resolve) => {
        c.signal.addEventListener(
          'abort',
          () => {
            entry.reason = c.signal.reason;
            entry.abortedAt = performance.now();
            resolve();
          },
          { once: true },
        );
      });
      throw c.signal.reason;
    }
    const head = await store.session(c.sessionId).loadSession({ kind: 'active_path' });
    const nodes = c.claim.inputs.map((i) => ({ nodeId: `u-${i.inputId}`, timestamp: 't', inputId: i.inputId }));
    return turnCommit(c.sessionId, nodes, nodes.at(-1)?.nodeId, head?.headRevision ?? 0);
  };
  return { runTurn, seen, firstStarted };
}

describe('idle-dispatch worker: interrupts', () => {
  for (const policy of ['interrupt', 'rollback'] as const) {
    test(`whenBusy '${policy}': signal aborted with TurnInterrupted, claims ${policy === 'interrupt' ? 'requeued with the new input' : 'cancelled'}, next turn at once`, async (ctx) => {
      const { store } = await freshStore(ctx);
      const turn = stoppableTurn(store);
      // A long lease: the next turn must not wait for a renewal or an expiry.
      const w = await startWorker(ctx, store, 'w', turn.runTurn, { leaseTtlMs: 30_000 });
      const s = `s-${policy}`;
      const first = await store.enqueuePendingTurnInput({ sessionId: s, ingress: { scope: 'next_turn' }, input: 1 });
      await turn.firstStarted;
      const t0 = performance.now();
      const typed = await store.enqueuePendingTurnInput({
        sessionId: s,
        ingress: { scope: 'next_turn' },
        input: 2,
        whenBusy: policy,
      });
      await waitFor('the second run', () => turn.seen.length >= 2, 5000, 5);
      const firstRun = turn.seen[0]!;
      expect(isStoreError(firstRun.reason, 'TurnInterrupted')).toBe(true);
      const reason = firstRun.reason as StoreError;
      expect(reason.details).toMatchObject({ sessionId: s, policy, inputId: typed.inputId });
      // Pub/sub, not the renewal (every 10 s here): well within a second.
      expect(firstRun.abortedAt! - t0).toBeLessThan(1000);
      const expected = policy === 'interrupt' ? [first.inputId, typed.inputId] : [typed.inputId];
      expect(turn.seen[1]!.inputIds).toEqual(expected);
      await waitFor('the second commit', () => w.events.some((e) => e.type === 'committed'));
      const interrupted = w.events.find((e) => e.type === 'interrupted');
      expect(interrupted).toMatchObject({ type: 'interrupted', sessionId: s, inputIds: [first.inputId] });
      expect(w.events.some((e) => e.type === 'failed')).toBe(false);
      const graph = await inputsInGraph(store, s);
      expect([...graph.keys()]).toEqual(expected);
    });
  }

  test('requestTurnInterrupt (the stop button) aborts the run; its input waits for the next turn', async (ctx) => {
    const { store } = await freshStore(ctx);
    const turn = stoppableTurn(store);
    const w = await startWorker(ctx, store, 'w', turn.runTurn, { leaseTtlMs: 30_000 });
    const s = 's-stop';
    const first = await store.enqueuePendingTurnInput({ sessionId: s, ingress: { scope: 'next_turn' }, input: 1 });
    await turn.firstStarted;
    const r = await store.requestTurnInterrupt(s, { reason: 'stop' });
    expect(r.interrupted).toBe(true);
    await waitFor('the interrupted event', () => w.events.some((e) => e.type === 'interrupted'));
    expect((turn.seen[0]!.reason as StoreError).details).toMatchObject({ policy: 'interrupt', reason: 'stop' });
    // With no new input, the requeued input is dispatchable again: the next turn takes it.
    await waitFor('the second run', () => turn.seen.length >= 2);
    expect(turn.seen[1]!.inputIds).toEqual([first.inputId]);
  });

  test('without pub/sub the renewal delivers the interrupt', async (ctx) => {
    const { store, prefix } = await freshStore(ctx);
    const turn = stoppableTurn(store);
    const w = await startWorker(ctx, store, 'w', turn.runTurn, { leaseTtlMs: 300 });
    const s = 's-renew';
    await store.enqueuePendingTurnInput({ sessionId: s, ingress: { scope: 'next_turn' }, input: 1 });
    await turn.firstStarted;
    // Mark the lease by hand, as a lost notice would leave it: no PUBLISH.
    const admin = new Redis(redisUrl());
    ctx.onTestFinished(() => admin.quit().then(() => undefined));
    const leaseKey = `${prefix}:{${s}}:lease`;
    const gen = await admin.hget(leaseKey, 'fencingToken');
    await admin.hset(leaseKey, 'interruptGen', gen!, 'interruptPolicy', 'interrupt', 'interruptAtMs', '1');
    await waitFor('the interrupted event', () => w.events.some((e) => e.type === 'interrupted'), 3000);
    expect(isStoreError(turn.seen[0]!.reason, 'TurnInterrupted')).toBe(true);
  });

  test('interrupt racing the commit: each first input ends completed exactly once, or given back and completed by the next turn', async (ctx) => {
    const { store } = await freshStore(ctx);
    const sessions = Array.from({ length: 8 }, (_, i) => `race-${i}`);
    const arrived = new Map<string, () => void>();
    const arrivedP = new Map(sessions.map((s) => [s, new Promise<void>((r) => arrived.set(s, r))] as const));
    const runTurn: RunTurn = async (c) => {
      arrived.get(c.sessionId)?.();
      // Finish at about the moment the interrupt lands.
      await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 4)));
      const head = await store.session(c.sessionId).loadSession({ kind: 'active_path' });
      const nodes = c.claim.inputs.map((i) => ({ nodeId: `u-${i.inputId}`, timestamp: 't', inputId: i.inputId }));
      return turnCommit(c.sessionId, nodes, nodes.at(-1)?.nodeId, head?.headRevision ?? 0);
    };
    const w = await startWorker(ctx, store, 'w', runTurn, { leaseTtlMs: 30_000, concurrency: 4 });
    const ids = new Map<string, string[]>();
    await Promise.all(
      sessions.map(async (s) => {
        const a = await store.enqueuePendingTurnInput({ sessionId: s, ingress: { scope: 'next_turn' }, input: 'a' });
        await arrivedP.get(s);
        const b = await store.enqueuePendingTurnInput({
          sessionId: s,
          ingress: { scope: 'next_turn' },
          input: 'b',
          whenBusy: 'interrupt',
        });
        ids.set(s, [a.inputId, b.inputId]);
      }),
    );
    for (const s of sessions) {
      await waitFor(`both inputs of ${s} in its graph`, async () => (await inputsInGraph(store, s)).size === 2);
      const graph = await inputsInGraph(store, s);
      expect([...graph.keys()].sort()).toEqual([...ids.get(s)!].sort());
      for (const n of graph.values()) expect(n).toBe(1);
      expect(await store.listPendingTurnInputs(s)).toEqual([]);
    }
    expect(w.events.some((e) => e.type === 'failed')).toBe(false);
  });

  test('a paused session gets no turn (event paused, inspect says PAUSED); resume starts it at once', async (ctx) => {
    const { store } = await freshStore(ctx);
    const runs: string[][] = [];
    const w = await startWorker(ctx, store, 'w', async (c) => {
      runs.push(c.claim.inputs.map((i) => i.inputId));
      return turnCommit(c.sessionId, [], undefined, 0);
    });
    const s = 's-paused';
    await store.pauseSessionDispatch(s);
    const row = await store.enqueuePendingTurnInput({ sessionId: s, ingress: { scope: 'next_turn' }, input: 1 });
    await waitFor('the paused event', () => w.events.some((e) => e.type === 'paused' && e.sessionId === s));
    expect(runs).toEqual([]);
    const view = await inspectSession(store, s);
    expect(view.dispatch.pausedAtMs).toBeGreaterThan(0);
    expect(formatInspect(view)).toContain('PAUSED since');
    await store.resumeSessionDispatch(s);
    await waitFor('the turn after resume', () => runs.length === 1, 5000);
    expect(runs[0]).toEqual([row.inputId]);
    expect((await inspectSession(store, s)).dispatch.pausedAtMs).toBeUndefined();
  });
});
