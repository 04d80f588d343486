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

/** The part of an ioredis Script (Commander's `scriptsSet`) that makes its commands. */
interface IoredisScript {
  Command: new (
    name: string,
    args: unknown[],
    options?: unknown,
    callback?: unknown,
  ) => { args: unknown[]; stringifyArguments(): void };
}

/**
 * Makes the defined command's EVALSHA/EVAL commands keep the argument array they are given.
 * Why: ioredis's Command constructor copies its arguments through Array#flat, which costs V8 about
 * 3 µs for a script call's 30 arguments, the largest single item of a cycle's client CPU
 * (docs/DECISIONS.md, "Script commands without the argument copy"). Our arguments are flat
 * strings and Buffers already, and the store refuses a client with ioredis's keyPrefix, the one
 * thing the constructor does with them. Everything else (EVALSHA, the NOSCRIPT fallback to EVAL,
 * reply handling) stays ioredis's.
 */
function keepArguments(client: DefinesCommands, name: string): void {
  const script = (client as { scriptsSet?: Record<string, IoredisScript> }).scriptsSet?.[name];
  if (!script || typeof script.Command !== 'function') return;
  const Base = script.Command;
  script.Command = class extends Base {
    constructor(commandName: string, args: unknown[], options?: unknown, callback?: unknown) {
      super(commandName, [], options, callback);
      // What the constructor would have done with them: numbers to text, Buffers noted.
      this.args = args;
      this.stringifyArguments();
    }
  };
}

function define(client: DefinesCommands, name: string, lua: string, numberOfKeys: number): void {
  client.defineCommand(name, { lua, numberOfKeys });
  keepArguments(client, name);
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
    define(client, s.command, s.lua, s.keys.length - s.optional);
    if (s.optional > 0) define(client, fullCommandName(s.command), s.lua, s.keys.length);
  }
}
