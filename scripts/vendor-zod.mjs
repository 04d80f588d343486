#!/usr/bin/env node
/**
 * Build step after tsc: bundles the part of zod the store uses into dist/vendor/zod.js and points
 * dist's imports of 'zod' at it, so zod is not an install-time dependency.
 *
 * Why: zod 4 ships its sources, three builds and every locale (8 MB installed), which alone made
 * the core install 1.6x BullMQ's own (issue 22 asks for at most 1.5x). The bundle holds what
 * `import { z } from 'zod'` reaches, about 0.5 MB. The .d.ts files are left alone: the only public
 * type that names zod is the `schemas` namespace; its types resolve when the app has zod installed
 * and are `any` otherwise (skipLibCheck), everything else in the API is plain TypeScript.
 */
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { rolldown } from 'rolldown';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
const out = join(dist, 'vendor', 'zod.js');

const bundle = await rolldown({
  input: 'rts-zod-entry',
  platform: 'node',
  treeshake: true,
  plugins: [
    {
      name: 'entry',
      resolveId: (id) => (id === 'rts-zod-entry' ? id : null),
      load: (id) => (id === 'rts-zod-entry' ? "export { z } from 'zod';\n" : null),
    },
  ],
});
const license = readFileSync(join(root, 'node_modules', 'zod', 'LICENSE'), 'utf8').trim();
const version = JSON.parse(readFileSync(join(root, 'node_modules', 'zod', 'package.json'), 'utf8')).version;
const banner = `/*! zod ${version}, bundled by scripts/vendor-zod.mjs. Its license:\n${license}\n*/\n`;
await bundle.write({ file: out, format: 'esm', minify: false, banner });
await bundle.close();

const files = [];
(function walk(dir) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p);
    else if (p.endsWith('.js') && p !== out) files.push(p);
  }
})(dist);
let rewritten = 0;
for (const file of files) {
  const text = readFileSync(file, 'utf8');
  if (!/from ['"]zod['"]/.test(text)) continue;
  let rel = relative(dirname(file), out).split('\\').join('/');
  if (!rel.startsWith('.')) rel = `./${rel}`;
  writeFileSync(file, text.replace(/from (['"])zod\1/g, `from '${rel}'`));
  rewritten++;
}
const kb = Math.round(statSync(out).size / 1024);
console.log(`vendor-zod: dist/vendor/zod.js (${kb} kB), ${rewritten} modules point at it`);
