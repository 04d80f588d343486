/**
 * Reads what a script's header says about its keys. Every script opens with a `--[[ ... ]]`
 * block that lists each key as `KEYS[i] <name>`, in order from 1 (names from src/redis/keys.ts),
 * and each ARGV[i] and reply. The KEYS lines are the one source of what a call sends: the runner
 * builds the keys from them and the script's `K` table is generated from them.
 */
import { SESSION_KEY_NAMES, SHARD_KEY_NAMES } from '../keys.js';
import { ScriptLoaderError } from './lua-includes.js';

const KNOWN: ReadonlySet<string> = new Set([...SESSION_KEY_NAMES, ...SHARD_KEY_NAMES]);
const KEY_LINE = /^\s*KEYS\[(\d+)\]\s+([a-z][a-z-]*)/;

/**
 * A KEYS line whose text goes on with `(optional)` names a key the store sends only when a store
 * option needs it (the activity index of sessionRetentionMs): such keys come last, and the script
 * is registered twice, without them and with them (registry.ts). Its code must test `K.<name>`
 * before using it.
 */
const OPTIONAL = /^\s*KEYS\[\d+\]\s+[a-z][a-z-]*\s+\(optional\)/;

/** The key names of the header, in KEYS order. */
export function headerKeys(source: string, file: string): string[] {
  return headerKeyList(source, file).keys;
}

/** The header's keys and how many of the last ones are optional. */
export function headerKeyList(source: string, file: string): { keys: string[]; optional: number } {
  if (!source.startsWith('--[[')) throw new ScriptLoaderError(`${file}:1: a script opens with a --[[ header ]]`);
  const end = source.indexOf(']]');
  const lines = source.slice(0, end).split('\n');
  const keys: string[] = [];
  let optional = 0;
  lines.forEach((line, i) => {
    const m = KEY_LINE.exec(line);
    if (!m) return;
    if (OPTIONAL.test(line)) optional++;
    else if (optional > 0)
      throw new ScriptLoaderError(`${file}:${i + 1}: an optional key must come after every other key`);
    if (Number(m[1]) !== keys.length + 1) {
      throw new ScriptLoaderError(`${file}:${i + 1}: expected KEYS[${keys.length + 1}], found KEYS[${m[1]}]`);
    }
    if (!KNOWN.has(m[2])) throw new ScriptLoaderError(`${file}:${i + 1}: no key is named ${m[2]} (src/redis/keys.ts)`);
    if (keys.includes(m[2])) throw new ScriptLoaderError(`${file}:${i + 1}: ${m[2]} is listed twice`);
    keys.push(m[2]);
  });
  return { keys, optional };
}

/** The Lua field name of a key name: `att-uncommitted` is `K.att_uncommitted`. */
export function luaKeyName(name: string): string {
  return name.replace(/-/g, '_');
}
