/**
 * The dashboard in a real browser (npm run test:browser): Debian's headless Chromium driven by
 * playwright-core opens it and sees the dispatch queue with a waiting `wake` job for a session
 * that has next-turn input. A screenshot is left in the temp dir for a person to look at.
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

describe('dashboard in Chromium', () => {
  test('shows the dispatch queue with a waiting wake-up for a session with next-turn input', async (ctx) => {
    expect(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install -y chromium`).toBe(true);
    const prefix = testPrefix(ctx);
    const store = await createRedisRuntimeStore({ redis: redisUrl(), keyPrefix: prefix });
    await store.enqueuePendingTurnInput({ sessionId: 'browser-session', ingress: { scope: 'next_turn' }, input: 'hi' });
    await store.close();

    const dashboard = await startDashboard({ redis: redisUrl(), keyPrefix: prefix, port: 0 });
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
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    ctx.onTestFinished(() => browser.close());
    const page = await browser.newPage();

    const queueName = `${prefix}-idle-dispatch`;
    await page.goto(dashboard.url, { waitUntil: 'domcontentloaded' });
    await page.getByText(queueName).first().waitFor({ timeout: 30_000 });
    expect(await page.title()).toBe(`rts ${prefix}`);

    await page.goto(`${dashboard.url}queue/${encodeURIComponent(queueName)}?status=waiting`, {
      waitUntil: 'domcontentloaded',
    });
    await page.getByText('"browser-session"').first().waitFor({ timeout: 30_000 });
    const text = (await page.locator('body').textContent()) ?? '';
    expect(text).toMatch(/WAITING\s*1/);
    expect(text).toContain('wake');
    expect(text).toContain('dedup browser-session');
    const shot = join(tmpdir(), 'rts-dashboard.png');
    await page.screenshot({ path: shot, fullPage: true });
    console.log(`[dashboard browser test] screenshot: ${shot}`);
  });
});
