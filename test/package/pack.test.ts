/**
 * The package as a new user gets it (issue 22): the worktree's files are copied as a clean clone
 * would have them (tracked and untracked-but-not-ignored files, so no dist/), `npm pack` runs
 * `prepack` (the build), and the tarball is installed into a fresh app in os.tmpdir() with the
 * newest ioredis 6.x from the registry. Then:
 *   - the tarball holds dist/, lua/, docs/, LICENSE and no source maps;
 *   - every TypeScript block of README.md type-checks with `tsc --strict` in that app;
 *   - the blocks marked `<!-- readme-example: run -->` run to completion against the test Redis;
 *   - require() works (require(esm), Node >= 20.19) and so does a `.cts` consumer;
 *   - the CLI prints its version, and `dashboard` says what to install when express is missing;
 *   - the install is within 1.5x of `npm install bullmq ioredis` (packages and bytes).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import {
  cpSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { redisUrl } from '../support/prefix.js';

const root = join(import.meta.dirname, '..', '..');
const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
const work = mkdtempSync(join(tmpdir(), 'rts-pack-'));
const app = join(work, 'app');
const npmEnv = {
  ...process.env,
  npm_config_audit: 'false',
  npm_config_fund: 'false',
  npm_config_update_notifier: 'false',
};

function run(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = npmEnv, timeout = 120_000) {
  const r = spawnSync(cmd, args, { cwd, env, encoding: 'utf8', timeout });
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '', error: r.error };
}

function ok(cmd: string, args: string[], cwd: string, env?: NodeJS.ProcessEnv, timeout?: number): string {
  const r = run(cmd, args, cwd, env, timeout);
  if (r.status !== 0)
    throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.error ?? ''}\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

/** Files of a clean clone of the worktree as it is now. */
function cloneFiles(dest: string): void {
  const listed = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], {
    cwd: root,
    encoding: 'utf8',
  });
  for (const file of listed.split('\0').filter(Boolean)) {
    const from = join(root, file);
    try {
      if (!statSync(from).isFile()) continue;
    } catch {
      continue; // deleted in the work tree
    }
    mkdirSync(dirname(join(dest, file)), { recursive: true });
    cpSync(from, join(dest, file));
  }
}

/** node_modules package count (`npm ls --all`) and size in kB (`du -sk`). */
function footprint(dir: string): { packages: number; kb: number } {
  const parseable = run('npm', ['ls', '--all', '--parseable'], dir).stdout;
  const packages = parseable.split('\n').filter((l) => l.includes('node_modules')).length;
  const kb = Number(ok('du', ['-sk', 'node_modules'], dir).split(/\s/)[0]);
  return { packages, kb };
}

interface Block {
  code: string;
  run: boolean;
}

function readmeBlocks(): Block[] {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const blocks: Block[] = [];
  const fence = /(?:<!-- readme-example: ([^>]*?) -->\s*\n)?```ts\n([\s\S]*?)```/g;
  for (const m of readme.matchAll(fence)) blocks.push({ code: m[2], run: m[1] === 'run' });
  return blocks;
}

let tarball = '';
let packedFiles: string[] = [];
const prefix = `readme-${process.pid}-${Date.now()}`;

beforeAll(() => {
  const clone = join(work, 'clone');
  cloneFiles(clone);
  // The clone's build tools: the worktree's installed packages (a clean clone runs `npm ci` first).
  symlinkSync(join(root, 'node_modules'), join(clone, 'node_modules'), 'dir');
  const out = ok('npm', ['pack', '--json', '--pack-destination', work], clone, npmEnv, 180_000);
  const info = JSON.parse(out.slice(out.indexOf('['))) as Array<{ filename: string; files: Array<{ path: string }> }>;
  tarball = join(work, info[0].filename);
  packedFiles = info[0].files.map((f) => f.path);

  mkdirSync(app);
  writeFileSync(
    join(app, 'package.json'),
    JSON.stringify({ name: 'rts-app', version: '1.0.0', private: true, type: 'module' }),
  );
  ok('npm', ['install', tarball, 'ioredis@^6'], app, npmEnv, 180_000);
}, 240_000);

afterAll(() => {
  rmSync(work, { recursive: true, force: true });
});

describe('the packed package in a fresh app', () => {
  test('the tarball has the build, the Lua, the docs and the license, and no source maps', () => {
    expect(packedFiles).toContain('dist/index.js');
    expect(packedFiles).toContain('dist/index.d.ts');
    expect(packedFiles).toContain('dist/dashboard/index.js');
    expect(packedFiles).toContain('dist/cli/main.js');
    expect(packedFiles).toContain('dist/vendor/zod.js');
    expect(packedFiles).toContain('lua/enqueue-input.lua');
    expect(packedFiles).toContain('docs/KEYS.md');
    expect(packedFiles).toContain('docs/api/README.md');
    expect(packedFiles).toContain('LICENSE');
    expect(packedFiles.filter((f) => f.endsWith('.map'))).toEqual([]);
    expect(packedFiles.filter((f) => f.startsWith('src/') || f.startsWith('test/'))).toEqual([]);
    // Every relative link of README.md points at a shipped file.
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    for (const [, target] of readme.matchAll(/\]\(((?!https?:|#)[^)#\s]+)(?:#[^)]*)?\)/g)) {
      expect(packedFiles, `README links ${target}`).toContain(target);
    }
  });

  test('the newest ioredis 6 is the one copy, shared with the store; no dashboard packages', () => {
    const installed = readdirSync(join(app, 'node_modules'));
    expect(installed).not.toContain('express');
    expect(installed).not.toContain('zod');
    const ioredis = JSON.parse(readFileSync(join(app, 'node_modules/ioredis/package.json'), 'utf8')).version as string;
    expect(ioredis).toMatch(/^6\./);
    expect(() => statSync(join(app, 'node_modules/redis-turn-store/node_modules/ioredis'))).toThrow();
  });

  test('every TypeScript block of README.md compiles with tsc --strict, and the examples run to completion', () => {
    const blocks = readmeBlocks();
    expect(blocks.length).toBeGreaterThanOrEqual(3);
    expect(blocks.filter((b) => b.run).length).toBeGreaterThanOrEqual(2);
    const src = join(app, 'readme');
    mkdirSync(src, { recursive: true });
    blocks.forEach((b, i) => {
      // Each example gets the test's own key prefix instead of the README's 'rts'.
      writeFileSync(join(src, `block${i}.ts`), b.code.replaceAll("keyPrefix: 'rts'", `keyPrefix: '${prefix}-${i}'`));
    });
    writeFileSync(
      join(app, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          strict: true,
          target: 'ES2022',
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          // ioredis 6's own .d.ts does not pass skipLibCheck: false (it imports untyped redis-errors).
          skipLibCheck: true,
          types: ['node'],
          typeRoots: [join(root, 'node_modules', '@types')],
          outDir: 'out',
          rootDir: 'readme',
        },
        include: ['readme'],
      }),
    );
    const compiled = run(process.execPath, [tsc, '-p', 'tsconfig.json'], app);
    expect(compiled.stdout + compiled.stderr).toBe('');
    expect(compiled.status).toBe(0);

    blocks.forEach((b, i) => {
      if (!b.run) return;
      const r = run(
        process.execPath,
        [join(app, 'out', `block${i}.js`)],
        app,
        { ...process.env, REDIS_URL: redisUrl() },
        30_000,
      );
      expect(r.error, `block ${i} must exit by itself`).toBeUndefined();
      expect(r.stderr, `block ${i}`).toBe('');
      expect(r.status, `block ${i}: ${r.stdout}`).toBe(0);
    });
  }, 60_000);

  test('a type error in a payload, an option or the redis option fails to compile', () => {
    const dir = join(app, 'negative');
    mkdirSync(dir, { recursive: true });
    writeFileSync(
      join(dir, 'bad.ts'),
      [
        "import { createRedisRuntimeStore, createInMemoryRuntimeStore } from 'redis-turn-store';",
        'interface Msg { text: string }',
        'const m = createInMemoryRuntimeStore<Msg>();',
        "await m.enqueuePendingTurnInput({ sessionId: 's', ingress: { scope: 'next_turn' }, input: { text: 1 } });",
        'createInMemoryRuntimeStore<{ at: Date }>();',
        'await createRedisRuntimeStore({ redis: 42 });',
        'await createRedisRuntimeStore({ idleDispach: false });',
      ].join('\n'),
    );
    writeFileSync(
      join(dir, 'tsconfig.json'),
      JSON.stringify({ extends: '../tsconfig.json', compilerOptions: { rootDir: '.', noEmit: true }, include: ['.'] }),
    );
    const r = run(process.execPath, [tsc, '-p', join(dir, 'tsconfig.json')], app);
    const out = r.stdout + r.stderr;
    expect(r.status).not.toBe(0);
    for (const line of [4, 5, 6, 7]) expect(out, out).toContain(`bad.ts(${line},`);
  });

  test('CommonJS: require() and a .cts consumer work (require(esm))', () => {
    const r = run(
      process.execPath,
      ['-e', "const m = require('redis-turn-store'); console.log(typeof m.createInMemoryRuntimeStore)"],
      app,
    );
    expect(r.stderr).not.toMatch(/ERR_/);
    expect(r.stdout.trim()).toBe('function');
    const dir = join(app, 'cjs');
    mkdirSync(dir, { recursive: true });
    writeFileSync(
      join(dir, 'consumer.cts'),
      [
        "import { createInMemoryRuntimeStore } from 'redis-turn-store';",
        'async function main() {',
        '  const store = createInMemoryRuntimeStore<{ text: string }>();',
        "  const row = await store.enqueuePendingTurnInput({ sessionId: 's', ingress: { scope: 'next_turn' }, input: { text: 'hi' } });",
        '  console.log(row.input.text);',
        '  await store.close();',
        '}',
        'void main();',
      ].join('\n'),
    );
    writeFileSync(
      join(dir, 'tsconfig.json'),
      JSON.stringify({ extends: '../tsconfig.json', compilerOptions: { rootDir: '.', outDir: 'out' }, include: ['.'] }),
    );
    const compiled = run(process.execPath, [tsc, '-p', join(dir, 'tsconfig.json')], app);
    expect(compiled.stdout + compiled.stderr).toBe('');
    const ran = run(process.execPath, [join(dir, 'out', 'consumer.cjs')], app);
    expect(ran.stderr).toBe('');
    expect(ran.stdout.trim()).toBe('hi');
  });

  test('the CLI: --version, and dashboard names what to install', () => {
    const bin = join(app, 'node_modules', '.bin', 'redis-turn-store');
    const version = run(bin, ['--version'], app);
    expect(version.status).toBe(0);
    expect(version.stdout.trim()).toBe(JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version);
    const dash = run(bin, ['dashboard'], app, { ...process.env, REDIS_URL: redisUrl() }, 20_000);
    expect(dash.status).toBe(1);
    expect(dash.stderr).toContain('npm install express@^5.2.1 @bull-board/api@9.10.1');
  });

  test('the install is within 1.5x of BullMQ on Redis (npm install bullmq ioredis)', () => {
    const base = join(work, 'bullmq-app');
    mkdirSync(base);
    writeFileSync(join(base, 'package.json'), JSON.stringify({ name: 'bullmq-app', version: '1.0.0', private: true }));
    ok('npm', ['install', 'bullmq', 'ioredis'], base, npmEnv, 180_000);
    const ours = footprint(app);
    const theirs = footprint(base);
    console.log(
      `[pack] core install: ${ours.packages} packages, ${ours.kb} kB; bullmq + ioredis: ${theirs.packages} packages, ${theirs.kb} kB`,
    );
    // The app also holds what the tests above compiled (out/, readme/): a few kB.
    expect(ours.packages).toBeLessThanOrEqual(theirs.packages * 1.5);
    expect(ours.kb).toBeLessThanOrEqual(theirs.kb * 1.5);
  }, 120_000);
});
