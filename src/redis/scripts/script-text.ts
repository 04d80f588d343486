/**
 * The exact text Redis runs for lua/<name>.lua: a generated-file note, a prelude with the
 * script's `K` (its keys, from the header) and `E` (the error codes it names, from
 * src/redis/script-errors.ts), then the source with its includes expanded, less the included
 * helpers it never reaches. The same text is
 * written to lua/generated/ by `npm run build` (scripts/generate-lua.mjs; `npm test` builds first),
 * so a Redis error's line number points at a real file; test/unit/lua-scripts.test.ts fails when
 * that folder is stale.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SCRIPT_ERROR_CODES } from '../script-errors.js';
import { expandIncludes, ScriptLoaderError } from './lua-includes.js';
import { headerKeyList, luaKeyName } from './script-header.js';

export interface ScriptText {
  /** File name without .lua, e.g. `try-claim-lease`. */
  file: string;
  /** Key names in KEYS order (src/redis/keys.ts). */
  keys: string[];
  /** How many of the last `keys` are optional (sent only when a store option needs them). */
  optional: number;
  lua: string;
}

/**
 * The text without comments and string literals: what the K and E checks read, so a name in a
 * comment or a string neither counts nor hides one.
 */
export function codeOnly(text: string): string {
  let out = '';
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (c === '-' && text[i + 1] === '-') {
      const long = /^--\[(=*)\[/.exec(text.slice(i, i + 12));
      const close = long ? text.indexOf(`]${long[1]}]`, i) : text.indexOf('\n', i);
      i = close < 0 ? text.length : long ? close + long[1].length + 2 : close;
    } else if (c === "'" || c === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== c && text[j] !== '\n') j += text[j] === '\\' ? 2 : 1;
      out += c + c;
      i = j + 1;
    } else if (c === '[' && /^\[=*\[/.test(text.slice(i, i + 12))) {
      const eq = (/^\[(=*)\[/.exec(text.slice(i, i + 12)) as RegExpExecArray)[1];
      const close = text.indexOf(`]${eq}]`, i);
      out += '""';
      i = close < 0 ? text.length : close + eq.length + 2;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

/** What Redis's Lua offers scripts without a declaration. */
const BUILTINS = new Set([
  'assert',
  'error',
  'ipairs',
  'next',
  'pairs',
  'pcall',
  'select',
  'tonumber',
  'tostring',
  'type',
  'unpack',
  'function',
  'if',
  'elseif',
  'while',
  'until',
  'return',
  'and',
  'or',
  'not',
  'in',
]);

/**
 * The names the code calls as plain functions (`name(`, not `x.name(` or `x:name(`) that no
 * `local` statement, `for` loop or function parameter list declares and Lua does not provide: a
 * helper whose include the script forgot, which would otherwise fail only when that line runs.
 */
export function undefinedFunctions(code: string): string[] {
  const declared = new Set<string>();
  for (const m of code.matchAll(/\blocal\s+function\s+([A-Za-z_]\w*)/g)) declared.add(m[1]);
  for (const m of code.matchAll(/\blocal\s+([A-Za-z_]\w*(?:\s*,\s*[A-Za-z_]\w*)*)/g)) {
    for (const n of m[1].split(/\s*,\s*/)) declared.add(n);
  }
  for (const m of code.matchAll(/\bfunction\s*[A-Za-z_.:\w]*\(([^)]*)\)/g)) {
    for (const n of m[1].split(',')) if (n.trim()) declared.add(n.trim());
  }
  for (const m of code.matchAll(/\bfor\s+([A-Za-z_]\w*(?:\s*,\s*[A-Za-z_]\w*)*)/g)) {
    for (const n of m[1].split(/\s*,\s*/)) declared.add(n);
  }
  const missing = new Set<string>();
  for (const m of code.matchAll(/(^|[^.:\w])([A-Za-z_]\w*)\s*\(/g)) {
    const name = m[2];
    if (!declared.has(name) && !BUILTINS.has(name)) missing.add(name);
  }
  return [...missing].sort();
}

/** A top-level `local function` of an included file: from its first line to its closing `end`. */
interface HelperBlock {
  name: string;
  start: number;
  end: number;
}

const HELPER_START = /^local function ([A-Za-z_]\w*)\s*\(/;

/**
 * The expanded text without the included helpers that nothing in the script reaches.
 *
 * Why: Lua creates a closure for every `local function` each time a script runs, whether or not
 * the call uses it, and an include holds more helpers than any one script needs
 * (docs/DECISIONS.md has the measurement). A helper of an include runs from a line
 * `local function <name>(` at the start of a line to the next line that is exactly `end`, the
 * layout every include follows; the script's own body is never touched. Reachability is found on
 * comment- and string-free text, from the body through the helpers it names, so nothing that is
 * called is dropped (and undefinedFunctions checks the result).
 */
export function dropUnreachableHelpers(text: string): string {
  const lines = text.split('\n');
  const blocks: HelperBlock[] = [];
  let depth = 0;
  for (let i = 0; i < lines.length; i++) {
    if (lines[i].startsWith('-- >>> include ')) depth++;
    else if (lines[i].startsWith('-- <<< include ')) depth--;
    const m = depth > 0 ? HELPER_START.exec(lines[i]) : null;
    if (!m) continue;
    // A one-line helper (`local function f() return 1 end`) is its own block. An include inside a
    // helper (its helpers made only when it runs) is part of the block, its `end` lines too.
    let j = /\bend\s*$/.test(lines[i]) ? i : i + 1;
    let nested = 0;
    while (j < lines.length && j > i && (nested > 0 || lines[j] !== 'end')) {
      if (lines[j].startsWith('-- >>> include ')) nested++;
      else if (lines[j].startsWith('-- <<< include ')) nested--;
      j++;
    }
    if (j >= lines.length) throw new ScriptLoaderError(`helper ${m[1]} has no closing 'end' line`);
    blocks.push({ name: m[1], start: i, end: j });
    i = j;
  }
  const owner = new Array<HelperBlock | undefined>(lines.length);
  for (const b of blocks) for (let i = b.start; i <= b.end; i++) owner[i] = b;
  const named = (from: number, to: number, except?: string) => {
    const code = codeOnly(lines.slice(from, to + 1).join('\n'));
    return blocks.filter((b) => b.name !== except && new RegExp(`\\b${b.name}\\b`).test(code));
  };
  const outside = lines.map((l, i) => (owner[i] ? '' : l)).join('\n');
  const reached = new Set<HelperBlock>();
  const queue = blocks.filter((b) => new RegExp(`\\b${b.name}\\b`).test(codeOnly(outside)));
  while (queue.length > 0) {
    const b = queue.pop() as HelperBlock;
    if (reached.has(b)) continue;
    reached.add(b);
    queue.push(...named(b.start + 1, b.end, b.name));
  }
  return lines.filter((_, i) => !owner[i] || reached.has(owner[i] as HelperBlock)).join('\n');
}

export function scriptText(file: string, dir: string): ScriptText {
  const source = readFileSync(join(dir, `${file}.lua`), 'utf8');
  const { keys, optional } = headerKeyList(source, `${file}.lua`);
  const body = dropUnreachableHelpers(expandIncludes(source, `${file}.lua`, dir));
  const body_code = codeOnly(body);
  // Every key the script's code can reach is one it is sent: a K.<name> the header does not list
  // would be nil, and fail in the write phase after earlier writes.
  const declared = new Set(keys.map(luaKeyName));
  const missing = [...new Set([...body_code.matchAll(/\bK\.([a-z_]+)\b/g)].map((m) => m[1]))].filter(
    (name) => !declared.has(name),
  );
  const named = new Set([...body_code.matchAll(/\bK\.([a-z_]+)\b/g)].map((m) => m[1]));
  const unused = keys.filter((k) => !named.has(luaKeyName(k)));
  if (unused.length > 0) {
    throw new ScriptLoaderError(`${file}.lua: its header lists ${unused.join(', ')}, which its code never names`);
  }
  if (missing.length > 0) {
    throw new ScriptLoaderError(
      `${file}.lua: its code names ${missing.map((n) => `K.${n}`).join(', ')}, which its header's KEYS do not list`,
    );
  }
  const undefinedCalls = undefinedFunctions(body_code);
  if (undefinedCalls.length > 0) {
    throw new ScriptLoaderError(`${file}.lua: calls ${undefinedCalls.join(', ')}, defined in no include it has`);
  }
  const errors = [...new Set([...body_code.matchAll(/\bE\.([A-Za-z]+)\b/g)].map((m) => m[1]))].sort();
  const codes = SCRIPT_ERROR_CODES as Record<string, number>;
  for (const name of errors) {
    if (codes[name] === undefined)
      throw new ScriptLoaderError(`${file}.lua: E.${name} is not in src/redis/script-errors.ts`);
  }
  const prelude = [
    `-- Generated from lua/${file}.lua (npm run build); edit that file, not this one.`,
    `local K = { ${keys.map((k, i) => `${luaKeyName(k)} = KEYS[${i + 1}]`).join(', ')} }`,
  ];
  if (errors.length > 0) prelude.push(`local E = { ${errors.map((n) => `${n} = ${codes[n]}`).join(', ')} }`);
  return { file, keys, optional, lua: `${prelude.join('\n')}\n${body}${body.endsWith('\n') ? '' : '\n'}` };
}
