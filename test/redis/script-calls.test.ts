/**
 * How the store's script calls reach Redis (src/redis/context.ts): on a standalone client each
 * call is one bare EVALSHA; a server that lost its scripts (SCRIPT FLUSH, a restart) answers
 * NOSCRIPT and gets the same call once more as EVAL, for `run` and for `runBuffer` (loadSession
 * with executionState bytes); any other error is not retried. Standalone only (excluded from
 * vitest.cluster.config.ts: a Cluster client sends through its defined commands).
 */
import type { Redis } from 'ioredis';
import { describe, expect, type TestContext, test } from 'vitest';
import { isStoreError } from '../../src/contract/errors.js';
import type { RuntimeCommit, SessionExecutionLease, TurnInputClaim } from '../../src/contract/types.js';
import { leaseCompletion, leaseFence } from '../../src/core/projections.js';
import { createRedisRuntimeStore, type RedisRuntimeStore } from '../../src/redis/redis-store.js';
import { scriptSha } from '../../src/redis/script-loader.js';
import { minimalCommit } from '../conformance/fixtures.js';
import { redisUrl, testPrefix } from '../support/prefix.js';

const OWNER = { ownerId: 'w', incarnationId: 'w:1' };

/**
 * A store on its own connection, and the commands its client sends from now on (their names as
 * written: ioredis's defined-command path renames an `evalsha` to `eval` when it writes it).
 */
async function openStore(
  ctx: TestContext,
): Promise<{ store: RedisRuntimeStore; client: Redis; sent: { name: string }[] }> {
  const store = (await createRedisRuntimeStore({
    redis: redisUrl(),
    keyPrefix: testPrefix(ctx),
    idleDispatch: false,
  })) as RedisRuntimeStore;
  ctx.onTestFinished(() => store.close());
  const client = (store as unknown as { ctx: { client: Redis } }).ctx.client;
  const sent: { name: string }[] = [];
  const send = client.sendCommand.bind(client);
  client.sendCommand = ((command: { name: string }, ...rest: unknown[]) => {
    sent.push(command);
    return (send as (...a: unknown[]) => unknown)(command, ...rest);
  }) as Redis['sendCommand'];
  return { store, client, sent };
}

function names(sent: { name: string }[]): string[] {
  return sent.map((c) => c.name);
}

function turnCommit(lease: SessionExecutionLease, claim: TurnInputClaim, bytes: Uint8Array): RuntimeCommit {
  return minimalCommit(lease, [claim], {
    checkpoint: { turnState: null, executionState: bytes },
    releaseSessionExecutionLease: leaseCompletion(lease),
  });
}

/** One full turn with executionState bytes, then a load that reads them back (runBuffer). */
async function turn(store: RedisRuntimeStore, sessionId: string, bytes: Uint8Array): Promise<Uint8Array | undefined> {
  await store.enqueuePendingTurnInput({ sessionId, ingress: { scope: 'next_turn' }, input: { text: 'hi' } });
  const got = await store.tryClaimSessionExecutionLease(sessionId, OWNER, 60_000);
  if (got.outcome !== 'acquired') throw new Error('lease busy');
  const claim = await store.claimNextTurnInputs({
    sessionId,
    fence: leaseFence(got.lease),
    owner: OWNER,
    leaseTtlMs: 60_000,
    maxInputs: 1,
  });
  if (!claim) throw new Error('nothing claimed');
  await store.session(sessionId).commitRuntimeState(turnCommit(got.lease, claim, bytes));
  const loaded = await store.session(sessionId).loadSession({ kind: 'full_graph' });
  return loaded?.checkpoint?.executionState;
}

describe('script calls [redis]', () => {
  test('every store call is one EVALSHA of the script the loader made', async (ctx) => {
    const { store, client, sent } = await openStore(ctx);
    const bytes = Uint8Array.from([0, 1, 2, 255]);
    // Warm: the scripts are on the server from here on, whoever loaded them.
    await turn(store, 's', bytes);
    sent.length = 0;
    expect(await turn(store, 's', bytes)).toEqual(bytes);
    expect(names(sent)).toEqual(['evalsha', 'evalsha', 'evalsha', 'evalsha', 'evalsha']);
    const sha = scriptSha('rts_enqueue_input');
    expect(sha).toMatch(/^[0-9a-f]{40}$/);
    expect(await client.script('EXISTS', sha as string)).toEqual([1]);
  });

  test('after SCRIPT FLUSH each call is sent once more as EVAL, and succeeds', async (ctx) => {
    const { store, client, sent } = await openStore(ctx);
    const bytes = Uint8Array.from([9, 8, 7]);
    await turn(store, 's', bytes);
    // Other test files share this server: their calls take the same NOSCRIPT path.
    await client.script('FLUSH');
    sent.length = 0;
    expect(await turn(store, 's', bytes)).toEqual(bytes);
    // Each of the five calls: EVALSHA answered NOSCRIPT, then EVAL (which loads the script). A
    // script another test file reloaded meanwhile is found by the EVALSHA alone.
    const written = names(sent);
    const evals = written.filter((n) => n === 'eval').length;
    expect(written.filter((n) => n === 'evalsha').length).toBe(5);
    expect(evals).toBeGreaterThan(0);
    expect(evals).toBeLessThanOrEqual(5);
    expect(written.length).toBe(5 + evals);
    // The EVAL loaded them: the next turn is EVALSHA alone again.
    sent.length = 0;
    expect(await turn(store, 's', bytes)).toEqual(bytes);
    expect(names(sent)).toEqual(['evalsha', 'evalsha', 'evalsha', 'evalsha', 'evalsha']);
  });

  test('an error other than NOSCRIPT is not retried: it reaches the caller as Backend', async (ctx) => {
    const { store, client, sent } = await openStore(ctx);
    await store.enqueuePendingTurnInput({ sessionId: 's', ingress: { scope: 'next_turn' }, input: 1 });
    // The lease hash replaced by a string: the script's HMGET fails with WRONGTYPE.
    const layout = (store as unknown as { ctx: { keys(id: string): { block: string[] } } }).ctx.keys('s');
    await client.set(layout.block[0] as string, 'not a hash');
    sent.length = 0;
    const err = await store.tryClaimSessionExecutionLease('s', OWNER, 60_000).catch((e: unknown) => e);
    expect(isStoreError(err) && err.code === 'Backend').toBe(true);
    expect(String((err as { details: { cause?: unknown } }).details.cause)).toMatch(/WRONGTYPE/);
    expect(names(sent)).toEqual(['evalsha']);
  });
});
