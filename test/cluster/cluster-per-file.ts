/**
 * Setup file of `npm run test:cluster`: closes the test file's shared Cluster client (see
 * test/support/prefix.ts sharedCluster) after the file's tests, so no connection outlives them.
 */
import { afterAll } from 'vitest';
import { closeSharedCluster } from '../support/prefix.js';

afterAll(async () => {
  await closeSharedCluster();
});
