#!/usr/bin/env node
/**
 * `npm run test:model -- --runs 10000 [--seed N] [--max-ops N] [--long-every N] [--long-ops N]`: the
 * long differential run; one sequence in --long-every (default 10; 0: none) is a long history of up to
 * --long-ops ops (default 150). Sets RTS_MODEL_RUNS / _SEED / _MAX_OPS / _LONG_EVERY / _LONG_OPS and
 * runs the model test file with vitest (the global setup provides Redis: REDIS_URL, else a private
 * redis-server).
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
const env = { ...process.env };
const argv = process.argv.slice(2);
const names = {
  '--runs': 'RTS_MODEL_RUNS',
  '--seed': 'RTS_MODEL_SEED',
  '--max-ops': 'RTS_MODEL_MAX_OPS',
  '--long-every': 'RTS_MODEL_LONG_EVERY',
  '--long-ops': 'RTS_MODEL_LONG_OPS',
};
for (let i = 0; i < argv.length; i++) {
  const [flag, inline] = argv[i].split('=', 2);
  const name = names[flag];
  const value = inline ?? argv[++i];
  if (!name || value === undefined || !/^-?\d+$/.test(value)) {
    console.error('usage: npm run test:model -- [--runs N] [--seed N] [--max-ops N] [--long-every N] [--long-ops N]');
    process.exit(2);
  }
  env[name] = value;
}
env.RTS_MODEL_RUNS ??= '10000';
console.log(`[test:model] ${env.RTS_MODEL_RUNS} sequences${env.RTS_MODEL_SEED ? `, seed ${env.RTS_MODEL_SEED}` : ''}`);
const child = spawn(
  process.execPath,
  [
    fileURLToPath(new URL('../../node_modules/vitest/vitest.mjs', import.meta.url)),
    'run',
    'test/model/differential.test.ts',
  ],
  { cwd: root, env, stdio: 'inherit' },
);
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
