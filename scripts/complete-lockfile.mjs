#!/usr/bin/env node
/**
 * Completes package-lock.json with the platform-specific optional packages this machine's npm
 * registry does not serve (e.g. @biomejs/cli-darwin-arm64, @msgpackr-extract/*-win32-x64).
 *
 * Why: `npm install` here cannot fetch other platforms' binaries, so it leaves them out of the
 * lock file, and `npm ci` then refuses the lock ("Missing: @biomejs/cli-darwin-arm64@ from lock
 * file"). An entry with the package's os/cpu (/libc) is all `npm ci` needs: it skips optional
 * packages of another platform without fetching them. Idempotent; run after `npm install`.
 * `.ci/run` runs it before `npm ci` too, so a lock regenerated here never breaks CI.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const OS = ['android', 'darwin', 'freebsd', 'linux', 'win32', 'openbsd', 'sunos', 'aix'];
const CPU = ['arm64', 'x64', 'arm', 'ia32', 'ppc64', 's390x', 'riscv64', 'loong64'];

/** os/cpu/libc from a platform package name such as cli-linux-arm64-musl. */
function platformOf(name) {
  const parts = name.split('/').pop().split('-');
  const os = parts.find((p) => OS.includes(p));
  const cpu = parts.find((p) => CPU.includes(p));
  if (!os || !cpu) return undefined;
  const platform = { os: [os], cpu: [cpu] };
  if (parts.includes('musl')) platform.libc = ['musl'];
  else if (os === 'linux' && parts.includes('gnu')) platform.libc = ['glibc'];
  return platform;
}

const path = join(process.argv[2] ?? process.cwd(), 'package-lock.json');
const lock = JSON.parse(readFileSync(path, 'utf8'));
const packages = lock.packages ?? {};
const added = [];
for (const [key, entry] of Object.entries(packages)) {
  for (const [dep, version] of Object.entries(entry.optionalDependencies ?? {})) {
    const at = `node_modules/${dep}`;
    if (packages[at] || !/^\d+\.\d+\.\d+$/.test(version)) continue;
    const platform = platformOf(dep);
    if (!platform) continue;
    packages[at] = { version, ...(entry.dev ? { dev: true } : {}), optional: true, ...platform };
    added.push(`${dep}@${version} (for ${key.replace(/^node_modules\//, '')})`);
  }
}
if (added.length > 0) {
  lock.packages = Object.fromEntries(Object.entries(packages).sort(([a], [b]) => (a === '' ? -1 : b === '' ? 1 : a < b ? -1 : a > b ? 1 : 0)));
  writeFileSync(path, `${JSON.stringify(lock, null, 2)}\n`);
  console.log(`complete-lockfile: added ${added.length} platform entries:\n  ${added.join('\n  ')}`);
} else {
  console.log('complete-lockfile: nothing to add');
}
