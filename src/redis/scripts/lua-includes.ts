/**
 * Expands `-- @include <name>` lines with lua/include/<name>.lua. An include declares its own
 * dependencies the same way; each file is expanded once per script, dependencies first, so a
 * helper is always defined before the code that uses it. A missing include or a cycle is an
 * error naming the file and line.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const INCLUDE = /^--\s*@include\s+([a-z0-9-]+)\s*$/;

export class ScriptLoaderError extends Error {}

/** The source with every include line replaced by the included text (or a note when already in). */
export function expandIncludes(source: string, file: string, dir: string): string {
  return expand(source, file, dir, new Set(), []);
}

function expand(source: string, file: string, dir: string, done: Set<string>, stack: string[]): string {
  return source
    .split('\n')
    .map((line, i) => {
      const m = INCLUDE.exec(line.trim());
      if (!m) return line;
      const name = m[1];
      if (stack.includes(name)) {
        throw new ScriptLoaderError(`${file}:${i + 1}: include cycle ${[...stack, name].join(' -> ')}`);
      }
      if (done.has(name)) return `-- (include ${name}: already above)`;
      const path = join(dir, 'include', `${name}.lua`);
      let body: string;
      try {
        body = readFileSync(path, 'utf8');
      } catch {
        throw new ScriptLoaderError(`${file}:${i + 1}: no include named ${name} (${path})`);
      }
      const text = expand(body.replace(/\n$/, ''), `include/${name}.lua`, dir, done, [...stack, name]);
      done.add(name);
      return `-- >>> include ${name}\n${text}\n-- <<< include ${name}`;
    })
    .join('\n');
}
