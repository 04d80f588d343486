/**
 * src/redis/script-loader.ts load-time reductions that change a script's text: unused helpers
 * dropped, and `-- @lazy` functions that define the helpers only they reach inside themselves.
 * The rewritten scripts are run on a real Redis next to the original text, and the store's own
 * scripts are checked for the closures their hot paths no longer create.
 */
import { Redis } from 'ioredis';
import { afterAll, describe, expect, test } from 'vitest';
import { dropUnusedHelpers, lazyHelpers, loadScripts } from '../../src/redis/script-loader.js';
import { redisUrl } from '../support/prefix.js';

/** A script the way expandIncludes leaves it: included helpers between markers, then the body. */
function script(include: string, body: string): string {
  return `-- >>> include test\n${include}\n-- <<< include test\n${body}`;
}

/** The names of the `local function`s a script defines at its top level (outside lazy wrappers). */
function topLevelFunctions(lua: string): string[] {
  const names: string[] = [];
  let inWrapper = false;
  const lines = lua.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (line === 'do' && /^local [A-Za-z_]+$/.test(lines[i - 1] ?? '')) {
      inWrapper = true;
      names.push(`*${lines[i - 1].slice(6)}`);
    } else if (inWrapper) {
      if (line === 'end' && lines[i - 1] === '  end' && /^ {4}return impl\(/.test(lines[i - 2] ?? ''))
        inWrapper = false;
    } else {
      const m = /^local function ([A-Za-z_][A-Za-z0-9_]*)/.exec(line);
      if (m) names.push(m[1]);
    }
  }
  return names;
}

const HELPERS = [
  'local function double(n)',
  '  return n * 2',
  'end',
  'local function shared(n)',
  '  return n + 1',
  'end',
  'local function only_lazy(n)',
  '  return double(n) + shared(0)',
  'end',
  'local function inner_lazy(n)',
  '  return only_lazy(n) * 10',
  'end',
  '-- @lazy',
  'local function lazy_inner(n)',
  '  return inner_lazy(n)',
  'end',
  '-- @lazy',
  'local function cold(n)',
  '  return only_lazy(n) + lazy_inner(n)',
  'end',
].join('\n');

let client: Redis | undefined;
afterAll(() => client?.disconnect());

describe('dropUnusedHelpers', () => {
  test('a name that only comments mention, block comments included, keeps no helper', () => {
    const lua = script(
      'local function used(n)\n  return n\nend\nlocal function mentioned(n)\n  return n\nend',
      '--[[\n  calls used, never mentioned\n]]\n-- mentioned here too\nreturn used(1) --[[ mentioned ]] + 1',
    );
    const out = dropUnusedHelpers(lua);
    expect(topLevelFunctions(out)).toEqual(['used']);
  });
});

describe('lazyHelpers', () => {
  test('moves what only a lazy function reaches inside it; what the body reaches stays on top', () => {
    const lua = script(HELPERS, 'local x = tonumber(ARGV[1])\nif x > 0 then return cold(x) end\nreturn shared(x)');
    const out = lazyHelpers(dropUnusedHelpers(lua));
    // cold stays (the body names it) as a wrapper; shared stays (the body names it too); double,
    // only_lazy and lazy_inner (a lazy function reached only from cold) are defined inside cold.
    expect(topLevelFunctions(out)).toEqual(['shared', '*cold']);
    expect(out).toMatch(/^ {2}cold = function\(n\)$/m);
    expect(out.indexOf('local function lazy_inner(n)')).toBeGreaterThan(out.indexOf('if not impl then'));
  });

  test('a script without @lazy is unchanged', () => {
    const lua = script('local function a(n)\n  return n\nend', 'return a(1)');
    expect(lazyHelpers(lua)).toBe(lua);
  });

  test('a lazy function of the script body may move included helpers into itself', () => {
    const lua = script(
      'local function helper(n)\n  return n * 3\nend',
      'local base = tonumber(ARGV[1])\n-- @lazy\nlocal function rare(n)\n  return helper(n) + base\nend\nif base < 0 then return rare(1) end\nreturn base',
    );
    const out = lazyHelpers(lua);
    expect(topLevelFunctions(out)).toEqual(['*rare']);
  });

  test('refuses a move that would change what a name means', () => {
    const lua = script(
      'local limit = 5\nlocal function capped(n)\n  return math.min(n, limit)\nend',
      'local limit = 1\n-- @lazy\nlocal function rare(n)\n  return capped(n)\nend\nreturn rare(9)',
    );
    expect(() => lazyHelpers(lua)).toThrow(/would shadow limit/);
  });

  test('parameters, locals and field names of a moved helper do not count as shadowed names', () => {
    const lua = script(
      'local function pick(row, limit)\n  local seq = row.seq\n  return { seq = seq, limit = limit }\nend',
      'local limit, seq = 1, 2\n-- @lazy\nlocal function rare(r)\n  return pick(r, limit)\nend\nreturn rare({ seq = 7 }).seq',
    );
    expect(topLevelFunctions(lazyHelpers(lua))).toEqual(['*rare']);
  });

  test('the rewritten script returns what the original returns, on every path, called repeatedly', async () => {
    client ??= new Redis(redisUrl());
    const body = [
      'local x = tonumber(ARGV[1])',
      'local total = 0',
      'for i = 1, tonumber(ARGV[2]) do',
      '  if x > 0 then total = total + cold(x + i) else total = total + shared(x + i) end',
      'end',
      'return total',
    ].join('\n');
    const original = script(HELPERS, body);
    const rewritten = lazyHelpers(dropUnusedHelpers(original));
    expect(rewritten).not.toBe(original);
    for (const [x, times] of [
      [3, 1],
      [3, 4],
      [-2, 3],
      [0, 2],
    ]) {
      const want = await client.eval(original, 0, String(x), String(times));
      expect(await client.eval(rewritten, 0, String(x), String(times))).toBe(want);
    }
  });
});

describe('the store scripts (lua/)', () => {
  const top = (file: string) => topLevelFunctions(loadScripts().find((s) => s.file === file)?.lua ?? '');

  test('every script loads and its lazy functions are wrappers', () => {
    for (const s of loadScripts()) expect(s.lua.length).toBeGreaterThan(0);
    expect(top('try-claim-lease')).toContain('*requeue_stranded_rows');
  });

  test('the hot paths do not create the closures of the paths they skip', () => {
    // T9's row moves: only when a fresh acquisition finds stranded rows.
    expect(top('try-claim-lease')).not.toContain('row_set_state');
    expect(top('try-claim-lease')).not.toContain('row_decode');
    // A next-turn claim of text rows: no decoding, no state moves, no active-mode helpers.
    for (const name of ['row_decode', 'row_set_state', 'pct', 'row_get', 'row_put']) {
      expect(top('claim-inputs')).not.toContain(name);
    }
    // A commit completing claimed text rows: no decoding, no state machine, no attachment helpers.
    for (const name of ['row_decode', 'row_set_state', 'row_clear_claim', 'att_member', 'pct']) {
      expect(top('commit-runtime-state')).not.toContain(name);
    }
    // The sweep's header comment names dispatchable; its code only needs the row check.
    expect(top('sweep-session')).not.toContain('dispatchable');
    // A next-turn enqueue without a source key.
    for (const name of ['row_decode', 'active_member', 'ingress_matches']) {
      expect(top('enqueue-input')).not.toContain(name);
    }
  });
});
