#!/usr/bin/env node
/**
 * `npm run test:soak -- [--inputs N] [--workers N] [--poison-rate R] [--max-attempts N]`: the
 * exactly-once run across worker processes with one worker SIGKILLed half-way and replaced
 * (default 10 000 inputs, 4 workers). `--poison-rate 0.02` makes that share of the inputs poison
 * (runTurn throws whenever it is given one): each must end `failed` after maxAttempts (default 3)
 * while every other input is processed exactly once.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
const env = { ...process.env, RTS_EO_KILL: '1' };
const argv = process.argv.slice(2);
const names = {
  '--inputs': 'RTS_EO_INPUTS',
  '--workers': 'RTS_EO_WORKERS',
  '--poison-rate': 'RTS_EO_POISON_RATE',
  '--max-attempts': 'RTS_EO_MAX_ATTEMPTS',
};
for (let i = 0; i < argv.length; i++) {
  const [flag, inline] = argv[i].split('=', 2);
  const name = names[flag];
  const value = inline ?? argv[++i];
  const pattern = flag === '--poison-rate' ? /^(0(\.\d+)?|1(\.0+)?)$/ : /^\d+$/;
  if (!name || value === undefined || !pattern.test(value)) {
    console.error('usage: npm run test:soak -- [--inputs N] [--workers N] [--poison-rate 0..1] [--max-attempts N]');
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
