/**
 * Model-based differential test (issue 7): random operation sequences must give identical
 * normalised results on the Redis store and the in-memory reference store (see model.ts).
 *
 *   npm test                              300 sequences (RTS_MODEL_RUNS overrides)
 *   npm run test:model -- --runs 10000    the long run (test/model/run.mjs sets RTS_MODEL_RUNS)
 *   RTS_MODEL_SEED=<n>                    replays a reported seed
 *
 * A failure is shrunk by fast-check to a minimal sequence, which is replayed and printed op by op
 * with every agreed result and a line diff of the diverging one.
 */
import fc from 'fast-check';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { prefixFor, redisUrl } from '../support/prefix.js';
import { type Sequence, sequenceArb } from './model.js';
import { type Divergence, report, runSequence, Stats } from './runner.js';

const RUNS = Number(process.env.RTS_MODEL_RUNS ?? 300);
const SEED = process.env.RTS_MODEL_SEED === undefined ? undefined : Number(process.env.RTS_MODEL_SEED);
const MAX_OPS = Number(process.env.RTS_MODEL_MAX_OPS ?? 40);

let client: Redis;
const base = prefixFor('model');
let counter = 0;
const passed = new Set<string>();

async function dropPassed(): Promise<void> {
  if (passed.size === 0) return;
  let cursor = '0';
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', `${base}-*`, 'COUNT', 2000);
    cursor = next;
    const doomed = keys.filter((k) => passed.has(k.slice(0, k.indexOf(':'))));
    if (doomed.length > 0) await client.unlink(...doomed);
  } while (cursor !== '0');
  passed.clear();
}

beforeAll(() => {
  client = new Redis(redisUrl(), { maxRetriesPerRequest: 3 });
});

afterAll(async () => {
  await dropPassed();
  await client.quit();
});

test(`differential: ${RUNS} random sequences (<= ${MAX_OPS} ops) agree on Redis and in memory`, {
  timeout: 120_000 + RUNS * 400,
}, async () => {
  const stats = new Stats();
  const env = {
    client,
    stats,
    nextPrefix: () => `${base}-${counter++}`,
  };
  const started = Date.now();
  let firstFailure: { seq: Sequence; d: Divergence } | undefined;
  const property = fc.asyncProperty(sequenceArb(MAX_OPS), async (seq) => {
    const d = await runSequence(seq, env);
    if (d) {
      firstFailure ??= { seq, d };
      return false;
    }
    passed.add(`${base}-${counter - 1}`);
    if (passed.size >= 200) await dropPassed();
    return true;
  });
  const details = await fc.check(property, { numRuns: RUNS, seed: SEED, endOnFailure: false });
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  const summary =
    `[model] seed ${details.seed}: ${details.numRuns} sequences passed` +
    `${details.failed ? ` before a failure (${details.numShrinks} shrinks)` : ''}; ` +
    `${stats.sequences} sequences and ${stats.ops} ops run on each backend in ${seconds}s`;
  console.log(`${summary}\n[model] outcomes of the agreeing steps:\n${stats.table()}`);
  if (details.failed) {
    const seq = (details.counterexample?.[0] ?? firstFailure?.seq) as Sequence;
    const d = (await runSequence(seq, env)) ?? firstFailure?.d;
    const text = d
      ? report(seq, d, `Redis and memory diverge (seed ${details.seed}, path ${details.counterexamplePath})`)
      : `the failure did not reproduce on replay (seed ${details.seed}, path ${details.counterexamplePath}); first failing sequence: ${JSON.stringify(firstFailure?.seq)}\n${firstFailure ? report(firstFailure.seq, firstFailure.d, 'first failure') : ''}`;
    console.error(text);
    expect.fail(text);
  }
});
