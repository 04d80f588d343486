/**
 * How the store's script calls reach Redis (src/redis/context.ts): every call goes through the
 * ioredis defined command of its script (src/redis/scripts/registry.ts), so each store call is
 * one script call on the wire: EVAL the first time a connection runs a script, EVALSHA after. A
 * server that lost its scripts (SCRIPT FLUSH, a restart) answers NOSCRIPT and gets the call once
 * more as EVAL, for `run` and for `runBuffer` (loadSession with executionState bytes); any other
 * error is not retried. Each test runs against a redis-server of its own, so a SCRIPT FLUSH and
 * MONITOR see no other test file. Standalone only (excluded from vitest.cluster.config.ts).
 */
import { createHash } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, type TestContext, test } from 'vitest';
import { isStoreError } from '../../src/contract/errors.js';
import type { RuntimeCommit, SessionExecutionLease, TurnInputClaim } from '../../src/contract/types.js';
import { leaseCompletion, leaseFence } from '../../src/core/projections.js';
import { createRedisRuntimeStore, type RedisRuntimeStore } from '../../src/redis/redis-store.js';
import { scriptOf } from '../../src/redis/scripts/registry.js';
import { minimalCommit } from '../conformance/fixtures.js';
import { prefixFor } from '../support/prefix.js';
import { redisServerBinary, type SpawnedRedis, spawnRedis } from '../support/redis-server.js';

const OWNER = { ownerId: 'w', incarnationId: 'w:1' };

/** The scripts one turn calls, in order. */
const TURN = [
  'rts_enqueue_input',
  'rts_try_claim_lease',
  'rts_claim_next_inputs',
  'rts_commit_runtime_state',
  'rts_load_session',
] as const;

function sha(command: string): string {
  const script = scriptOf(command);
  if (!script) throw new Error(`no script ${command}`);
  return createHash('sha1').update(script.lua).digest('hex');
}

/** The script an EVAL body is the text of, from its generated-file note (script-text.ts). */
function generatedFrom(body: string): string | undefined {
  expect(body.length).toBeGreaterThan(100);
  return /^-- Generated from lua\/([a-z-]+)\.lua /.exec(body)?.[1];
}

let server: SpawnedRedis | undefined;
let admin: Redis | undefined;

function adminOf(): Redis {
  if (!admin) throw new Error('no server');
  return admin;
}

/**
 * A store on its own connection to the private server, and the commands its client sends from
 * now on. Their names are read after the call settles: that is what was written, since ioredis's
 * defined command renames an `evalsha` to `eval` when it writes it to a connection that has not
 * run the script.
 */
async function openStore(
  ctx: TestContext,
): Promise<{ store: RedisRuntimeStore; client: Redis; sent: { name: string; args: unknown[] }[] }> {
  const store = (await createRedisRuntimeStore({
    redis: server!.url,
    keyPrefix: prefixFor(ctx.task.name),
    idleDispatch: false,
  })) as RedisRuntimeStore;
  ctx.onTestFinished(() => store.close());
  const client = (store as unknown as { ctx: { client: Redis } }).ctx.client;
  const sent: { name: string; args: unknown[] }[] = [];
  const send = client.sendCommand.bind(client);
  client.sendCommand = ((command: { name: string; args: unknown[] }, ...rest: unknown[]) => {
    sent.push(command);
    return (send as (...a: unknown[]) => unknown)(command, ...rest);
  }) as Redis['sendCommand'];
  return { store, client, sent };
}

function names(sent: { name: string }[]): string[] {
  return sent.map((c) => c.name);
}

/**
 * What the server was sent while `work` ran, from MONITOR: each command as [name, first argument].
 * Ends on a marker the admin connection sends after `work` settled, so nothing is waited for by
 * time; the admin's own marker is left out.
 */
async function onTheWire(work: () => Promise<unknown>): Promise<[string, string][]> {
  const monitor = await adminOf().monitor();
  const seen: [string, string][] = [];
  const marker = `end-${Math.random()}`;
  const done = new Promise<void>((resolve) => {
    monitor.on('monitor', (_time: string, args: string[], source: string) => {
      // The commands a script runs are shown too, from source 'lua': they are not on the wire.
      if (source === 'lua') return;
      if (args[0]?.toLowerCase() === 'echo' && args[1] === marker) resolve();
      else seen.push([String(args[0]).toLowerCase(), String(args[1])]);
    });
  });
  try {
    await work();
    await adminOf().echo(marker);
    await done;
  } finally {
    monitor.disconnect();
  }
  return seen;
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

describe.skipIf(!redisServerBinary())('script calls [redis, own server]', () => {
  beforeAll(async () => {
    server = await spawnRedis();
    admin = new Redis(server.url, { maxRetriesPerRequest: 3 });
  });

  afterAll(async () => {
    await admin?.quit().catch(() => admin?.disconnect());
    await server?.stop();
  });

  test('each store call is one script call: EVAL on a connection new to the script, EVALSHA after', async (ctx) => {
    await adminOf().script('FLUSH');
    const { store, sent } = await openStore(ctx);
    const bytes = Uint8Array.from([0, 1, 2, 255]);
    // A fresh connection: each script's first call is written as EVAL, which loads it.
    const first = await onTheWire(async () => expect(await turn(store, 's', bytes)).toEqual(bytes));
    expect(names(sent)).toEqual(['eval', 'eval', 'eval', 'eval', 'eval']);
    expect(first.map(([name]) => name)).toEqual(['eval', 'eval', 'eval', 'eval', 'eval']);
    // MONITOR shows the body escaped; its first line names the script.
    expect(first.map(([, body]) => generatedFrom(body))).toEqual(TURN.map((c) => scriptOf(c)?.file));
    expect(await adminOf().script('EXISTS', ...TURN.map(sha))).toEqual([1, 1, 1, 1, 1]);

    // From then on, one EVALSHA per call, of the script the loader made, with its header's keys.
    sent.length = 0;
    const wire = await onTheWire(async () => expect(await turn(store, 's', bytes)).toEqual(bytes));
    expect(names(sent)).toEqual(['evalsha', 'evalsha', 'evalsha', 'evalsha', 'evalsha']);
    expect(wire).toEqual(TURN.map((c) => ['evalsha', sha(c)]));
    expect(sent.map((c) => [c.args[0], Number(c.args[1])])).toEqual(
      // With sessionRetentionMs unset, a script's optional key (the activity index) is not sent.
      TURN.map((c) => [sha(c), (scriptOf(c)?.keys.length ?? 0) - (scriptOf(c)?.optional ?? 0)]),
    );
  });

  test('after SCRIPT FLUSH each call is NOSCRIPT once, then EVAL, and succeeds', async (ctx) => {
    const { store, sent } = await openStore(ctx);
    const bytes = Uint8Array.from([9, 8, 7]);
    await turn(store, 's', bytes);
    await turn(store, 's', bytes);
    // The server loses its scripts (as after a restart); this store's connection still thinks it has them.
    await adminOf().script('FLUSH');
    expect(await adminOf().script('EXISTS', ...TURN.map(sha))).toEqual([0, 0, 0, 0, 0]);
    sent.length = 0;
    const wire = await onTheWire(async () => expect(await turn(store, 's', bytes)).toEqual(bytes));
    // Each of the five calls: EVALSHA answered NOSCRIPT, then the same call as EVAL (which loads it).
    const expected = TURN.flatMap(() => ['evalsha', 'eval']);
    expect(names(sent)).toEqual(expected);
    expect(wire.map(([name]) => name)).toEqual(expected);
    expect(wire.map(([name, arg]) => (name === 'eval' ? generatedFrom(arg) : arg))).toEqual(
      TURN.flatMap((c) => [sha(c), scriptOf(c)?.file]),
    );
    expect(await adminOf().script('EXISTS', ...TURN.map(sha))).toEqual([1, 1, 1, 1, 1]);
    // The EVAL loaded them: the next turn is EVALSHA alone again.
    sent.length = 0;
    expect(await turn(store, 's', bytes)).toEqual(bytes);
    expect(names(sent)).toEqual(['evalsha', 'evalsha', 'evalsha', 'evalsha', 'evalsha']);
  });

  test('an error other than NOSCRIPT is not retried: it reaches the caller as Backend', async (ctx) => {
    const { store, sent } = await openStore(ctx);
    // The connection has run every script of a turn, so a call is one EVALSHA.
    await turn(store, 'warm', Uint8Array.from([1]));
    await store.enqueuePendingTurnInput({ sessionId: 's', ingress: { scope: 'next_turn' }, input: 1 });
    // The lease hash replaced by a string: the script's HMGET fails with WRONGTYPE.
    const keys = (store as unknown as { ctx: RedisRuntimeStore['ctx'] }).ctx.keys('s');
    await adminOf().set(keys.byName.lease, 'not a hash');
    sent.length = 0;
    const err = await store.tryClaimSessionExecutionLease('s', OWNER, 60_000).catch((e: unknown) => e);
    expect(isStoreError(err) && err.code === 'Backend').toBe(true);
    expect(String((err as { details: { cause?: unknown } }).details.cause)).toMatch(/WRONGTYPE/);
    expect(names(sent)).toEqual(['evalsha']);
  });
});
