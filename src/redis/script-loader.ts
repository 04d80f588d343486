/**
 * Loads lua/<verb-noun>.lua, expands `-- @include <name>` lines from lua/include/<name>.lua
 * (shared helpers are included, never copied), and registers each script with ioredis
 * defineCommand under `rts_<verb_noun>`. Callers pass numkeys first.
 *
 * Load-time reductions keep the per-call cost of a script down (bench/RESULTS.md): a script's
 * body runs in full on every call, and every closure, table and string it creates costs Redis CPU.
 *   1. helpers an included file defines but the script never reaches are dropped (Lua creates a
 *      closure for every `local function` on every call);
 *   2. a per-session script (one that includes `keys`) receives only the session-block keys it
 *      names as `K.<name>`, in block order, and each `K.<name>` becomes `KEYS[<position>]` (no K
 *      table per call); `sessionKeyIndexes(command)` tells RedisContext which keys to send;
 *   3. every `E.<name>` error code becomes its number (no E table per call).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** lua/ sits two levels above both src/redis and dist/redis. */
export const LUA_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'lua');

const INCLUDE = /^--\s*@include\s+([a-z0-9-]+)\s*$/;

export function expandIncludes(source: string, dir: string = LUA_DIR, seen: Set<string> = new Set()): string {
  return source
    .split('\n')
    .map((line) => {
      const m = INCLUDE.exec(line.trim());
      if (!m) return line;
      const name = m[1];
      if (seen.has(name)) return `-- (${name} already included)`;
      seen.add(name);
      const body = readFileSync(join(dir, 'include', `${name}.lua`), 'utf8');
      return `-- >>> include ${name}\n${expandIncludes(body, dir, seen)}\n-- <<< include ${name}`;
    })
    .join('\n');
}

export interface LoadedScript {
  /** File name without .lua, e.g. `try-claim-lease`. */
  file: string;
  /** The ioredis command name, e.g. `rts_try_claim_lease`. */
  command: string;
  lua: string;
  /**
   * Per-session scripts: the positions (0-based, in the full session block of src/redis/keys.ts)
   * of the keys the script uses, in the order it receives them. Absent for shard-only scripts.
   */
  keyIndexes?: number[];
}

const FUNCTION_START = /^local function ([A-Za-z_][A-Za-z0-9_]*)\s*\(/;

/**
 * Drops the top-level `local function` blocks of included files that nothing in the script
 * reaches (a block runs from its `local function name(` line to the next line that is exactly
 * `end`, the layout every include follows). Name references are found textually, comments
 * excluded, so a kept reference is never missed; when a block's shape is not recognised the
 * script is returned unchanged.
 */
export function dropUnusedHelpers(lua: string): string {
  const lines = lua.split('\n');
  const blocks: { name: string; start: number; end: number }[] = [];
  let depth = 0;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (line.startsWith('-- >>> include ')) depth++;
    else if (line.startsWith('-- <<< include ')) depth--;
    else if (depth > 0) {
      const m = FUNCTION_START.exec(line);
      if (!m) continue;
      let j = i + 1;
      while (j < lines.length && lines[j] !== 'end') {
        if (FUNCTION_START.test(lines[j]) || lines[j].startsWith('-- <<< include ')) return lua;
        j++;
      }
      if (j >= lines.length) return lua;
      blocks.push({ name: m[1], start: i, end: j });
      i = j;
    }
  }
  const owner = new Array<number>(lines.length).fill(-1);
  blocks.forEach((b, k) => {
    for (let i = b.start; i <= b.end; i++) owner[i] = k;
  });
  const code = (from: number, to: number) =>
    lines
      .slice(from, to + 1)
      .map((l) => l.replace(/--.*$/, ''))
      .join('\n');
  const referenced = (text: string, except: string) =>
    blocks.filter((b) => b.name !== except && new RegExp(`\\b${b.name}\\b`).test(text)).map((b) => b.name);
  const outside = lines.map((l, i) => (owner[i] < 0 ? l.replace(/--.*$/, '') : '')).join('\n');
  const keep = new Set(referenced(outside, ''));
  for (let grew = true; grew; ) {
    grew = false;
    for (const b of blocks) {
      if (!keep.has(b.name)) continue;
      for (const name of referenced(code(b.start, b.end), b.name)) {
        if (!keep.has(name)) {
          keep.add(name);
          grew = true;
        }
      }
    }
  }
  return lines.filter((_, i) => owner[i] < 0 || keep.has(blocks[owner[i]].name)).join('\n');
}

/** `name = KEYS[i]` pairs of lua/include/keys.lua: the K names in session-block order. */
function blockNames(dir: string): string[] {
  const source = readFileSync(join(dir, 'include', 'keys.lua'), 'utf8');
  const named = [...source.matchAll(/([a-z_]+)\s*=\s*KEYS\[(\d+)\]/g)].map((m) => [Number(m[2]), m[1]] as const);
  named.sort((a, b) => a[0] - b[0]);
  return named.map(([, n]) => n);
}

const KEYS_SECTION = /-- >>> include keys\n[\s\S]*?\n-- <<< include keys/;
const KEYS_ORDER = /^--\s*@keys\s+([a-z_ ]+)$/m;

/**
 * Narrows a per-session script's KEYS to the block keys it names (`K.<name>`), in block order or
 * in the order of its `-- @keys` line, and rewrites each reference to `KEYS[<position>]`, dropping the `local K = {...}` of the keys
 * include. A script with no such reference still gets the block's first key, so a Cluster client
 * can route it.
 */
export function narrowKeys(lua: string, names: string[]): { lua: string; keyIndexes?: number[] } {
  const section = KEYS_SECTION.exec(lua);
  if (!section) return { lua };
  const rest = lua.slice(0, section.index) + lua.slice(section.index + section[0].length);
  const used = new Set([...rest.replace(/--.*$/gm, '').matchAll(/\bK\.([a-z_]+)\b/g)].map((m) => m[1]));
  for (const u of used)
    if (!names.includes(u)) throw new Error(`script uses K.${u}, which lua/include/keys.lua does not name`);
  let keyIndexes = names.map((n, i) => (used.has(n) ? i : -1)).filter((i) => i >= 0);
  // `-- @keys <name> ...` fixes the order instead: the keys every call needs first, so a caller
  // can send a prefix of them (RedisContext.run's keyCount) when a call cannot reach the rest.
  const order = KEYS_ORDER.exec(lua);
  if (order) {
    const listed = order[1].trim().split(/\s+/);
    const missing = [...used].filter((u) => !listed.includes(u));
    const extra = listed.filter((n) => !used.has(n));
    if (missing.length > 0 || extra.length > 0 || new Set(listed).size !== listed.length) {
      throw new Error(`-- @keys must list each key the script uses once (missing ${missing}, not used ${extra})`);
    }
    keyIndexes = listed.map((n) => names.indexOf(n));
  }
  if (keyIndexes.length === 0) keyIndexes = [0];
  // Every K.<name> becomes KEYS[<position>] (a table built per call costs more than the lookups).
  const position = new Map(keyIndexes.map((blockIndex, k) => [names[blockIndex], k + 1]));
  const body = section[0].replace(/local K = \{[\s\S]*?\n\}\n?/, '');
  if (body === section[0]) throw new Error('lua/include/keys.lua: could not find its `local K = {...}` table');
  // Code only: comments keep naming keys as K.<name>.
  const direct = (text: string) =>
    text
      .split('\n')
      .map((line) => {
        const at = line.indexOf('--');
        const code = at < 0 ? line : line.slice(0, at);
        const rewritten = code.replace(/\bK\.([a-z_]+)\b/g, (_, name: string) => `KEYS[${position.get(name)}]`);
        return at < 0 ? rewritten : rewritten + line.slice(at);
      })
      .join('\n');
  return {
    lua: direct(lua.slice(0, section.index)) + body + direct(lua.slice(section.index + section[0].length)),
    keyIndexes,
  };
}

const ERROR_TABLE = /local E = \{\n([\s\S]*?)\n\}\n?/;

/**
 * Turns every `E.<name>` of a script into its number and drops the `local E = {...}` table of
 * lua/include/common.lua, so no script builds that table on every call.
 */
export function inlineErrorCodes(lua: string): string {
  const table = ERROR_TABLE.exec(lua);
  if (!table) return lua;
  const codes = new Map([...table[1].matchAll(/([A-Za-z]+)\s*=\s*(-?\d+)/g)].map((m) => [m[1], m[2]]));
  const rest = lua.slice(0, table.index) + lua.slice(table.index + table[0].length);
  if (/\bE\[/.test(rest.replace(/--.*$/gm, ''))) throw new Error('a script indexes E dynamically; use E.<name>');
  return rest.replace(/\bE\.([A-Za-z]+)\b/g, (_, name: string) => {
    const code = codes.get(name);
    if (code === undefined) throw new Error(`script uses E.${name}, which lua/include/common.lua does not define`);
    return `(${code})`;
  });
}

export function commandName(file: string): string {
  return `rts_${file.replace(/-/g, '_')}`;
}

let cache: LoadedScript[] | undefined;

export function loadScripts(dir: string = LUA_DIR): LoadedScript[] {
  if (dir === LUA_DIR && cache) return cache;
  const names = blockNames(dir);
  const scripts = readdirSync(dir)
    .filter((f) => f.endsWith('.lua'))
    .sort()
    .map((f) => {
      const file = f.slice(0, -4);
      const expanded = inlineErrorCodes(dropUnusedHelpers(expandIncludes(readFileSync(join(dir, f), 'utf8'), dir)));
      return { file, command: commandName(file), ...narrowKeys(expanded, names) };
    });
  if (dir === LUA_DIR) {
    cache = scripts;
    keyIndexCache = new Map(scripts.map((s) => [s.command, s.keyIndexes]));
  }
  return scripts;
}

let keyIndexCache: Map<string, number[] | undefined> | undefined;

/** The session-block positions a per-session command takes (see LoadedScript.keyIndexes). */
export function sessionKeyIndexes(command: string): number[] | undefined {
  if (!keyIndexCache) loadScripts();
  return keyIndexCache?.get(command);
}

const keyCountCache = new Map<string, number>();

/**
 * How many keys to send so that a command ordered by `-- @keys` receives its keys up to and
 * including `name` (a K name of lua/include/keys.lua): the prefix a call that reaches no later
 * key needs (RedisContext.run's keyCount).
 */
export function keyCountThrough(command: string, name: string): number {
  const id = `${command} ${name}`;
  let n = keyCountCache.get(id);
  if (n === undefined) {
    const block = blockNames(LUA_DIR);
    const at = sessionKeyIndexes(command)?.findIndex((i) => block[i] === name) ?? -1;
    if (at < 0) throw new Error(`${command} takes no key named ${name}`);
    n = at + 1;
    keyCountCache.set(id, n);
  }
  return n;
}

interface DefinesCommands {
  defineCommand(name: string, definition: { lua: string; numberOfKeys?: number }): void;
}

/** Registers every script on a client (standalone or Cluster). Idempotent per client. */
export function registerScripts(client: DefinesCommands): void {
  for (const s of loadScripts()) client.defineCommand(s.command, { lua: s.lua });
}
