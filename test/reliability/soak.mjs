#!/usr/bin/env node
/**
 * `npm run test:soak -- [--inputs N] [--workers N]`: the exactly-once run across worker processes
 * with one worker SIGKILLed half-way and replaced (default 10 000 inputs, 4 workers).
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
const env = { ...process.env, RTS_EO_KILL: '1' };
const argv = process.argv.slice(2);
const names = { '--inputs': 'RTS_EO_INPUTS', '--workers': 'RTS_EO_WORKERS' };
for (let i = 0; i < argv.length; i++) {
  const [flag, inline] = argv[i].split('=', 2);
  const name = names[flag];
  const value = inline ?? argv[++i];
  if (!name || value === undefined || !/^\d+$/.test(value)) {
    console.error('usage: npm run test:soak -- [--inputs N] [--workers N]');
    process.exit(2);
  }
  env[name] = value;
}
const child = spawn(
  process.execPath,
  [
    fileURLToPath(new URL('../../node_modules/vitest/vitest.mjs', import.meta.url)),
    'run',
    'test/reliability/exactly-once.test.ts',
  ],
  { cwd: root, env, stdio: 'inherit' },
);
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
