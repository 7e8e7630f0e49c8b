#!/usr/bin/env node
/**
 * Copies the `.mjs` code under host/ and hsm/ into dist/ (same paths): tsc emits none, and the compiled
 * daemon loads them from the tree it runs from (host/runtime/assets.ts), which is the tree its code digest
 * measures (host/measure/code.ts). Before this, a daemon run from dist/ loaded its sandbox worker, the
 * worker-side capability modules and the boundary validator from the sources, outside what it measured.
 */
import { copyFileSync, mkdirSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
let copied = 0;
function copyUnder(rel) {
  for (const e of readdirSync(path.join(ROOT, rel), { withFileTypes: true })) {
    const p = path.join(rel, e.name);
    if (e.isDirectory()) copyUnder(p);
    else if (e.isFile() && e.name.endsWith('.mjs')) {
      mkdirSync(path.join(ROOT, 'dist', rel), { recursive: true });
      copyFileSync(path.join(ROOT, p), path.join(ROOT, 'dist', p));
      copied++;
    }
  }
}
for (const d of ['host', 'hsm']) copyUnder(d);
console.log(`copy-mjs: ${copied} .mjs files into dist/`);
