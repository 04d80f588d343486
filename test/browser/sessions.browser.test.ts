/**
 * The dashboard's sessions page in a real browser (SPEC 17.5): headless Chromium (playwright-core)
 * opens /sessions, goes to a session, sees its pending input, cancels one (writable mode), and the
 * store agrees. A screenshot of the session page is left in the temp dir.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { describe, expect, test } from 'vitest';
import { startDashboard } from '../../src/dashboard/index.js';
import { createRedisRuntimeStore } from '../../src/redis/redis-store.js';
import { redisUrl, testPrefix } from '../support/prefix.js';

const CHROMIUM = '/usr/bin/chromium';

describe('sessions page in Chromium', () => {
  test('lists sessions oldest first, shows a session’s pending input, and cancels one (writable)', async (ctx) => {
    expect(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install -y chromium`).toBe(true);
    const prefix = testPrefix(ctx);
    const store = await createRedisRuntimeStore({ redis: redisUrl(), keyPrefix: prefix, idleDispatch: false });
    ctx.onTestFinished(() => store.close());
    await store.enqueuePendingTurnInput({
      sessionId: 'older session',
      ingress: { scope: 'next_turn' },
      input: 'first',
    });
    await new Promise((r) => setTimeout(r, 20));
    const keep = await store.enqueuePendingTurnInput({
      sessionId: 'chat/7',
      ingress: { scope: 'next_turn' },
      input: 'a',
    });
    const drop = await store.enqueuePendingTurnInput({
      sessionId: 'chat/7',
      ingress: { scope: 'next_turn' },
      input: 'b',
    });

    const dashboard = await startDashboard({ redis: redisUrl(), keyPrefix: prefix, port: 0, writable: true });
    ctx.onTestFinished(() => dashboard.close());
    const profile = mkdtempSync(join(tmpdir(), 'rts-chromium-'));
    ctx.onTestFinished(() => rmSync(profile, { recursive: true, force: true }));
    const browser = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-sync',
      ],
    });
    ctx.onTestFinished(() => browser.close());
    const page = await browser.newPage();

    await page.goto(`${dashboard.url}sessions`, { waitUntil: 'domcontentloaded' });
    const listed = await page.locator('#sessions tbody tr td:first-child').allTextContents();
    expect(listed).toEqual(['older session', 'chat/7']);
    await page.getByRole('link', { name: 'chat/7' }).click();
    await page.locator('#inputs').waitFor();
    expect(await page.locator('h1').textContent()).toBe('Session chat/7');
    const rows = page.locator('#inputs tbody tr');
    expect(await rows.count()).toBe(2);
    expect(await page.locator(`tr[data-input="${drop.inputId}"]`).textContent()).toContain('deferred_next_turn');
    expect(await page.locator('#inspect').textContent()).toContain('2 non-terminal');

    await page.locator(`button[data-cancel="${drop.inputId}"]`).click();
    await page.locator('#message').waitFor();
    expect(await page.locator('#message').textContent()).toBe(`${drop.inputId}: cancelled`);
    expect(await page.locator('#inputs tbody tr').count()).toBe(1);
    const shot = join(tmpdir(), 'rts-dashboard-sessions.png');
    await page.screenshot({ path: shot, fullPage: true });
    console.log(`[sessions browser test] screenshot: ${shot}`);

    const left = await store.listPendingTurnInputs('chat/7');
    expect(left.map((r) => r.inputId)).toEqual([keep.inputId]);
    // The bull-board page links to the sessions page.
    await page.goto(dashboard.url, { waitUntil: 'domcontentloaded' });
    await page.getByText('Sessions').first().waitFor({ timeout: 30_000 });
  });
});
