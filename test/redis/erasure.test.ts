/**
 * Retention and erasure on Redis (SPEC 8.4-8.6, docs/KEYS.md): what a scan of the prefix finds
 * after deleteSession, byte-for-byte neighbours, the fence, races, the hot scripts' keys with the
 * retention option off, and dropping a whole store. Runs on standalone and (npm run test:cluster)
 * on Cluster.
 */
import { expect, type TestContext, test } from 'vitest';
import { main } from '../../src/cli/main.js';
import { isStoreError, leaseCompletion, type RuntimeStore } from '../../src/index.js';
import { dropStore, storeKeyMatcher } from '../../src/redis/drop-prefix.js';
import { encodeId } from '../../src/redis/key-encoding.js';
import { KeyLayout } from '../../src/redis/keys.js';
import { createRedisRuntimeStore } from '../../src/redis/redis-store.js';
import { scriptOf } from '../../src/redis/scripts/registry.js';
import { node, usage } from '../conformance/commit-fixtures.js';
import { acquire, at, claimNext, enqueue, LONG_TTL, minimalCommit, nt, O } from '../conformance/fixtures.js';
import {
  adminClient,
  clusterNodes,
  redisTarget,
  redisUrl,
  scanKeys,
  separateRedisTarget,
  testPrefix,
} from '../support/prefix.js';

async function freshStore(ctx: TestContext, extra: { sessionRetentionMs?: number; idleDispatch?: boolean } = {}) {
  const prefix = testPrefix(ctx);
  const store = await createRedisRuntimeStore({
    redis: redisTarget(),
    keyPrefix: prefix,
    idleDispatch: false,
    ...extra,
  });
  ctx.onTestFinished(() => store.close());
  return { store, prefix };
}

async function scan(pattern: string): Promise<string[]> {
  return (await scanKeys(adminClient(), pattern)).sort();
}

/** Every member or field of every shard key of the prefix, as `<key> <member>`. */
async function shardMembers(prefix: string): Promise<string[]> {
  const out: string[] = [];
  const client = adminClient();
  for (const key of await scan(`${prefix}:shard:*`)) {
    const type = await client.type(key);
    const members = type === 'hash' ? await client.hkeys(key) : await client.zrange(key, '0', '-1');
    for (const m of members) out.push(`${key} ${m}`);
  }
  return out;
}

/** A session with every kind of key: rows in each state, claims, settled state, meta, attachments. */
async function fullSession(store: RuntimeStore, s: string, attachmentId: string): Promise<void> {
  await enqueue(store, s, nt('a', { sourceKey: `${s}:k` }));
  await enqueue(store, s, nt('b'));
  const lease = await acquire(store, s);
  await enqueue(store, s, at('t1', 'after_work'));
  const claim = await claimNext(store, lease, { maxInputs: 1 });
  const facet = store.session(s);
  await facet.recordIntent({ sessionId: s, attachmentId, canonicalUri: 'u', intentAtEpochMs: 5 });
  await facet.commitRuntimeState(
    minimalCommit(lease, claim ? [claim] : [], {
      graph: { kind: 'append', nodes: [node('n1')], leafNodeId: 'n1' },
      checkpoint: { turnState: { x: 1 }, executionState: new Uint8Array([1, 2, 3]) },
      usageDeltas: [usage('turn', 'm', 3)],
      committedAttachmentIds: [attachmentId],
      turnCommit: { sessionId: s, turnId: 'turn-1', turnCommitHash: 'h' },
    }),
  );
  await enqueue(store, s, at('t2', 'before_completion'));
  const active = await store.claimActiveTurnInputs({
    sessionId: s,
    fence: { sessionId: s, owner: lease.owner, leaseToken: lease.leaseToken, fencingToken: lease.fencingToken },
    owner: lease.owner,
    turnId: 't2',
    checkpoint: 'before_completion',
    leaseTtlMs: LONG_TTL,
    maxInputs: 10,
  });
  expect(active).not.toBeNull();
  await enqueue(store, s, nt('c'));
  await store.cancelPendingTurnInputs(s, [{ kind: 'source_key', value: `${s}:k` }]);
  await facet.saveSessionMeta({
    sessionId: s,
    sessionName: 'n',
    createdAt: 'c',
    model: 'm',
    relation: { kind: 'root' },
  });
  await store.releaseSessionExecutionLease(leaseCompletion(lease));
  // Active input while no lease is live: a grace deadline in `nogen` (issue 17).
  await enqueue(store, s, at('t3', 'after_work'));
}

async function dumps(keys: string[]): Promise<Record<string, string | null>> {
  const out: Record<string, string | null> = {};
  for (const k of keys) out[k] = (await adminClient().dumpBuffer(k))?.toString('hex') ?? null;
  return out;
}

test('after deleteSession a scan of the prefix finds no key or index member of the session; the neighbour is byte-for-byte unchanged', async (ctx) => {
  const { store, prefix } = await freshStore(ctx, { sessionRetentionMs: 86_400_000 });
  const victim = 'victim:{1}';
  const neighbour = 'neighbour';
  await fullSession(store, victim, 'att-v');
  await fullSession(store, neighbour, 'att-n');
  await store
    .session(victim)
    .recordIntent({ sessionId: victim, attachmentId: 'att-n', canonicalUri: 'u', intentAtEpochMs: 1 });
  const enc = encodeId(victim);
  expect((await scan(`${prefix}:{${enc}}:*`)).length).toBeGreaterThan(10);
  expect((await shardMembers(prefix)).some((m) => m.includes(enc))).toBe(true);

  const neighbourKeys = await scan(`${prefix}:{${encodeId(neighbour)}}:*`);
  expect(neighbourKeys.length).toBeGreaterThan(10);
  const before = await dumps(neighbourKeys);
  const neighbourMembers = (await shardMembers(prefix)).filter((m) => !m.includes(enc));

  const r = await store.deleteSession(victim);
  expect(r).toMatchObject({ existed: true, removedTurnInputs: 6, removedSettledState: true });
  expect(r.removedAttachmentIds).toEqual(['att-n', 'att-v']);
  expect(r.unreferencedAttachmentIds).toEqual(['att-v']);

  expect(await scan(`${prefix}:{${enc}}:*`)).toEqual([]);
  expect((await shardMembers(prefix)).filter((m) => m.includes(enc))).toEqual([]);
  expect(await dumps(neighbourKeys)).toEqual(before);
  expect(await scan(`${prefix}:{${encodeId(neighbour)}}:*`)).toEqual(neighbourKeys);
  expect((await shardMembers(prefix)).filter((m) => !m.includes(enc))).toEqual(neighbourMembers);

  // A second delete changes nothing at all.
  const all = await scan(`${prefix}:*`);
  const snapshot = await dumps(all);
  expect((await store.deleteSession(victim)).existed).toBe(false);
  expect(await scan(`${prefix}:*`)).toEqual(all);
  expect(await dumps(all)).toEqual(snapshot);
});

test('a forced delete leaves only the fence: the generation, no holder; the old holder cannot write', async (ctx) => {
  const { store, prefix } = await freshStore(ctx);
  const s = 'forced';
  await enqueue(store, s, nt());
  const lease = await acquire(store, s);
  const claimBefore = await claimNext(store, lease);
  expect(claimBefore).not.toBeNull();
  const r = await store.deleteSession(s, { force: true });
  expect(r.fencedGeneration).toBe(1);
  const enc = encodeId(s);
  const leaseKey = `${prefix}:{${enc}}:lease`;
  expect(await scan(`${prefix}:{${enc}}:*`)).toEqual([leaseKey]);
  const fence = await adminClient().hgetall(leaseKey);
  expect(Object.keys(fence).sort()).toEqual(['fencedUntilEpochMs', 'fencingToken', 'lastEnqueueSeq']);
  expect(fence.fencingToken).toBe('1');
  expect(Number(fence.fencedUntilEpochMs)).toBe(lease.expiresAtEpochMs);
  expect((await shardMembers(prefix)).filter((m) => m.includes(enc))).toEqual([]);
  // The old holder: every write fails, and writes nothing.
  const snapshot = await dumps(await scan(`${prefix}:*`));
  for (const attempt of [
    () => claimNext(store, lease),
    () => store.renewSessionExecutionLease(lease, LONG_TTL),
    () => store.session(s).commitRuntimeState(minimalCommit(lease, claimBefore ? [claimBefore] : [])),
  ]) {
    const e = await attempt().catch((x: unknown) => x);
    expect(isStoreError(e, 'SessionExecutionLeaseExpired')).toBe(true);
  }
  await store.releaseSessionExecutionLease(leaseCompletion(lease));
  expect(await dumps(await scan(`${prefix}:*`))).toEqual(snapshot);
});

test('deleteSession racing enqueue, claim and commit never leaves a half-deleted session', async (ctx) => {
  const prefix = testPrefix(ctx);
  const stores = await Promise.all(
    [0, 1, 2].map(() =>
      createRedisRuntimeStore({ redis: separateRedisTarget(), keyPrefix: prefix, idleDispatch: false }),
    ),
  );
  ctx.onTestFinished(async () => {
    for (const s of stores) await s.close();
  });
  const [a, b, c] = stores;
  const layout = new KeyLayout(prefix);
  for (let round = 0; round < 25; round++) {
    const s = `race-${round}`;
    await enqueue(a, s, nt('first'));
    const lease = await acquire(a, s);
    const claim = await claimNext(a, lease);
    await Promise.allSettled([
      enqueue(a, s, nt('racing')),
      claimNext(b, lease),
      b.session(s).commitRuntimeState(minimalCommit(lease, claim ? [claim] : [])),
      c.deleteSession(s, { force: true }),
    ]);
    // Whatever the order, the session is whole: every row of an index has its record and state,
    // and the store still works for it.
    const client = adminClient();
    const k = layout.session(s).byName;
    const records = new Set(await client.hkeys(k.inputs));
    for (const id of [
      ...(await client.zrange(k.next, '0', '-1')),
      ...(await client.zrange(k.accepted, '0', '-1')),
      ...(await client.zrange(k.genactive, '0', '-1')),
    ]) {
      expect(records.has(id), `${s}: ${id} indexed without its record`).toBe(true);
    }
    for (const id of await client.hkeys(k.states)) expect(records.has(id), `${s}: state of ${id}`).toBe(true);
    if (records.size === 0) {
      for (const name of ['states', 'src', 'next', 'active', 'accepted', 'genactive', 'tomb', 'claims'] as const) {
        expect(await client.exists(k[name]), `${s}: ${name} without inputs`).toBe(0);
      }
    }
    const pending = await a.listPendingTurnInputs(s);
    const fresh = await acquire(a, s, O(`w${round}`));
    expect(fresh.fencingToken).toBeGreaterThan(lease.fencingToken);
    const next = await claimNext(a, fresh);
    expect(next?.inputs.map((i) => i.inputId).sort() ?? []).toEqual(pending.map((p) => p.inputId).sort());
    await a
      .session(s)
      .commitRuntimeState(
        minimalCommit(fresh, next ? [next] : [], { releaseSessionExecutionLease: leaseCompletion(fresh) }),
      );
  }
});

test('with sessionRetentionMs off the hot scripts get exactly their old keys; on, one activity member', async (ctx) => {
  const expected: Record<string, number> = {
    rts_enqueue_input: 6,
    rts_enqueue_active_input: 12, // 10 before issue 18: the queue cap's accepted, pendingTtlMs's expiry
    rts_try_claim_lease: 11,
    rts_reclaim_lease: 11,
    rts_release_lease: 6,
    rts_commit_runtime_state: 19,
  };
  for (const [command, keys] of Object.entries(expected)) {
    const script = scriptOf(command);
    expect(script?.optional, command).toBe(1);
    expect((script?.keys.length ?? 0) - (script?.optional ?? 0), command).toBe(keys);
    expect(script?.keys.at(-1), command).toBe('activity');
  }
  for (const command of ['rts_claim_next_inputs', 'rts_claim_active_inputs', 'rts_renew_lease']) {
    expect(scriptOf(command)?.optional, command).toBe(0);
    expect(scriptOf(command)?.keys, command).not.toContain('activity');
  }
  const off = await freshStore(ctx);
  await enqueue(off.store, 's', nt());
  const offLease = await acquire(off.store, 's');
  await off.store.session('s').commitRuntimeState(minimalCommit(offLease));
  expect(await scan(`${off.prefix}:shard:*:activity`)).toEqual([]);

  const on = await freshStore(ctx, { sessionRetentionMs: 1000 });
  await enqueue(on.store, 's', nt());
  const [key] = await scan(`${on.prefix}:shard:*:activity`);
  expect(await adminClient().zrange(key, '0', '-1')).toEqual(['s']);
});

test('dropStore lists, then deletes, every key of the prefix and its dispatch queue, nothing else', async (ctx) => {
  const { store, prefix } = await freshStore(ctx, { idleDispatch: true });
  const other = await freshStore(ctx);
  for (let i = 0; i < 20; i++) await enqueue(store, `s${i}`, nt());
  await enqueue(other.store, 'kept', nt());
  await store.close(); // waits for the wake-ups in flight
  const client = adminClient();
  await client.set(`${prefix}:not-ours`, 'x');
  const found = await scan(`${prefix}:*`);
  const queue = await scan(`{${prefix}}:*`);
  expect(queue.length).toBeGreaterThan(0);
  const ours = [...found.filter((k) => k !== `${prefix}:not-ours`), ...queue].sort();

  const listed = await dropStore(client, prefix, { dryRun: true });
  expect(listed).toEqual({ keys: ours, deleted: 0 });
  expect(await scan(`${prefix}:*`)).toEqual(found);

  const dropped = await dropStore(client, prefix);
  expect(dropped.deleted).toBe(ours.length);
  expect(await scan(`${prefix}:*`)).toEqual([`${prefix}:not-ours`]);
  expect(await scan(`{${prefix}}:*`)).toEqual([]);
  expect(await other.store.listPendingTurnInputs('kept')).toHaveLength(1);
  await client.del(`${prefix}:not-ours`);

  const bad = await dropStore(client, 'a:b').catch((e: unknown) => e);
  expect(isStoreError(bad, 'InvalidInput')).toBe(true);
});

test('redis-turn-store drop: lists without --yes, deletes with it', async (ctx) => {
  const { store, prefix } = await freshStore(ctx);
  await enqueue(store, 'x', nt());
  const nodes = clusterNodes();
  const env = { REDIS_URL: nodes ? `redis://${nodes[0]}` : redisUrl() };
  const cluster = nodes ? ['--cluster'] : [];
  const run = async (args: string[]) => {
    const out: string[] = [];
    const err: string[] = [];
    const code = await main(args, { stdout: (t) => out.push(t), stderr: (t) => err.push(t), env });
    return { code, out: out.join(''), err: err.join('') };
  };
  const keys = await scan(`${prefix}:*`);
  const dry = await run(['drop', '--prefix', prefix, ...cluster]);
  expect(dry.code).toBe(0);
  for (const k of keys) expect(dry.out).toContain(`${k}\n`);
  expect(dry.out).toContain(`${keys.length} key(s) of prefix "${prefix}" would be deleted`);
  expect(await scan(`${prefix}:*`)).toEqual(keys);

  const yes = await run(['drop', '--prefix', prefix, '--yes', ...cluster]);
  expect(yes).toMatchObject({ code: 0, out: `deleted ${keys.length} key(s) of prefix "${prefix}".\n` });
  expect(await scan(`${prefix}:*`)).toEqual([]);

  expect((await run(['drop', ...cluster])).code).toBe(2);
  expect((await run(['drop', '--prefix', 'a:b'])).code).toBe(2);
});

test('storeKeyMatcher knows the layout and nothing else', () => {
  const is = storeKeyMatcher('p.x');
  for (const k of ['p.x:layout', 'p.x:{a%20b}:lease', 'p.x:shard:{s1}:activity', '{p.x}:p.x-idle-dispatch:meta']) {
    expect(is(k), k).toBe(true);
  }
  for (const k of ['p.x:other', 'pax:layout', 'p.x:{a}:junk', 'p.x:{a}:lease:x', '{p.x}:other:meta', 'p.xy:layout']) {
    expect(is(k), k).toBe(false);
  }
});
