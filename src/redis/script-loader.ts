/**
 * Loads lua/<verb-noun>.lua, expands `-- @include <name>` lines from lua/include/<name>.lua
 * (shared helpers are included, never copied), and registers each script with ioredis
 * defineCommand under `rts_<verb_noun>`. Callers pass numkeys first. On a standalone client
 * RedisContext sends the EVALSHA itself (scriptSha) and uses the defined command only when the
 * server answers NOSCRIPT.
 *
 * Load-time reductions keep the per-call cost of a script down (bench/RESULTS.md): a script's
 * body runs in full on every call, and every closure, table and string it creates costs Redis CPU.
 *   1. helpers an included file defines but the script never reaches are dropped (Lua creates a
 *      closure for every `local function` on every call);
 *   2. a per-session script (one that includes `keys`) receives only the session-block keys it
 *      names as `K.<name>`, in block order, and each `K.<name>` becomes `KEYS[<position>]` (no K
 *      table per call); `sessionKeyIndexes(command)` tells RedisContext which keys to send;
 *   3. every `E.<name>` error code becomes its number (no E table per call);
 *   4. the helpers that only a `-- @lazy` function reaches are defined inside it, when a call
 *      first reaches it (lazyHelpers), so a call that never takes that path creates none of them.
 */
import { createHash } from 'node:crypto';
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
const PARAMS = /^local function [A-Za-z_][A-Za-z0-9_]*\s*\(([^)]*)\)/;
const LAZY = /^--\s*@lazy\b/;

/** A top-level `local function` of an included file (or a lazy one of the script's body): its lines. */
interface HelperBlock {
  name: string;
  params: string;
  start: number;
  end: number;
  /** Marked `-- @lazy` on the line before it (see lazyHelpers). */
  lazy: boolean;
}

/**
 * The top-level `local function` blocks of the included files (and, `withLazyBody`, the script's
 * own `-- @lazy` functions): each runs from its `local function name(...)` line to the next line
 * that is exactly `end`, the layout every include follows. undefined when a block's shape is not
 * recognised.
 */
function helperBlocks(lines: string[], withLazyBody = false): HelperBlock[] | undefined {
  const blocks: HelperBlock[] = [];
  let depth = 0;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (line.startsWith('-- >>> include ')) depth++;
    else if (line.startsWith('-- <<< include ')) depth--;
    else {
      const m = FUNCTION_START.exec(line);
      if (!m) continue;
      const lazy = i > 0 && LAZY.test(lines[i - 1]);
      if (depth === 0 && !(withLazyBody && lazy)) continue;
      let j = i + 1;
      while (j < lines.length && lines[j] !== 'end') {
        if (FUNCTION_START.test(lines[j]) || lines[j].startsWith('-- <<< include ')) return undefined;
        j++;
      }
      if (j >= lines.length) return undefined;
      const params = PARAMS.exec(line)?.[1];
      if (lazy && params === undefined) throw new Error(`@lazy ${m[1]}: its parameters must be on its first line`);
      blocks.push({ name: m[1], params: params ?? '', start: i, end: j, lazy });
      i = j;
    }
  }
  return blocks;
}

/**
 * Each line without its comments: `-- ...` to the end of the line and `--[[ ... ]]` blocks, which
 * may span lines (script headers are written that way). Name references are found in this text,
 * so a name a comment mentions keeps nothing alive.
 */
function codeLines(lines: string[]): string[] {
  let inBlock = false;
  return lines.map((line) => {
    let rest = line;
    let out = '';
    while (rest !== '') {
      if (inBlock) {
        const end = rest.indexOf(']]');
        if (end < 0) return out;
        inBlock = false;
        rest = rest.slice(end + 2);
        continue;
      }
      const at = rest.indexOf('--');
      if (at < 0) return out + rest;
      out += rest.slice(0, at);
      if (!rest.startsWith('--[[', at)) return out;
      inBlock = true;
      rest = rest.slice(at + 4);
    }
    return out;
  });
}

/** The comment-free code of lines `from`..`to` (see codeLines), for finding name references. */
function codeOf(code: string[], from: number, to: number): string {
  return code.slice(from, to + 1).join('\n');
}

/** The names of `blocks` that `text` references, `except` excluded. */
function referencedBlocks(blocks: HelperBlock[], text: string, except: string): string[] {
  return blocks.filter((b) => b.name !== except && new RegExp(`\\b${b.name}\\b`).test(text)).map((b) => b.name);
}

/** The code outside every helper block (the script's own body and the includes' other lines). */
function outsideCode(code: string[], blocks: HelperBlock[]): string {
  const owned = new Array<boolean>(code.length).fill(false);
  for (const b of blocks) for (let i = b.start; i <= b.end; i++) owned[i] = true;
  return code.map((l, i) => (owned[i] ? '' : l)).join('\n');
}

/**
 * Drops the top-level `local function` blocks of included files that nothing in the script
 * reaches. Name references are found textually, comments excluded, so a kept reference is never
 * missed; when a block's shape is not recognised the script is returned unchanged.
 */
export function dropUnusedHelpers(lua: string): string {
  const lines = lua.split('\n');
  const blocks = helperBlocks(lines);
  if (!blocks) return lua;
  const code = codeLines(lines);
  const byName = new Map(blocks.map((b) => [b.name, b]));
  const keep = new Set(referencedBlocks(blocks, outsideCode(code, blocks), ''));
  for (let grew = true; grew; ) {
    grew = false;
    for (const name of [...keep]) {
      const b = byName.get(name) as HelperBlock;
      for (const r of referencedBlocks(blocks, codeOf(code, b.start, b.end), b.name)) {
        if (!keep.has(r)) {
          keep.add(r);
          grew = true;
        }
      }
    }
  }
  const dropped = new Set(blocks.filter((b) => !keep.has(b.name)));
  const drop = new Array<boolean>(lines.length).fill(false);
  for (const b of dropped) for (let i = b.start; i <= b.end; i++) drop[i] = true;
  return lines.filter((_, i) => !drop[i]).join('\n');
}

/**
 * Defines the helpers that only `-- @lazy` functions reach inside those functions, on their first
 * call, instead of at the top of the script.
 *
 * Why: a script's body runs in full on every call, and Lua creates a closure for every top-level
 * `local function` each time, with its share of allocation and garbage collection, whether or not
 * the call reaches it (bench/RESULTS.md). A helper that only a rare or optional path uses (T9's
 * requeue, decoding a row that is not in text form, an active-turn claim, ...) costs every call
 * that closure.
 *
 * A `-- @lazy` function (of an include, or of the script's own body) keeps its name at the top
 * level as a small wrapper; the helpers that only it reaches, lazy ones included, are defined
 * inside it, once per script call, when it is first called. A helper that the body or any
 * top-level helper reaches stays at the top level, where the moved helpers still see it: a Lua
 * local is declared before any function that names it, so it precedes the lazy function too. A
 * move that would let a local declared in between shadow a name a helper uses is refused at load
 * (assertNotShadowed). Run after dropUnusedHelpers.
 */
export function lazyHelpers(lua: string): string {
  const lines = lua.split('\n');
  const blocks = helperBlocks(lines, true) ?? [];
  if (!blocks.some((b) => b.lazy)) return lua;
  const code = codeLines(lines);
  const byName = new Map(blocks.map((b) => [b.name, b]));
  const refs = new Map(blocks.map((b) => [b.name, referencedBlocks(blocks, codeOf(code, b.start + 1, b.end), b.name)]));
  // Top level: what the code outside the blocks reaches, through helpers that are not lazy (a
  // lazy function's references are resolved inside it).
  const top = new Set<string>();
  const queue = referencedBlocks(blocks, outsideCode(code, blocks), '');
  while (queue.length > 0) {
    const n = queue.shift() as string;
    if (top.has(n)) continue;
    top.add(n);
    if (!byName.get(n)?.lazy) queue.push(...(refs.get(n) as string[]));
  }
  // What a top-level lazy function reaches that is not top level moves inside it (a lazy
  // function reached only that way is defined there as a plain one).
  const moved = (f: string): Set<string> => {
    const found = new Set<string>();
    const pending = [...(refs.get(f) as string[])];
    while (pending.length > 0) {
      const n = pending.shift() as string;
      if (found.has(n) || top.has(n)) continue;
      found.add(n);
      pending.push(...(refs.get(n) as string[]));
    }
    return found;
  };
  const out: string[] = [];
  const blockAt = new Map(blocks.map((b) => [b.start, b]));
  for (let i = 0; i < lines.length; i++) {
    const b = blockAt.get(i);
    if (!b) {
      out.push(lines[i]);
      continue;
    }
    i = b.end;
    if (!top.has(b.name)) continue; // defined inside the lazy functions that reach it
    if (!b.lazy) {
      out.push(...lines.slice(b.start, b.end + 1));
      continue;
    }
    const inner = moved(b.name);
    for (const h of blocks) if (inner.has(h.name)) assertNotShadowed(lines, code, h, b);
    const call = b.params.trim();
    out.push(`local ${b.name}`, 'do', '  local impl', `  ${b.name} = function(${call})`, '    if not impl then');
    for (const h of blocks) if (inner.has(h.name)) out.push(...lines.slice(h.start, h.end + 1));
    out.push(
      `impl = function(${call})`,
      ...lines.slice(b.start + 1, b.end),
      'end',
      '    end',
      `    return impl(${call})`,
      '  end',
      'end',
    );
  }
  return out.join('\n');
}

const TOP_LOCAL = /^local\s+(?:function\s+)?([A-Za-z_][A-Za-z0-9_]*(?:\s*,\s*[A-Za-z_][A-Za-z0-9_]*)*)/;

/**
 * Moving helper `h` into lazy function `f` must not change what its names mean: no top-level local
 * declared between the two may reuse a name that h's code uses (it would shadow the one h sees
 * now). Checked at load, so a script that breaks the rule never runs.
 */
function assertNotShadowed(lines: string[], code: string[], h: HelperBlock, f: HelperBlock): void {
  // The names h's code uses, less those it declares itself (parameters, locals, loop variables).
  const text = codeOf(code, h.start, h.end).replace(/(["'])(?:\\.|(?!\1).)*\1/g, '');
  const own = new Set(h.params.split(',').map((p) => p.trim()));
  for (const m of text.matchAll(
    /\b(?:local(?:\s+function)?|for)\s+([A-Za-z_][A-Za-z0-9_]*(?:\s*,\s*[A-Za-z_][A-Za-z0-9_]*)*)/g,
  ))
    for (const name of m[1].split(/\s*,\s*/)) own.add(name);
  // Field names (`.name`, `:name`, `{ name = ...`) are not variables.
  const names = text
    .replace(/[.:]\s*[A-Za-z_][A-Za-z0-9_]*/g, '')
    .replace(/([{,]\s*)[A-Za-z_][A-Za-z0-9_]*\s*=(?!=)/g, '$1');
  const used = new Set((names.match(/[A-Za-z_][A-Za-z0-9_]*/g) ?? []).filter((n) => !own.has(n)));
  for (let i = h.end + 1; i < f.start; i++) {
    const m = TOP_LOCAL.exec(lines[i]);
    if (!m) continue;
    for (const name of m[1].split(/\s*,\s*/)) {
      if (used.has(name)) throw new Error(`@lazy ${f.name}: moving ${h.name} into it would shadow ${name}`);
    }
  }
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
  const used = new Set(
    [
      ...codeLines(rest.split('\n'))
        .join('\n')
        .matchAll(/\bK\.([a-z_]+)\b/g),
    ].map((m) => m[1]),
  );
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
  if (/\bE\[/.test(codeLines(rest.split('\n')).join('\n')))
    throw new Error('a script indexes E dynamically; use E.<name>');
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
      const expanded = inlineErrorCodes(
        lazyHelpers(dropUnusedHelpers(expandIncludes(readFileSync(join(dir, f), 'utf8'), dir))),
      );
      return { file, command: commandName(file), ...narrowKeys(expanded, names) };
    });
  if (dir === LUA_DIR) {
    cache = scripts;
    keyIndexCache = new Map(scripts.map((s) => [s.command, s.keyIndexes]));
  }
  return scripts;
}

let keyIndexCache: Map<string, number[] | undefined> | undefined;
let shaCache: Map<string, string> | undefined;

/** The SHA1 Redis names a command's script by (what EVALSHA sends), or undefined for no script. */
export function scriptSha(command: string): string | undefined {
  shaCache ??= new Map(loadScripts().map((s) => [s.command, createHash('sha1').update(s.lua).digest('hex')]));
  return shaCache.get(command);
}

/** The session-block positions a per-session command takes (see LoadedScript.keyIndexes). */
export function sessionKeyIndexes(command: string): number[] | undefined {
  if (!keyIndexCache) loadScripts();
  return keyIndexCache?.get(command);
}

/** command -> K name -> key count; filled on first use (keyCountThrough runs on every call). */
const keyCountCache = new Map<string, Map<string, number>>();

/**
 * How many keys to send so that a command ordered by `-- @keys` receives its keys up to and
 * including `name` (a K name of lua/include/keys.lua): the prefix a call that reaches no later
 * key needs (RedisContext.run's keyCount).
 */
export function keyCountThrough(command: string, name: string): number {
  let byName = keyCountCache.get(command);
  if (byName === undefined) {
    byName = new Map();
    keyCountCache.set(command, byName);
  }
  let n = byName.get(name);
  if (n === undefined) {
    const block = blockNames(LUA_DIR);
    const at = sessionKeyIndexes(command)?.findIndex((i) => block[i] === name) ?? -1;
    if (at < 0) throw new Error(`${command} takes no key named ${name}`);
    n = at + 1;
    byName.set(name, n);
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
