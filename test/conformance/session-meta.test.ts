/**
 * Session meta (SPEC 6.7) and the durability tier (SPEC 6.8, 12), against both backends.
 */
import { expect, test } from 'vitest';
import type { JsonValue, SessionMeta } from '../../src/index.js';
import { describeBackends } from './backends.js';
import { baseCommit, keysOf } from './commit-fixtures.js';
import { acquire, expectStoreError, sid } from './fixtures.js';

function rootMeta(sessionId: string, extra: Partial<SessionMeta> = {}): SessionMeta {
  return {
    sessionId,
    sessionName: 'My session',
    createdAt: '2024-05-06T07:08:09.123Z',
    model: 'model-x',
    relation: { kind: 'root' },
    ...extra,
  };
}

describeBackends('session meta (SPEC 6.7)', (b) => {
  test('load is null until something is saved', async (ctx) => {
    const { store } = await b.fresh(ctx);
    expect(await store.session(sid('meta-none')).loadSessionMeta()).toBeNull();
  });

  test('a root meta without cwd round-trips exactly (cwd stays absent)', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const S = sid('meta-root');
    const facet = store.session(S);
    const meta = rootMeta(S);
    await facet.saveSessionMeta(meta);
    const loaded = await facet.loadSessionMeta();
    expect(loaded).toEqual(meta);
    expect(keysOf(loaded)).toEqual(['createdAt', 'model', 'relation', 'sessionId', 'sessionName']);
    expect(keysOf(loaded?.relation)).toEqual(['kind']);
  });

  test('a child meta with cwd and an opaque causedBy round-trips exactly', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const S = sid('meta-child');
    const facet = store.session(S);
    const causedBy: JsonValue = {
      tool: 'spawn',
      args: [],
      opts: {},
      nested: [[], {}, { deep: [0.1 + 0.2, 1e21, -0.5, 2 ** 53 - 1] }],
      text: 'héllo 漢字 😀 "q" \\ \u0000',
      flags: [true, false, null],
    };
    const meta: SessionMeta = {
      sessionId: S,
      sessionName: 'child ü',
      createdAt: '2024-01-01T00:00:00Z',
      model: 'm',
      cwd: '/home/user/project with spaces/ü',
      relation: { kind: 'child', parentSessionId: 'parent:{1}', causedBy },
    };
    await facet.saveSessionMeta(meta);
    const loaded = await facet.loadSessionMeta();
    expect(loaded).toEqual(JSON.parse(JSON.stringify(meta)));
    expect(loaded?.relation.kind).toBe('child');
    if (loaded?.relation.kind === 'child') {
      const cb = loaded.relation.causedBy as Record<string, unknown>;
      expect(Array.isArray(cb.args)).toBe(true);
      expect(Array.isArray(cb.opts)).toBe(false);
      expect(((cb.nested as unknown[])[2] as { deep: number[] }).deep).toEqual([
        0.30000000000000004, 1e21, -0.5, 9007199254740991,
      ]);
    }
    // A child without causedBy keeps causedBy absent.
    const noCause: SessionMeta = { ...rootMeta(S), relation: { kind: 'child', parentSessionId: 'p' } };
    await facet.saveSessionMeta(noCause);
    const reloaded = await facet.loadSessionMeta();
    expect(reloaded).toEqual(noCause);
    expect(keysOf(reloaded?.relation)).toEqual(['kind', 'parentSessionId']);
  });

  test('save overwrites: the last write wins, fields absent in it are absent after', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const S = sid('meta-lww');
    const facet = store.session(S);
    await facet.saveSessionMeta(rootMeta(S, { cwd: '/first', sessionName: 'first' }));
    await facet.saveSessionMeta(rootMeta(S, { sessionName: 'second', model: 'm2' }));
    const loaded = await facet.loadSessionMeta();
    expect(loaded).toEqual(rootMeta(S, { sessionName: 'second', model: 'm2' }));
    expect(keysOf(loaded)).not.toContain('cwd');
    await facet.saveSessionMeta(rootMeta(S, { sessionName: 'third' }));
    expect((await facet.loadSessionMeta())?.sessionName).toBe('third');
  });

  test('a meta for another session is SessionBindingMismatch and saves nothing', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const S = sid('meta-bound');
    const T = sid('meta-attempted');
    const facet = store.session(S);
    await facet.saveSessionMeta(rootMeta(S, { sessionName: 'kept' }));
    await expectStoreError(facet.saveSessionMeta(rootMeta(T, { sessionName: 'intruder' })), 'SessionBindingMismatch', {
      boundSessionId: S,
      attemptedSessionId: T,
    });
    expect((await facet.loadSessionMeta())?.sessionName).toBe('kept');
    expect(await store.session(T).loadSessionMeta()).toBeNull();
  });

  test('an invalid meta is InvalidInput and saves nothing', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const S = sid('meta-invalid');
    const facet = store.session(S);
    await expectStoreError(
      facet.saveSessionMeta({ ...rootMeta(S), relation: { kind: 'sibling' } } as unknown as SessionMeta),
      'InvalidInput',
    );
    await expectStoreError(
      facet.saveSessionMeta({ ...rootMeta(S), model: 42 } as unknown as SessionMeta),
      'InvalidInput',
    );
    expect(await facet.loadSessionMeta()).toBeNull();
  });

  test('meta is per session, and has no effect on heads, revisions or leases', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const S = sid('meta-isolated');
    const S2 = sid('meta-isolated-2');
    const facet = store.session(S);
    await facet.saveSessionMeta(rootMeta(S));
    expect(await store.session(S2).loadSessionMeta()).toBeNull();
    expect(await facet.loadSession({ kind: 'full_graph' })).toBeNull();
    // The first commit still sees head revision 0; a lease is still freely acquirable (generation 1).
    const lease = await acquire(store, S);
    expect(lease.fencingToken).toBe(1);
    const r = await facet.commitRuntimeState(baseCommit(S, lease, { expectedHeadRevision: 0 }));
    expect(r.headRevision).toBe(1);
    // And commits do not touch the meta.
    expect(await facet.loadSessionMeta()).toEqual(rootMeta(S));
    await facet.saveSessionMeta(rootMeta(S, { sessionName: 'renamed' }));
    expect((await facet.loadSession({ kind: 'full_graph' }))?.headRevision).toBe(1);
  });

  test('returned meta and saved arguments are copies', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const S = sid('meta-copies');
    const facet = store.session(S);
    const meta = rootMeta(S, { cwd: '/a' });
    await facet.saveSessionMeta(meta);
    meta.sessionName = 'mutated after save';
    const loaded = await facet.loadSessionMeta();
    expect(loaded?.sessionName).toBe('My session');
    if (loaded) loaded.cwd = '/mutated';
    expect((await facet.loadSessionMeta())?.cwd).toBe('/a');
  });

  test('session ids with key-significant characters keep their meta apart', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const ids = ['a}:x', '{b}', 'a', 'a:', '%41', 'A', 'sp ace', 'ü'];
    for (const id of ids) await store.session(id).saveSessionMeta(rootMeta(id, { sessionName: `name of ${id}` }));
    for (const id of ids) {
      expect(await store.session(id).loadSessionMeta()).toEqual(rootMeta(id, { sessionName: `name of ${id}` }));
    }
  });
});

describeBackends('durability tier (SPEC 6.8, 12)', (b) => {
  test('the facet reports the store’s tier', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const tier = store.durabilityTier();
    expect(['inline', 'durable']).toContain(tier);
    expect(store.session('s').durabilityTier()).toBe(tier);
    if (b.name === 'memory') expect(tier).toBe('inline');
  });
});
