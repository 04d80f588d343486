/** The dashboard's sessions page over HTTP (SPEC 17.5): read-only by default, and its cancel form needs the page's token. */
import { expect, test } from 'vitest';
import { startDashboard } from '../../src/dashboard/index.js';
import { redisUrl, testPrefix } from '../support/prefix.js';
import { openStore } from './helpers.js';

test('read-only: the session page offers no cancel and a cancel post is refused; writable: a post without the token is refused', async (ctx) => {
  const prefix = testPrefix(ctx);
  const store = await openStore(ctx, prefix, { idleDispatch: false });
  const row = await store.enqueuePendingTurnInput({ sessionId: 's 1', ingress: { scope: 'next_turn' }, input: 'x' });
  const post = (url: string, body: string) =>
    fetch(url, {
      method: 'POST',
      body,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      redirect: 'manual',
    });

  const ro = await startDashboard({ redis: redisUrl(), keyPrefix: prefix, port: 0 });
  ctx.onTestFinished(() => ro.close());
  const list = await (await fetch(`${ro.url}sessions`)).text();
  expect(list).toContain('href="/sessions/s%201"');
  const html = await (await fetch(`${ro.url}sessions/s%201`)).text();
  expect(html).toContain(row.inputId);
  expect(html).not.toContain('data-cancel');
  expect((await post(`${ro.url}sessions/s%201/cancel`, `inputId=${row.inputId}`)).status).toBe(403);

  const rw = await startDashboard({ redis: redisUrl(), keyPrefix: prefix, port: 0, writable: true });
  ctx.onTestFinished(() => rw.close());
  const page = await (await fetch(`${rw.url}sessions/s%201`)).text();
  const token = /name="token" value="([0-9a-f]+)"/.exec(page)?.[1];
  expect(token).toBeDefined();
  expect((await post(`${rw.url}sessions/s%201/cancel`, `inputId=${row.inputId}&token=wrong`)).status).toBe(403);
  expect((await store.listPendingTurnInputs('s 1')).map((r) => r.inputId)).toEqual([row.inputId]);
  const ok = await post(`${rw.url}sessions/s%201/cancel`, `inputId=${row.inputId}&token=${token}`);
  expect(ok.status).toBe(303);
  expect(await store.listPendingTurnInputs('s 1')).toEqual([]);

  // A failed input (out of attempts) is listed with a Retry button, which puts it back.
  const lease = await store.tryClaimSessionExecutionLease('s 1', { ownerId: 'w', incarnationId: 'w:1' }, 30_000);
  if (lease.outcome !== 'acquired') throw new Error('lease');
  const again = await store.enqueuePendingTurnInput({ sessionId: 's 1', ingress: { scope: 'next_turn' }, input: 'y' });
  const fence = {
    sessionId: 's 1',
    owner: lease.lease.owner,
    leaseToken: lease.lease.leaseToken,
    fencingToken: lease.lease.fencingToken,
  };
  const claim = await store.claimNextTurnInputs({
    sessionId: 's 1',
    fence,
    owner: lease.lease.owner,
    leaseTtlMs: 30_000,
    maxInputs: 10,
  });
  if (!claim) throw new Error('claim');
  await store.abandonTurnInputClaim(claim, { failure: { error: 'boom', maxAttempts: 1 } });
  await store.releaseSessionExecutionLease(fence);
  expect((await store.listFailedTurnInputs('s 1')).map((r) => r.inputId)).toEqual([again.inputId]);
  const failedPage = await (await fetch(`${rw.url}sessions/s%201`)).text();
  expect(failedPage).toContain(`data-retry="${again.inputId}"`);
  expect(failedPage).toContain('boom');
  const retried = await post(`${rw.url}sessions/s%201/retry`, `inputId=${again.inputId}&token=${token}`);
  expect(retried.status).toBe(303);
  expect((await store.listPendingTurnInputs('s 1')).map((r) => r.inputId)).toEqual([again.inputId]);
});

test('writable: the interrupt button marks the live turn interrupted (requestTurnInterrupt); read-only offers none', async (ctx) => {
  const prefix = testPrefix(ctx);
  const store = await openStore(ctx, prefix, { idleDispatch: false });
  await store.enqueuePendingTurnInput({ sessionId: 'busy', ingress: { scope: 'next_turn' }, input: 'x' });
  const lease = await store.tryClaimSessionExecutionLease('busy', { ownerId: 'w', incarnationId: 'w:1' }, 30_000);
  if (lease.outcome !== 'acquired') throw new Error('lease');

  const ro = await startDashboard({ redis: redisUrl(), keyPrefix: prefix, port: 0 });
  ctx.onTestFinished(() => ro.close());
  expect(await (await fetch(`${ro.url}sessions/busy`)).text()).not.toContain('id="interrupt"');

  const rw = await startDashboard({ redis: redisUrl(), keyPrefix: prefix, port: 0, writable: true });
  ctx.onTestFinished(() => rw.close());
  const page = await (await fetch(`${rw.url}sessions/busy`)).text();
  expect(page).toContain('id="interrupt"');
  const token = /name="token" value="([0-9a-f]+)"/.exec(page)?.[1];
  const res = await fetch(`${rw.url}sessions/busy/interrupt`, {
    method: 'POST',
    body: `token=${token}`,
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    redirect: 'manual',
  });
  expect(res.status).toBe(303);
  // The holder's renewal now reports the mark.
  const renewed = await store.renewSessionExecutionLease(
    {
      sessionId: 'busy',
      owner: lease.lease.owner,
      leaseToken: lease.lease.leaseToken,
      fencingToken: lease.lease.fencingToken,
    },
    30_000,
  );
  expect(renewed.interrupt).toMatchObject({ generation: lease.lease.fencingToken, reason: 'dashboard' });
});
