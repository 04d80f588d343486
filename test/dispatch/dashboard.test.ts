/**
 * The dispatch dashboard (SPEC 11): Express + bull-board over `<prefix>-idle-dispatch`,
 * read-only unless writable, on 127.0.0.1. Started on port 0; its page and its queue API are
 * fetched over HTTP.
 */
import { describe, expect, test } from 'vitest';
import { type CliIO, main } from '../../src/cli/main.js';
import { startDashboard } from '../../src/dashboard/index.js';
import { redisUrl } from '../support/prefix.js';
import { freshStore, waitFor } from './helpers.js';

interface QueuesApi {
  queues: Array<{
    name: string;
    readOnlyMode: boolean;
    counts: Record<string, number>;
    jobs: Array<{ name: string; data: unknown }>;
  }>;
}

async function withWaitingWakeUp(ctx: Parameters<typeof freshStore>[0], sessionId: string): Promise<string> {
  const { store, prefix } = await freshStore(ctx);
  await store.enqueuePendingTurnInput({ sessionId, ingress: { scope: 'next_turn' }, input: 'hello' });
  await store.close(); // flushes the wake-up
  return prefix;
}

describe('dashboard', () => {
  test('serves bull-board over the dispatch queue, read-only, on 127.0.0.1', async (ctx) => {
    const prefix = await withWaitingWakeUp(ctx, 'chat-1');
    const dashboard = await startDashboard({ redis: redisUrl(), keyPrefix: prefix, port: 0 });
    ctx.onTestFinished(() => dashboard.close());
    expect(dashboard.url).toBe(`http://127.0.0.1:${dashboard.port}/`);
    expect(dashboard.server.address()).toMatchObject({ address: '127.0.0.1' });

    const page = await fetch(dashboard.url);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toContain('text/html');
    const html = await page.text();
    expect(html).toContain(`<title>rts ${prefix}</title>`);

    const api = await fetch(`${dashboard.url}api/queues?activeQueue=${prefix}-idle-dispatch&status=waiting`);
    expect(api.status).toBe(200);
    const body = (await api.json()) as QueuesApi;
    expect(body.queues.map((q) => q.name)).toEqual([`${prefix}-idle-dispatch`]);
    const [queue] = body.queues;
    expect(queue.readOnlyMode).toBe(true);
    expect(queue.counts.waiting).toBe(1);
    expect(queue.jobs.map((j) => [j.name, j.data])).toEqual([['wake', { sessionId: 'chat-1' }]]);

    // Read-only: the UI's write endpoints are refused.
    const clean = await fetch(`${dashboard.url}api/queues/${prefix}-idle-dispatch/clean/waiting`, { method: 'PUT' });
    expect(clean.status).toBeGreaterThanOrEqual(400);
    expect(await dashboard.queue.getWaitingCount()).toBe(1);
  });

  test('--writable turns read-only mode off; the CLI prints its URL and stops when told', async (ctx) => {
    const prefix = await withWaitingWakeUp(ctx, 'chat-2');
    let stop!: () => void;
    const stopped = new Promise<void>((r) => {
      stop = r;
    });
    const out: string[] = [];
    const io: CliIO = {
      stdout: (t) => out.push(t),
      stderr: (t) => out.push(t),
      env: { REDIS_URL: redisUrl() },
      untilStopped: () => stopped,
    };
    const exit = main(['dashboard', '--writable', '--port', '0', '--prefix', prefix], io);
    const line = await waitFor('the URL line', () => out.find((l) => l.includes('http://127.0.0.1:')));
    expect(line).toContain(`queue ${prefix}-idle-dispatch, WRITABLE`);
    const url = /http:\/\/127\.0\.0\.1:\d+\//.exec(line)?.[0] ?? '';
    const body = (await (await fetch(`${url}api/queues`)).json()) as QueuesApi;
    expect(body.queues[0].readOnlyMode).toBe(false);
    expect(body.queues[0].counts.waiting).toBe(1);
    stop();
    expect(await exit).toBe(0);
    await expect(fetch(url)).rejects.toThrow();
  });
});
