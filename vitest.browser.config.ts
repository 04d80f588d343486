import { defineConfig } from 'vitest/config';

// Browser tests (npm run test:browser): headless Chromium (Debian's `chromium` package) driven by
// playwright-core. Kept out of `npm test`, which excludes test/browser/**.
export default defineConfig({
  test: {
    globalSetup: ['./test/global-setup.ts'],
    include: ['test/browser/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
});
