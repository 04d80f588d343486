/**
 * The scripts of lua/, built once per process (script-text.ts) and registered on a client with
 * ioredis defineCommand as `rts_<verb_noun>`, with the key count of the script's header. Calls go
 * through those defined commands (RedisContext), which send EVALSHA and fall back to EVAL.
 */
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type ScriptText, scriptText } from './script-text.js';

/** lua/ sits three levels above both src/redis/scripts and dist/redis/scripts. */
export const LUA_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'lua');

export interface LoadedScript extends ScriptText {
  /** The ioredis command name, e.g. `rts_try_claim_lease`. */
  command: string;
}

export function commandName(file: string): string {
  return `rts_${file.replace(/-/g, '_')}`;
}

let cache: LoadedScript[] | undefined;
let byCommand: Map<string, LoadedScript> | undefined;

export function loadScripts(dir: string = LUA_DIR): LoadedScript[] {
  if (dir === LUA_DIR && cache) return cache;
  const scripts = readdirSync(dir)
    .filter((f) => f.endsWith('.lua'))
    .sort()
    .map((f) => {
      const text = scriptText(f.slice(0, -4), dir);
      return { ...text, command: commandName(text.file) };
    });
  if (dir === LUA_DIR) {
    cache = scripts;
    byCommand = new Map(scripts.map((s) => [s.command, s]));
  }
  return scripts;
}

/** The loaded script of a command, or undefined. */
export function scriptOf(command: string): LoadedScript | undefined {
  if (!byCommand) loadScripts();
  return byCommand?.get(command);
}

interface DefinesCommands {
  defineCommand(name: string, definition: { lua: string; numberOfKeys?: number }): void;
}

/**
 * The command of a script that sends its optional keys too (`rts_<verb_noun>_full`): the same
 * text, so the same SHA, registered with every header key.
 */
export function fullCommandName(command: string): string {
  return `${command}_full`;
}

/**
 * Registers every script on a client (standalone or Cluster). Idempotent per client. A script
 * with optional keys is registered without them under its command name and with them under
 * fullCommandName: KEYS[i] of an optional key is nil in the first.
 */
export function registerScripts(client: DefinesCommands): void {
  for (const s of loadScripts()) {
    client.defineCommand(s.command, { lua: s.lua, numberOfKeys: s.keys.length - s.optional });
    if (s.optional > 0) client.defineCommand(fullCommandName(s.command), { lua: s.lua, numberOfKeys: s.keys.length });
  }
}
