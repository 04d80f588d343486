/**
 * SPEC.md section 4 (lease store) and 3.2/3.3 (generations, the fence check), against both backends.
 */
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import {
  createInMemoryRuntimeStore,
  type LeaseOwnerIdentity,
  leaseCompletion,
  leaseFence,
  type SessionExecutionLease,
  type SessionExecutionLeaseFence,
} from '../../src/index.js';
import { describeBackends } from './backends.js';
import { acquire, expectStoreError, LONG_TTL, O } from './fixtures.js';

/** The kernel starttime of this process, read as SPEC 4.2 describes (20th field after the last ')'). */
function ownProcessStart(): string {
  const text = readFileSync('/proc/self/stat', 'utf8');
  return text
    .slice(text.lastIndexOf(')') + 1)
    .trim()
    .split(/\s+/)[19]!;
}

const PROC_READABLE = existsSync('/proc/self/stat');
/** A pid above the Linux maximum (2^22): no such process can exist. */
const IMPOSSIBLE_PID = 2 ** 22 + 12345;

function localOwner(
  id: string,
  fields: { hostId?: string; bootId?: string; pid: number; processStart: string },
): LeaseOwnerIdentity {
  return {
    ownerId: id,
    incarnationId: `${id}:1`,
    liveness: {
      kind: 'local_process',
      hostId: fields.hostId ?? 'host-a',
      bootId: fields.bootId ?? 'boot-a',
      pid: fields.pid,
      processStart: fields.processStart,
    },
  };
}

describeBackends('leases', (b) => {
  // ------------------------------------------------------------------ fresh acquisition

  test('first acquisition: generation 1, claimedAt = now, expiresAt = claimedAt + ttl, owner normalised', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const r = await store.tryClaimSessionExecutionLease('s', { ownerId: 'w', incarnationId: 'w:1' }, 30_000);
    expect(r.outcome).toBe('acquired');
    if (r.outcome !== 'acquired') return;
    const lease = r.lease;
    expect(lease.sessionId).toBe('s');
    expect(lease.fencingToken).toBe(1);
    expect(typeof lease.leaseToken).toBe('string');
    expect(lease.leaseToken.length).toBeGreaterThan(0);
    expect(Number.isSafeInteger(lease.claimedAtEpochMs)).toBe(true);
    expect(lease.claimedAtEpochMs).toBeGreaterThan(0);
    expect(lease.expiresAtEpochMs).toBe(lease.claimedAtEpochMs + 30_000);
    // SPEC 2.5: liveness is always present, { kind: 'opaque' } when it was omitted.
    expect(lease.owner).toEqual({ ownerId: 'w', incarnationId: 'w:1', liveness: { kind: 'opaque' } });
    expect(Object.keys(lease).sort()).toEqual(
      ['claimedAtEpochMs', 'expiresAtEpochMs', 'fencingToken', 'leaseToken', 'owner', 'sessionId'].sort(),
    );
  });

  test('a local_process liveness is stored and returned field for field', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const owner = localOwner('lp', { pid: 4242, processStart: '987654' });
    const lease = await acquire(store, 's', owner);
    expect(lease.owner).toEqual(owner);
    const busy = await store.tryClaimSessionExecutionLease('s', O('other'), LONG_TTL);
    expect(busy).toEqual({ outcome: 'busy', holder: lease });
  });

  test('leases of different sessions are independent (generations are per session)', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const a = await acquire(store, 'sa', O('w'));
    const bb = await acquire(store, 'sb', O('w2'));
    expect(a.fencingToken).toBe(1);
    expect(bb.fencingToken).toBe(1);
    expect(a.leaseToken).not.toBe(bb.leaseToken);
  });

  // ------------------------------------------------------------------ re-entry

  test('re-entry keeps token, generation, claimedAt and moves the expiry (longer, then shorter)', async (ctx) => {
    const { store, advance } = await b.fresh(ctx);
    const first = await acquire(store, 's', O('w1'), 30_000);
    await advance(b.name === 'memory' ? 4_000 : 5);
    const again = await acquire(store, 's', O('w1'), 60_000);
    expect(again.leaseToken).toBe(first.leaseToken);
    expect(again.fencingToken).toBe(first.fencingToken);
    expect(again.claimedAtEpochMs).toBe(first.claimedAtEpochMs);
    expect(again.owner).toEqual(first.owner);
    expect(again.sessionId).toBe('s');
    expect(again.expiresAtEpochMs).toBeGreaterThanOrEqual(first.claimedAtEpochMs + 60_000);
    expect(again.expiresAtEpochMs).toBeGreaterThan(first.expiresAtEpochMs);
    if (b.name === 'memory') expect(again.expiresAtEpochMs).toBe(first.claimedAtEpochMs + 4_000 + 60_000);

    // Re-entry may shorten the lease.
    const shorter = await acquire(store, 's', O('w1'), 1_000);
    expect(shorter.leaseToken).toBe(first.leaseToken);
    expect(shorter.fencingToken).toBe(1);
    expect(shorter.claimedAtEpochMs).toBe(first.claimedAtEpochMs);
    expect(shorter.expiresAtEpochMs).toBeLessThan(again.expiresAtEpochMs);
    expect(shorter.expiresAtEpochMs).toBeLessThanOrEqual(first.claimedAtEpochMs + 1_000 + 60_000);
    expect(shorter.expiresAtEpochMs).toBeGreaterThanOrEqual(first.claimedAtEpochMs + 1_000);

    // The holder other callers see is the re-entered lease.
    const busy = await store.tryClaimSessionExecutionLease('s', O('w2'), LONG_TTL);
    expect(busy).toEqual({ outcome: 'busy', holder: shorter });
  });

  test('re-entry with ttl 0 ends the lease: the next acquisition is a fresh generation', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const first = await acquire(store, 's', O('w1'));
    const ended = await acquire(store, 's', O('w1'), 0);
    expect(ended.leaseToken).toBe(first.leaseToken);
    expect(ended.fencingToken).toBe(1);
    const other = await acquire(store, 's', O('w2'));
    expect(other.fencingToken).toBe(2);
    expect(other.leaseToken).not.toBe(first.leaseToken);
  });

  test('re-entry ignores a different liveness: same ownerId + incarnationId is the same incarnation', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const first = await acquire(store, 's', O('w1'));
    const again = await acquire(store, 's', localOwner('w1', { pid: 77, processStart: '1' }));
    expect(again.leaseToken).toBe(first.leaseToken);
    expect(again.fencingToken).toBe(1);
    // The stored owner is kept as it was.
    expect(again.owner).toEqual(first.owner);
  });

  // ------------------------------------------------------------------ busy

  test('another incarnation of the same ownerId is busy, holder = the current lease; nothing is written', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const lease = await acquire(store, 's', O('w1'), 30_000);
    const sameOwnerOtherIncarnation = await store.tryClaimSessionExecutionLease(
      's',
      { ownerId: 'w1', incarnationId: 'w1:2' },
      30_000,
    );
    expect(sameOwnerOtherIncarnation).toEqual({ outcome: 'busy', holder: lease });
    const other = await store.tryClaimSessionExecutionLease('s', O('w2'), 30_000);
    expect(other).toEqual({ outcome: 'busy', holder: lease });
    // Nothing was written: the holder still renews with its fence, generation unchanged.
    const renewed = await store.renewSessionExecutionLease(leaseFence(lease), 30_000);
    expect(renewed.fencingToken).toBe(1);
    expect(renewed.leaseToken).toBe(lease.leaseToken);
  });

  test('concurrent first claims: exactly one acquired, every other busy with the winner as holder', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, i) => store.tryClaimSessionExecutionLease('s', O(`w${i}`), LONG_TTL)),
    );
    const acquired = results.filter((r) => r.outcome === 'acquired');
    expect(acquired).toHaveLength(1);
    const winner = acquired[0]!;
    if (winner.outcome !== 'acquired') return;
    expect(winner.lease.fencingToken).toBe(1);
    for (const r of results) {
      if (r.outcome === 'busy') expect(r.holder).toEqual(winner.lease);
    }
  });

  // ------------------------------------------------------------------ release

  test('release keeps the generation: the next acquisition is generation + 1 with a new token', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const l1 = await acquire(store, 's', O('w1'));
    await store.releaseSessionExecutionLease(leaseCompletion(l1));
    const l2 = await acquire(store, 's', O('w1'));
    expect(l2.fencingToken).toBe(2);
    expect(l2.leaseToken).not.toBe(l1.leaseToken);
    await store.releaseSessionExecutionLease(leaseCompletion(l2));
    const l3 = await acquire(store, 's', O('w2'));
    expect(l3.fencingToken).toBe(3);
  });

  test('a stale release is a silent no-op that never clears a newer holder', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const l1 = await acquire(store, 's', O('w1'), 30_000);
    await store.releaseSessionExecutionLease(leaseCompletion(l1));
    const l2 = await acquire(store, 's', O('w2'), 30_000);
    expect(l2.fencingToken).toBe(2);
    // The old completion again: resolves, changes nothing.
    await expect(store.releaseSessionExecutionLease(leaseCompletion(l1))).resolves.toBeUndefined();
    expect(await store.tryClaimSessionExecutionLease('s', O('w3'), 30_000)).toEqual({ outcome: 'busy', holder: l2 });
    // A completion with the new token but the old generation, or another incarnation, is no match either.
    await store.releaseSessionExecutionLease({ ...leaseCompletion(l2), fencingToken: 1 });
    await store.releaseSessionExecutionLease({
      ...leaseCompletion(l2),
      owner: { ownerId: 'w2', incarnationId: 'w2:2' },
    });
    await store.releaseSessionExecutionLease({ ...leaseCompletion(l2), leaseToken: 'not-the-token' });
    expect(await store.tryClaimSessionExecutionLease('s', O('w3'), 30_000)).toEqual({ outcome: 'busy', holder: l2 });
    const renewed = await store.renewSessionExecutionLease(leaseFence(l2), 30_000);
    expect(renewed.leaseToken).toBe(l2.leaseToken);
  });

  test('release may be repeated, and releasing a session that never had a lease is a no-op', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const l1 = await acquire(store, 's', O('w1'));
    await store.releaseSessionExecutionLease(leaseCompletion(l1));
    await expect(store.releaseSessionExecutionLease(leaseCompletion(l1))).resolves.toBeUndefined();
    await expect(
      store.releaseSessionExecutionLease({ ...leaseCompletion(l1), sessionId: 'never-leased' }),
    ).resolves.toBeUndefined();
    const fresh = await acquire(store, 'never-leased', O('w1'));
    expect(fresh.fencingToken).toBe(1);
  });

  test('an owner may release its own expired lease; the generation is kept', async (ctx) => {
    const { store, advance } = await b.fresh(ctx);
    const l1 = await acquire(store, 's', O('w1'), 30);
    await advance(50);
    await expect(store.releaseSessionExecutionLease(leaseCompletion(l1))).resolves.toBeUndefined();
    const l2 = await acquire(store, 's', O('w1'));
    expect(l2.fencingToken).toBe(2);
  });

  // ------------------------------------------------------------------ renew

  test('renew moves only the expiry and returns the updated lease', async (ctx) => {
    const { store, advance } = await b.fresh(ctx);
    const l1 = await acquire(store, 's', O('w1'), 30_000);
    await advance(b.name === 'memory' ? 1_000 : 5);
    const renewed = await store.renewSessionExecutionLease(leaseFence(l1), 45_000);
    expect(renewed.leaseToken).toBe(l1.leaseToken);
    expect(renewed.fencingToken).toBe(1);
    expect(renewed.claimedAtEpochMs).toBe(l1.claimedAtEpochMs);
    expect(renewed.owner).toEqual(l1.owner);
    expect(renewed.sessionId).toBe('s');
    expect(renewed.expiresAtEpochMs).toBeGreaterThanOrEqual(l1.claimedAtEpochMs + 45_000);
    if (b.name === 'memory') expect(renewed.expiresAtEpochMs).toBe(l1.claimedAtEpochMs + 1_000 + 45_000);
    expect(await store.tryClaimSessionExecutionLease('s', O('w2'), 1)).toEqual({ outcome: 'busy', holder: renewed });
  });

  test('renew of an expired lease fails with SessionExecutionLeaseExpired even if nobody took it', async (ctx) => {
    const { store, advance } = await b.fresh(ctx);
    const l1 = await acquire(store, 's', O('w1'), 30);
    await advance(50);
    await expectStoreError(store.renewSessionExecutionLease(leaseFence(l1), 30_000), 'SessionExecutionLeaseExpired', {
      sessionId: 's',
    });
    // The caller must acquire again, which starts a new generation.
    const l2 = await acquire(store, 's', O('w1'));
    expect(l2.fencingToken).toBe(2);
    expect(l2.leaseToken).not.toBe(l1.leaseToken);
  });

  test('renew fails for every broken fence condition (SPEC 3.3), naming the target session', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const l1 = await acquire(store, 's', O('w1'));
    const f = leaseFence(l1);
    const bad: SessionExecutionLeaseFence[] = [
      { ...f, leaseToken: `${f.leaseToken}x` },
      { ...f, fencingToken: 2 },
      { ...f, fencingToken: 0 },
      { ...f, owner: { ownerId: 'w1', incarnationId: 'w1:2' } },
      { ...f, owner: { ownerId: 'w9', incarnationId: 'w1:1' } },
    ];
    for (const fence of bad) {
      await expectStoreError(store.renewSessionExecutionLease(fence, LONG_TTL), 'SessionExecutionLeaseExpired', {
        sessionId: 's',
      });
    }
    // A fence for a session with no lease record: details name that session.
    await expectStoreError(
      store.renewSessionExecutionLease({ ...f, sessionId: 'other' }, LONG_TTL),
      'SessionExecutionLeaseExpired',
      { sessionId: 'other' },
    );
    // None of that disturbed the holder.
    const ok = await store.renewSessionExecutionLease(f, LONG_TTL);
    expect(ok.leaseToken).toBe(l1.leaseToken);
  });

  test('renew after release fails; renew with a superseded fence fails', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const l1 = await acquire(store, 's', O('w1'));
    await store.releaseSessionExecutionLease(leaseCompletion(l1));
    await expectStoreError(store.renewSessionExecutionLease(leaseFence(l1), LONG_TTL), 'SessionExecutionLeaseExpired', {
      sessionId: 's',
    });
    const l2 = await acquire(store, 's', O('w2'));
    await expectStoreError(store.renewSessionExecutionLease(leaseFence(l1), LONG_TTL), 'SessionExecutionLeaseExpired', {
      sessionId: 's',
    });
    expect((await store.renewSessionExecutionLease(leaseFence(l2), LONG_TTL)).fencingToken).toBe(2);
  });

  test('renewing with ttl 0 ends the lease', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const l1 = await acquire(store, 's', O('w1'));
    const r = await store.renewSessionExecutionLease(leaseFence(l1), 0);
    expect(r.fencingToken).toBe(1);
    await expectStoreError(store.renewSessionExecutionLease(leaseFence(l1), LONG_TTL), 'SessionExecutionLeaseExpired', {
      sessionId: 's',
    });
    expect((await acquire(store, 's', O('w2'))).fencingToken).toBe(2);
  });

  // ------------------------------------------------------------------ TTL 0 and expiry

  test('TTL 0 is dead on arrival: expiresAt = claimedAt, and the next acquisition is a fresh generation', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const l1 = await acquire(store, 's', O('w3'), 0);
    expect(l1.fencingToken).toBe(1);
    expect(l1.expiresAtEpochMs).toBe(l1.claimedAtEpochMs);
    // Not live: the same owner does not re-enter, it acquires afresh.
    const again = await acquire(store, 's', O('w3'), 0);
    expect(again.fencingToken).toBe(2);
    expect(again.leaseToken).not.toBe(l1.leaseToken);
    const l3 = await acquire(store, 's', O('w4'));
    expect(l3.fencingToken).toBe(3);
    // Its fence is useless.
    await expectStoreError(store.renewSessionExecutionLease(leaseFence(l1), LONG_TTL), 'SessionExecutionLeaseExpired', {
      sessionId: 's',
    });
  });

  test('an expired lease is a fresh acquisition with a higher generation, for its old owner too', async (ctx) => {
    const { store, advance } = await b.fresh(ctx);
    const l1 = await acquire(store, 's', O('w1'), 30);
    await advance(50);
    const l2 = await acquire(store, 's', O('w1'), 30);
    expect(l2.fencingToken).toBe(2);
    expect(l2.leaseToken).not.toBe(l1.leaseToken);
    expect(l2.claimedAtEpochMs).toBeGreaterThan(l1.claimedAtEpochMs);
    await advance(50);
    const l3 = await acquire(store, 's', O('w2'));
    expect(l3.fencingToken).toBe(3);
  });

  test('the generation never goes down: vacuum does not reset it', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const seen: number[] = [];
    for (let i = 0; i < 4; i++) {
      const l = await acquire(store, 's', O(`w${i}`));
      seen.push(l.fencingToken);
      await store.releaseSessionExecutionLease(leaseCompletion(l));
      await store.vacuum({ olderThanMs: 0 });
    }
    expect(seen).toEqual([1, 2, 3, 4]);
  });

  // ------------------------------------------------------------------ reclaim

  test('reclaim of a lease that is not live is a fresh acquisition whatever observedHolder says', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const l1 = await acquire(store, 's', O('w1'), 0);
    const garbage: SessionExecutionLeaseFence = {
      sessionId: 'elsewhere',
      owner: O('nobody'),
      leaseToken: 'made-up',
      fencingToken: 99,
    };
    const r = await store.reclaimSessionExecutionLease('s', O('w2'), garbage, 30_000);
    expect(r.outcome).toBe('acquired');
    if (r.outcome !== 'acquired') return;
    expect(r.lease.fencingToken).toBe(2);
    expect(r.lease.owner).toEqual(O('w2'));
    expect(r.lease.leaseToken).not.toBe(l1.leaseToken);
    expect(r.lease.expiresAtEpochMs).toBe(r.lease.claimedAtEpochMs + 30_000);
    // Also for a session that never had a lease, and after a release.
    const never = await store.reclaimSessionExecutionLease('fresh', O('w2'), garbage, 30_000);
    expect(never.outcome).toBe('acquired');
    if (never.outcome === 'acquired') expect(never.lease.fencingToken).toBe(1);
    await store.releaseSessionExecutionLease(leaseCompletion(r.lease));
    const afterRelease = await store.reclaimSessionExecutionLease('s', O('w3'), garbage, 30_000);
    expect(afterRelease.outcome).toBe('acquired');
    if (afterRelease.outcome === 'acquired') expect(afterRelease.lease.fencingToken).toBe(3);
  });

  test('reclaim of a live opaque holder is busy, even with an exact observation', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const holder = await acquire(store, 's', O('w1'));
    const claimant = localOwner('w2', { pid: process.pid, processStart: 'x' });
    expect(await store.reclaimSessionExecutionLease('s', claimant, leaseFence(holder), LONG_TTL)).toEqual({
      outcome: 'busy',
      holder,
    });
    expect(await store.reclaimSessionExecutionLease('s', O('w2'), leaseFence(holder), LONG_TTL)).toEqual({
      outcome: 'busy',
      holder,
    });
  });

  test('reclaim of a live local_process holder whose pid does not exist (same host and boot): generation + 1', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const holder = await acquire(store, 's', localOwner('dead', { pid: IMPOSSIBLE_PID, processStart: '12345' }));
    const claimant = localOwner('heir', { pid: process.pid, processStart: PROC_READABLE ? ownProcessStart() : '1' });
    const r = await store.reclaimSessionExecutionLease('s', claimant, leaseFence(holder), 30_000);
    if (!PROC_READABLE) {
      // SPEC 4.2: no /proc counts as not dead.
      expect(r).toEqual({ outcome: 'busy', holder });
      return;
    }
    expect(r.outcome).toBe('acquired');
    if (r.outcome !== 'acquired') return;
    expect(r.lease.fencingToken).toBe(2);
    expect(r.lease.owner).toEqual(claimant);
    expect(r.lease.leaseToken).not.toBe(holder.leaseToken);
    expect(r.lease.expiresAtEpochMs).toBe(r.lease.claimedAtEpochMs + 30_000);
    await expectStoreError(
      store.renewSessionExecutionLease(leaseFence(holder), LONG_TTL),
      'SessionExecutionLeaseExpired',
      { sessionId: 's' },
    );
  });

  test('reclaim of a live local_process holder with an existing pid but a wrong processStart: generation + 1', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const holder = await acquire(store, 's', localOwner('old', { pid: process.pid, processStart: 'not-the-start' }));
    const claimant = localOwner('heir', { pid: process.pid, processStart: PROC_READABLE ? ownProcessStart() : '1' });
    const r = await store.reclaimSessionExecutionLease('s', claimant, leaseFence(holder), 30_000);
    if (!PROC_READABLE) {
      expect(r).toEqual({ outcome: 'busy', holder });
      return;
    }
    expect(r.outcome).toBe('acquired');
    if (r.outcome === 'acquired') expect(r.lease.fencingToken).toBe(2);
  });

  test('reclaim of a local_process holder that is alive (right pid and processStart) is busy', async (ctx) => {
    const { store } = await b.fresh(ctx);
    if (!PROC_READABLE) return;
    const start = ownProcessStart();
    const holder = await acquire(store, 's', localOwner('alive', { pid: process.pid, processStart: start }));
    const claimant = localOwner('heir', { pid: process.pid, processStart: start });
    expect(await store.reclaimSessionExecutionLease('s', claimant, leaseFence(holder), LONG_TTL)).toEqual({
      outcome: 'busy',
      holder,
    });
  });

  test('reclaim is busy when host or boot differ, or when either side is opaque', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const holder = await acquire(store, 's', localOwner('dead', { pid: IMPOSSIBLE_PID, processStart: '1' }));
    const claimants: LeaseOwnerIdentity[] = [
      localOwner('heir', { hostId: 'host-b', pid: process.pid, processStart: '1' }),
      localOwner('heir', { bootId: 'boot-b', pid: process.pid, processStart: '1' }),
      O('heir'),
      { ownerId: 'heir', incarnationId: 'heir:1' },
    ];
    for (const claimant of claimants) {
      expect(await store.reclaimSessionExecutionLease('s', claimant, leaseFence(holder), LONG_TTL)).toEqual({
        outcome: 'busy',
        holder,
      });
    }
    const opaqueHolderStore = await acquire(store, 's2', O('dead'));
    expect(
      await store.reclaimSessionExecutionLease(
        's2',
        localOwner('heir', { pid: process.pid, processStart: '1' }),
        leaseFence(opaqueHolderStore),
        LONG_TTL,
      ),
    ).toEqual({ outcome: 'busy', holder: opaqueHolderStore });
  });

  test('a stale observedHolder (token, generation, owner, liveness or session differ) is busy and never evicts', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const deadOwner = localOwner('dead', { pid: IMPOSSIBLE_PID, processStart: '12345' });
    const holder = await acquire(store, 's', deadOwner);
    const claimant = localOwner('heir', { pid: process.pid, processStart: '1' });
    const exact = leaseFence(holder);
    const stale: SessionExecutionLeaseFence[] = [
      { ...exact, leaseToken: 'an-older-token' },
      { ...exact, fencingToken: 2 },
      { ...exact, fencingToken: 0 },
      { ...exact, sessionId: 'another-session' },
      { ...exact, owner: { ...deadOwner, ownerId: 'someone-else' } },
      { ...exact, owner: { ...deadOwner, incarnationId: 'dead:2' } },
      // Liveness differs (still "dead" by itself): the verdict was not computed from the stored identity.
      { ...exact, owner: localOwner('dead', { pid: IMPOSSIBLE_PID, processStart: '99999' }) },
      { ...exact, owner: localOwner('dead', { pid: IMPOSSIBLE_PID + 1, processStart: '12345' }) },
      { ...exact, owner: { ownerId: 'dead', incarnationId: 'dead:1', liveness: { kind: 'opaque' } } },
    ];
    for (const observed of stale) {
      expect(await store.reclaimSessionExecutionLease('s', claimant, observed, LONG_TTL)).toEqual({
        outcome: 'busy',
        holder,
      });
    }
    // The holder was never evicted.
    const renewed = await store.renewSessionExecutionLease(leaseFence(holder), LONG_TTL);
    expect(renewed.fencingToken).toBe(1);
    expect(renewed.leaseToken).toBe(holder.leaseToken);
    // The exact observation of that same dead holder does take over (so the refusals above were about staleness).
    if (PROC_READABLE) {
      const r = await store.reclaimSessionExecutionLease('s', claimant, exact, LONG_TTL);
      expect(r.outcome).toBe('acquired');
      if (r.outcome === 'acquired') expect(r.lease.fencingToken).toBe(2);
    }
  });

  test('reclaim with an observation of an older generation cannot evict the newer holder', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const deadOwner = localOwner('dead', { pid: IMPOSSIBLE_PID, processStart: '7' });
    const old = await acquire(store, 's', deadOwner, 0);
    // A newer holder with the very same identity: only the token and generation tell them apart.
    const newer = await acquire(store, 's', deadOwner);
    expect(newer.fencingToken).toBe(2);
    const claimant = localOwner('heir', { pid: process.pid, processStart: '1' });
    expect(await store.reclaimSessionExecutionLease('s', claimant, leaseFence(old), LONG_TTL)).toEqual({
      outcome: 'busy',
      holder: newer,
    });
  });

  test('two concurrent reclaimers of the same dead holder: exactly one acquired', async (ctx) => {
    const { store } = await b.fresh(ctx);
    if (!PROC_READABLE) return;
    const holder = await acquire(store, 's', localOwner('dead', { pid: IMPOSSIBLE_PID, processStart: '1' }));
    const results = await Promise.all(
      [1, 2, 3].map((i) =>
        store.reclaimSessionExecutionLease(
          's',
          localOwner(`heir${i}`, { pid: process.pid, processStart: ownProcessStart() }),
          leaseFence(holder),
          LONG_TTL,
        ),
      ),
    );
    const acquired = results.filter((r) => r.outcome === 'acquired');
    expect(acquired).toHaveLength(1);
    const winner = acquired[0]!;
    if (winner.outcome !== 'acquired') return;
    expect(winner.lease.fencingToken).toBe(2);
    for (const r of results) if (r.outcome === 'busy') expect(r.holder).toEqual(winner.lease);
  });

  // ------------------------------------------------------------------ projections

  test('leaseFence and leaseCompletion project exactly the four identifying fields into new objects', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const lease = await acquire(store, 's', localOwner('w', { pid: 5, processStart: '9' }));
    for (const project of [leaseFence, leaseCompletion]) {
      const p = project(lease);
      expect(p).not.toBe(lease);
      expect(Object.keys(p).sort()).toEqual(['fencingToken', 'leaseToken', 'owner', 'sessionId']);
      expect(p).toEqual({
        sessionId: lease.sessionId,
        owner: lease.owner,
        leaseToken: lease.leaseToken,
        fencingToken: lease.fencingToken,
      });
    }
    // Pure: a hand-made lease projects the same way, with no I/O.
    const handMade: SessionExecutionLease = {
      sessionId: 'x',
      owner: O('o'),
      leaseToken: 't',
      fencingToken: 3,
      claimedAtEpochMs: 1,
      expiresAtEpochMs: 2,
    };
    expect(leaseFence(handMade)).toEqual({ sessionId: 'x', owner: O('o'), leaseToken: 't', fencingToken: 3 });
    expect(leaseCompletion(handMade)).toEqual({ sessionId: 'x', owner: O('o'), leaseToken: 't', fencingToken: 3 });
  });

  // ------------------------------------------------------------------ fresh copies

  test('returned leases are fresh copies; mutating results or arguments never changes the stored lease', async (ctx) => {
    const { store } = await b.fresh(ctx);
    const owner: LeaseOwnerIdentity = localOwner('w', { pid: 10, processStart: '20' });
    const lease = await acquire(store, 's', owner);
    const snapshot = structuredClone(lease);
    owner.ownerId = 'mutated';
    (owner.liveness as { pid: number }).pid = 999;
    lease.leaseToken = 'mutated';
    lease.owner.incarnationId = 'mutated';
    lease.expiresAtEpochMs = 0;
    const busy = await store.tryClaimSessionExecutionLease('s', O('other'), 1);
    expect(busy).toEqual({ outcome: 'busy', holder: snapshot });
    if (busy.outcome !== 'busy') return;
    busy.holder.owner.ownerId = 'mutated-again';
    const busy2 = await store.tryClaimSessionExecutionLease('s', O('other'), 1);
    expect(busy2).toEqual({ outcome: 'busy', holder: snapshot });
  });
});

describe('in-memory store clock (SPEC 2.1)', () => {
  test('times are Math.floor(now()) of the injected clock', async () => {
    let now = 5_000.9;
    const store = createInMemoryRuntimeStore({ now: () => now });
    const lease = await acquire(store, 's', O('w'), 1_000);
    expect(lease.claimedAtEpochMs).toBe(5_000);
    expect(lease.expiresAtEpochMs).toBe(6_000);
    // Equality counts as expired: at now = expiresAt the lease is not live.
    now = 6_000;
    const next = await acquire(store, 's', O('other'), 1_000);
    expect(next.fencingToken).toBe(2);
    now = 6_999.99;
    const row = await store.enqueuePendingTurnInput({ sessionId: 's', ingress: { scope: 'next_turn' }, input: 1 });
    expect(row.enqueuedAtMs).toBe(6_999);
    // 6_999 < 7_000: still live, so another owner is busy.
    expect((await store.tryClaimSessionExecutionLease('s', O('third'), 1)).outcome).toBe('busy');
  });
});
