/**
 * Loads lua/<verb-noun>.lua, expands `-- @include <name>` lines from lua/include/<name>.lua
 * (shared helpers are included, never copied), and registers each script with ioredis
 * defineCommand under `rts_<verb_noun>`. Callers pass numkeys first.
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
}

export function commandName(file: string): string {
  return `rts_${file.replace(/-/g, '_')}`;
}

let cache: LoadedScript[] | undefined;

export function loadScripts(dir: string = LUA_DIR): LoadedScript[] {
  if (dir === LUA_DIR && cache) return cache;
  const scripts = readdirSync(dir)
    .filter((f) => f.endsWith('.lua'))
    .sort()
    .map((f) => {
      const file = f.slice(0, -4);
      return { file, command: commandName(file), lua: expandIncludes(readFileSync(join(dir, f), 'utf8'), dir) };
    });
  if (dir === LUA_DIR) cache = scripts;
  return scripts;
}

interface DefinesCommands {
  defineCommand(name: string, definition: { lua: string; numberOfKeys?: number }): void;
}

/** Registers every script on a client (standalone or Cluster). Idempotent per client. */
export function registerScripts(client: DefinesCommands): void {
  for (const s of loadScripts()) client.defineCommand(s.command, { lua: s.lua });
}
