#!/usr/bin/env node
// Build the sample guests (npm run build:guests): WIT → guest types (guests/types), TypeScript →
// JavaScript → WASI component with componentize-js for the guest's world, every WASI feature disabled
// but those the guest lists. Worlds: `module` (wit/module), or one in wit/guests (e.g. `identity-module`
// for hello, which adds edgeward:workload/identity). Output guests/<name>/dist/<name>.wasm.
// A guest is rebuilt only when its source, the WIT it was built from, this script or componentize-js
// changed (hash file next to the output), because componentize takes seconds per guest.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const witDir = path.join(root, 'wit', 'module');
/** Guests: the world each targets, and the WASI features each is built with (everything else disabled: deny by default). */
const GUESTS = {
  hello: { world: 'identity-module', features: [] },
  runaway: { world: 'module', features: [] },
  console: { world: 'module', features: ['stdio'] },
  fetcher: { world: 'module', features: ['http'] },
};
/**
 * Worlds outside wit/module: the root package (wit/guests) and the packages it uses, laid out as
 * wit-parser resolves them (`<root>/*.wit` plus `<root>/deps/<name>/*.wit`).
 */
const GUEST_WORLDS = {
  'identity-module': { root: 'wit/guests', deps: { module: 'wit/module', workload: 'wit/workload' } },
};
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

const witFiles = (dir) => readdirSync(path.join(root, dir)).filter((f) => f.endsWith('.wit')).sort().map((f) => path.join(root, dir, f));

/** The WIT tree for `world` (wit/module itself, or a temporary tree with deps/) and the text of every file in it. */
function witTree(world) {
  if (world === 'module') return { dir: witDir, text: witFiles('wit/module').map((f) => readFileSync(f, 'utf8')).join('\n'), cleanup() {} };
  const spec = GUEST_WORLDS[world];
  if (!spec) throw new Error(`unknown world "${world}" (known: module, ${Object.keys(GUEST_WORLDS).join(', ')})`);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'edgeward-wit-'));
  const parts = [];
  const copy = (from, to) => {
    mkdirSync(to, { recursive: true });
    for (const f of witFiles(from)) {
      const text = readFileSync(f, 'utf8');
      writeFileSync(path.join(to, path.basename(f)), text);
      parts.push(`${path.relative(dir, to)}/${path.basename(f)}\n${text}`);
    }
  };
  copy(spec.root, dir);
  for (const [name, from] of Object.entries(spec.deps)) copy(from, path.join(dir, 'deps', name));
  return { dir, text: parts.join('\n'), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
const czVersion = JSON.parse(readFileSync(path.join(root, 'node_modules/@bytecodealliance/componentize-js/package.json'), 'utf8')).version;
const self = readFileSync(fileURLToPath(import.meta.url), 'utf8');

/** TypeScript types from the WIT, for guests (guests/types) and for the host (host/runtime/generated). */
async function witTypes() {
  const { typesComponent } = await import('@bytecodealliance/jco/dist/cmd/types.js').catch(() => import(path.join(root, 'node_modules/@bytecodealliance/jco/dist/cmd/types.js')));
  const targets = [
    [path.join(root, 'guests', 'types'), 'module', { worldName: 'module', guest: true, quiet: true }],
    [path.join(root, 'host', 'runtime', 'generated'), 'module', { worldName: 'module', instantiation: 'async', quiet: true }],
    // Guest worlds beside it: guests/types/<world>.d.ts plus the interfaces they add.
    ...Object.keys(GUEST_WORLDS).map((world) => [path.join(root, 'guests', 'types'), world, { worldName: world, guest: true, quiet: true }]),
  ];
  for (const [dir, world, opts] of targets) {
    const tree = witTree(world);
    let files;
    try {
      files = await typesComponent(tree.dir, opts);
    } finally {
      tree.cleanup();
    }
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
  const guest = GUESTS[name];
  if (!guest) throw new Error(`unknown guest "${name}" (known: ${Object.keys(GUESTS).join(', ')})`);
  const tree = witTree(guest.world);
  try {
    await componentizeGuest(name, source, guest, tree);
  } finally {
    tree.cleanup();
  }
}

async function componentizeGuest(name, source, guest, tree) {
  const hash = createHash('sha256').update(source).update(guest.world).update(tree.text).update(czVersion).update(self).digest('hex');
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
  const { component } = await componentize({ sourcePath: jsFile, witPath: tree.dir, worldName: guest.world, disableFeatures: FEATURES.filter((f) => !guest.features.includes(f)) });
  writeAtomic(out, component);
  writeAtomic(hashFile, hash);
  const digest = createHash('sha256').update(component).digest('hex');
  console.log(`guests: ${name} built in ${Date.now() - t} ms, ${component.length} bytes, sha256:${digest}`);
}

await witTypes();
for (const g of process.argv.slice(2).length ? process.argv.slice(2) : Object.keys(GUESTS)) await build(g);
