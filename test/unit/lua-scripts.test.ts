/**
 * The script loader (src/redis/scripts/): include expansion with declared dependencies, the
 * header's KEYS as the one source of what a call sends, the generated K and E preludes and the
 * load-time checks, and lua/generated/ kept equal to what Redis runs. No server needed.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { STORE_ERROR_CODES } from '../../src/contract/errors.js';
import { SESSION_KEY_NAMES, SHARD_KEY_NAMES } from '../../src/redis/keys.js';
import { SCRIPT_ERROR_CODES, STORE_ERROR_BY_SCRIPT_CODE } from '../../src/redis/script-errors.js';
import { expandIncludes, ScriptLoaderError } from '../../src/redis/scripts/lua-includes.js';
import { LUA_DIR, loadScripts, registerScripts } from '../../src/redis/scripts/registry.js';
import { codeOnly, scriptText, undefinedFunctions } from '../../src/redis/scripts/script-text.js';

/** A lua/ folder of its own: `files` maps a path under it to its text. */
function luaDir(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'rts-lua-'));
  mkdirSync(join(dir, 'include'));
  for (const [path, text] of Object.entries(files)) writeFileSync(join(dir, path), text);
  return dir;
}

const HEADER =
  '--[[\n  t: a test script.\n\n  KEYS[1] lease\n  KEYS[2] dispatch\n\n  ARGV[1] encoded session id\n\n  Reply:\n    { 0 }\n]]\n';

describe('includes', () => {
  test('an include brings its own dependencies first, each file once', () => {
    const dir = luaDir({
      'include/a.lua': '-- @include b\nlocal function a() return b() end',
      'include/b.lua': 'local function b() return 1 end',
    });
    const out = expandIncludes('-- @include a\n-- @include b\nreturn a()', 't.lua', dir);
    expect(out.indexOf('local function b')).toBeLessThan(out.indexOf('local function a'));
    expect(out.match(/local function b/g)).toHaveLength(1);
    expect(out).toContain('-- (include b: already above)');
  });

  test('a missing include names the file and line; a cycle names the chain', () => {
    const dir = luaDir({ 'include/x.lua': '-- @include y', 'include/y.lua': '-- @include x' });
    expect(() => expandIncludes('\n-- @include nope', 't.lua', dir)).toThrow(/t\.lua:2: no include named nope/);
    expect(() => expandIncludes('-- @include x', 't.lua', dir)).toThrow(ScriptLoaderError);
    expect(() => expandIncludes('-- @include x', 't.lua', dir)).toThrow(/include cycle x -> y -> x/);
  });
});

describe('headers and preludes', () => {
  test('K comes from the header, in KEYS order; E holds the codes the script names', () => {
    const dir = luaDir({
      'include/common.lua': 'local function fail(code) return { code } end',
      't.lua': `${HEADER}-- @include common\nredis.call('HGET', K.lease, 'x')\nredis.call('ZADD', K.dispatch, 0, ARGV[1])\nreturn fail(E.Backend)`,
    });
    const t = scriptText('t', dir);
    expect(t.keys).toEqual(['lease', 'dispatch']);
    const lines = t.lua.split('\n');
    expect(lines[1]).toBe('local K = { lease = KEYS[1], dispatch = KEYS[2] }');
    expect(lines[2]).toBe(`local E = { Backend = ${SCRIPT_ERROR_CODES.Backend} }`);
  });

  test('a key the code names but the header does not list is refused at load', () => {
    const dir = luaDir({ 't.lua': `${HEADER}redis.call('DEL', K.lease, K.dispatch, K.inputs, K.tomb)\nreturn { 0 }` });
    expect(() => scriptText('t', dir)).toThrow(/K\.inputs, K\.tomb, which its header's KEYS do not list/);
  });

  test('a key named only in a comment or a string needs no KEYS entry', () => {
    const dir = luaDir({
      't.lua': `${HEADER}-- K.inputs is not used\nlocal s = 'K.tomb'\nreturn { 0, s, K.lease, K.dispatch }`,
    });
    expect(scriptText('t', dir).keys).toEqual(['lease', 'dispatch']);
  });

  test('a key the header lists but no reachable code names is refused at load', () => {
    const dir = luaDir({
      'include/h.lua': 'local function unused() return K.dispatch end\nlocal function used() return K.lease end',
      't.lua': `${HEADER}-- @include h\nreturn { 0, used() }`,
    });
    expect(() => scriptText('t', dir)).toThrow(/its header lists dispatch, which its code never names/);
  });

  test('included helpers that nothing reaches are dropped; what the body reaches stays', () => {
    const dir = luaDir({
      'include/h.lua':
        'local function a()\n  return b()\nend\n\nlocal function b()\n  return K.lease\nend\n\nlocal function c()\n  return K.dispatch\nend',
      't.lua': `${HEADER.replace('  KEYS[2] dispatch\n', '')}-- @include h\nreturn { 0, a() }`,
    });
    const lua = scriptText('t', dir).lua;
    expect(lua).toContain('local function a()');
    expect(lua).toContain('local function b()');
    expect(lua).not.toContain('local function c()');
  });

  test('headers must number KEYS from 1 and use known key names', () => {
    const gap = luaDir({ 't.lua': '--[[\n  KEYS[1] lease\n  KEYS[3] next\n]]\nreturn { 0 }' });
    expect(() => scriptText('t', gap)).toThrow(/expected KEYS\[2\], found KEYS\[3\]/);
    const unknown = luaDir({ 't.lua': '--[[\n  KEYS[1] leases\n]]\nreturn { 0 }' });
    expect(() => scriptText('t', unknown)).toThrow(/no key is named leases/);
    const bare = luaDir({ 't.lua': 'return { 0 }' });
    expect(() => scriptText('t', bare)).toThrow(/opens with a --\[\[ header/);
  });

  test('an error name missing from src/redis/script-errors.ts is refused at load', () => {
    const dir = luaDir({ 't.lua': `${HEADER}return { E.NoSuchError, K.lease, K.dispatch }` });
    expect(() => scriptText('t', dir)).toThrow(/E\.NoSuchError is not in src\/redis\/script-errors\.ts/);
  });

  test('a helper called but defined in no include is refused at load', () => {
    const dir = luaDir({
      't.lua': `${HEADER}local x = helper(1)\nreturn { 0, tonumber('1'), string.len('a'), x, K.lease, K.dispatch }`,
    });
    expect(() => scriptText('t', dir)).toThrow(/calls helper, defined in no include it has/);
    expect(
      undefinedFunctions(codeOnly('local function f(a) return g(a) end\nlocal h = function(b) return f(b) end')),
    ).toEqual(['g']);
  });

  test('codeOnly drops comments, long comments and strings, and keeps code', () => {
    expect(codeOnly("local a = 'x -- y' -- K.a\n--[[ K.b\n]] local b = [[K.c]] .. K.d")).toBe(
      'local a = \'\' \n local b = "" .. K.d',
    );
  });
});

describe('the scripts of lua/', () => {
  test('every script loads, and its keys are names of src/redis/keys.ts', () => {
    const names = new Set<string>([...SESSION_KEY_NAMES, ...SHARD_KEY_NAMES]);
    const scripts = loadScripts();
    expect(scripts.length).toBeGreaterThan(20);
    for (const s of scripts) {
      expect(s.keys.length, s.file).toBeGreaterThan(0);
      for (const k of s.keys) expect(names.has(k), `${s.file}: ${k}`).toBe(true);
    }
  });

  test('lua/generated holds exactly the text Redis runs (npm run build writes it; npm test builds first)', () => {
    const dir = join(LUA_DIR, 'generated');
    expect(existsSync(dir), 'lua/generated is missing: run npm run build').toBe(true);
    const scripts = loadScripts();
    expect(readdirSync(dir).sort()).toEqual(scripts.map((s) => `${s.file}.lua`).sort());
    for (const s of scripts) expect(readFileSync(join(dir, `${s.file}.lua`), 'utf8'), s.file).toBe(s.lua);
  });

  test('the error table: distinct codes, each a StoreError code, 0 reserved for success', () => {
    const codes = Object.values(SCRIPT_ERROR_CODES);
    expect(new Set(codes).size).toBe(codes.length);
    expect(codes).not.toContain(0);
    for (const [name, code] of Object.entries(SCRIPT_ERROR_CODES)) {
      expect(STORE_ERROR_CODES).toContain(name);
      expect(STORE_ERROR_BY_SCRIPT_CODE.get(code)).toBe(name);
    }
  });
});

describe('registerScripts', () => {
  test('a defined command keeps its argument array (no Array#flat copy) and still stringifies numbers', async () => {
    const { Redis } = await import('ioredis');
    const client = new Redis({ lazyConnect: true });
    try {
      registerScripts(client);
      const script = (
        client as unknown as { scriptsSet: Record<string, { Command: new (...a: unknown[]) => unknown }> }
      ).scriptsSet.rts_enqueue_input;
      const args: unknown[] = ['sha', 6, 'k1', Buffer.from('b')];
      const command = new script.Command('evalsha', args, {}) as { args: unknown[]; bufferMode?: boolean };
      expect(command.args).toBe(args);
      expect(command.args).toEqual(['sha', '6', 'k1', Buffer.from('b')]);
      expect(command.bufferMode).toBe(true);
    } finally {
      client.disconnect();
    }
  });
});
