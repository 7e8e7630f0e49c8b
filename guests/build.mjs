#!/usr/bin/env node
// Build the sample guests (npm run build:guests): WIT → guest types (guests/types), TypeScript →
// JavaScript → WASI component with componentize-js for the `module` world, every WASI feature disabled
// but those the guest lists (hello: none, so its only import is edgeward:module/logging). Output guests/<name>/dist/<name>.wasm.
// A guest is rebuilt only when its source, the WIT, this script or componentize-js changed (hash file
// next to the output), because componentize takes seconds per guest.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const witDir = path.join(root, 'wit', 'module');
/** Guests and the WASI features each is built with (everything else disabled: deny by default). */
const GUESTS = { hello: [], runaway: [], console: ['stdio'] };
const FEATURES = ['stdio', 'random', 'clocks', 'http', 'fetch-event'];

// preview2-shim starts with no preopens; the BUILD process (never the daemon) needs the real filesystem
// for componentize-js and jco's WIT reader.
const { _setPreopens } = await import('@bytecodealliance/preview2-shim/filesystem');
_setPreopens({ '/': '/' });

function writeAtomic(file, data) {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, data);
  renameSync(tmp, file);
}

const witText = readdirSync(witDir).sort().map((f) => readFileSync(path.join(witDir, f), 'utf8')).join('\n');
const czVersion = JSON.parse(readFileSync(path.join(root, 'node_modules/@bytecodealliance/componentize-js/package.json'), 'utf8')).version;
const self = readFileSync(fileURLToPath(import.meta.url), 'utf8');

/** TypeScript types from the WIT, for guests (guests/types) and for the host (host/runtime/generated). */
async function witTypes() {
  const { typesComponent } = await import('@bytecodealliance/jco/dist/cmd/types.js').catch(() => import(path.join(root, 'node_modules/@bytecodealliance/jco/dist/cmd/types.js')));
  const targets = [
    [path.join(root, 'guests', 'types'), { worldName: 'module', guest: true, quiet: true }],
    [path.join(root, 'host', 'runtime', 'generated'), { worldName: 'module', instantiation: 'async', quiet: true }],
  ];
  for (const [dir, opts] of targets) {
    const files = await typesComponent(witDir, opts);
    for (const [name, data] of Object.entries(files)) {
      const out = path.join(dir, name);
      mkdirSync(path.dirname(out), { recursive: true });
      writeAtomic(out, data);
    }
  }
}

async function build(name) {
  const srcFile = path.join(root, 'guests', name, 'src', 'index.ts');
  const source = readFileSync(srcFile, 'utf8');
  const enabled = GUESTS[name];
  if (!enabled) throw new Error(`unknown guest "${name}" (known: ${Object.keys(GUESTS).join(', ')})`);
  const hash = createHash('sha256').update(source).update(witText).update(czVersion).update(self).digest('hex');
  const dist = path.join(root, 'guests', name, 'dist');
  const out = path.join(dist, `${name}.wasm`);
  const hashFile = `${out}.inputs`;
  if (existsSync(out) && existsSync(hashFile) && readFileSync(hashFile, 'utf8') === hash) {
    console.log(`guests: ${name} up to date`);
    return;
  }
  mkdirSync(dist, { recursive: true });
  const js = ts.transpileModule(source, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } }).outputText;
  const jsFile = path.join(dist, `${name}.js`);
  writeAtomic(jsFile, js);
  const t = Date.now();
  const { componentize } = await import('@bytecodealliance/componentize-js');
  const { component } = await componentize({ sourcePath: jsFile, witPath: witDir, worldName: 'module', disableFeatures: FEATURES.filter((f) => !enabled.includes(f)) });
  writeAtomic(out, component);
  writeAtomic(hashFile, hash);
  const digest = createHash('sha256').update(component).digest('hex');
  console.log(`guests: ${name} built in ${Date.now() - t} ms, ${component.length} bytes, sha256:${digest}`);
}

await witTypes();
for (const g of process.argv.slice(2).length ? process.argv.slice(2) : Object.keys(GUESTS)) await build(g);
