// Writes lua/generated/<name>.lua: the exact text Redis runs for each script (built by
// dist/redis/scripts/registry.js, so run after tsc). test/unit/lua-scripts.test.ts checks it.
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LUA_DIR, loadScripts } from '../dist/redis/scripts/registry.js';

const out = join(LUA_DIR, 'generated');
rmSync(out, { recursive: true, force: true });
mkdirSync(out);
const scripts = loadScripts();
for (const s of scripts) writeFileSync(join(out, `${s.file}.lua`), s.lua);
console.log(`lua/generated: ${scripts.length} scripts (${readdirSync(out).length} files)`);
