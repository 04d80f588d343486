/**
 * Compiled library for child processes (Node 20 cannot run the .ts sources): `tsc -p
 * tsconfig.build.json` into a private directory under node_modules/.cache, keyed by a hash of src/,
 * never the shared dist/ (other tests and the demo use that, and `npm run build` deletes it first).
 * `lua/` is symlinked beside the output, where script-loader expects it (two levels above
 * dist/redis). Concurrent callers (test files in parallel forks) build to temporary directories and
 * the first rename wins.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = fileURLToPath(new URL('../..', import.meta.url));
const CACHE = join(REPO, 'node_modules', '.cache', 'rts-reliability');

function hashTree(dir: string, h = createHash('sha256')): ReturnType<typeof createHash> {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    const st = statSync(p);
    if (st.isDirectory()) hashTree(p, h);
    else h.update(p).update(readFileSync(p));
  }
  return h;
}

/** Returns the directory holding the compiled `index.js` (and `dispatch/`, `demo/`, ...). */
export function buildLibrary(): string {
  const h = hashTree(join(REPO, 'src'));
  h.update(readFileSync(join(REPO, 'tsconfig.json'))).update(readFileSync(join(REPO, 'tsconfig.build.json')));
  const key = h.digest('hex').slice(0, 16);
  const final = join(CACHE, key);
  const dist = join(final, 'dist');
  if (existsSync(join(final, 'done'))) return dist;
  mkdirSync(CACHE, { recursive: true });
  const tmp = join(CACHE, `${key}.tmp-${process.pid}-${Date.now()}`);
  mkdirSync(tmp, { recursive: true });
  const tsc = join(REPO, 'node_modules', '.bin', 'tsc');
  const r = spawnSync(tsc, ['-p', join(REPO, 'tsconfig.build.json'), '--outDir', join(tmp, 'dist')], {
    cwd: REPO,
    encoding: 'utf8',
  });
  if (!existsSync(join(tmp, 'dist', 'index.js'))) {
    rmSync(tmp, { recursive: true, force: true });
    throw new Error(`tsc produced no build (status ${r.status}):\n${r.stdout}\n${r.stderr}`);
  }
  if (r.status !== 0) {
    // Type errors in code others are still editing do not stop the emit; say so and carry on.
    console.warn(
      `[reliability build] tsc exited ${r.status}; using the emitted JavaScript:\n${r.stdout.slice(0, 2000)}`,
    );
  }
  symlinkSync(join(REPO, 'lua'), join(tmp, 'lua'), 'dir');
  try {
    renameSync(tmp, final);
  } catch {
    // Another process won the race with the same sources.
    rmSync(tmp, { recursive: true, force: true });
  }
  // Written after the rename, so a directory marked done is always complete.
  writeFileSync(join(final, 'done'), key);
  // Builds of older sources pile up as src/ changes: drop those untouched for an hour.
  for (const name of readdirSync(CACHE)) {
    const p = join(CACHE, name);
    if (name !== key && Date.now() - statSync(p).mtimeMs > 3_600_000) rmSync(p, { recursive: true, force: true });
  }
  return dist;
}
