#!/usr/bin/env node
// Build guests (npm run build:guests [-- NAME|DIR…]): every folder guests/<name>/ with src/index.ts (or the
// guest folders named by path). For each:
// its world (guests/<name>/world.wit, or the plain `module` world of wit/module when there is none) is laid
// out as the root of a temporary WIT tree with the packages it uses as deps/ (Edgeward's wit/ packages,
// and the WASI 0.2.12 packages jco ships when it imports wasi:*), so no shared file is edited to add one;
// jco writes its guest types (guests/<name>/types/); the source is type-checked against them; TypeScript →
// JavaScript → WASI component with the guest's engine (guests/<name>/engine: `quickjs` or `componentize-js`;
// `#` lines are comments). quickjs (componentize-qjs), the default: ~1 MB, ES2022 only (no console, fetch,
// TextEncoder), every WASI import stubbed with a trap (--stub-wasi), so its world may import no WASI.
// componentize-js: SpiderMonkey, ~12 MB, web APIs, every engine feature disabled but those listed in
// guests/<name>/features.json; the default for a guest without an engine file that lists features or
// whose world imports WASI. Output guests/<name>/dist/<name>.wasm.
// A guest is rebuilt only when its source, the WIT it was built from, its features, this script or
// componentize-js changed (hash file next to the output), because componentize takes seconds per guest.
// One guest's failure does not stop the others: each is reported, and the exit status is 1 at the end.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const guestsDir = path.join(root, 'guests');
/** componentize-js engine features; each adds WASI imports of its own, so all are off unless a guest lists them. */
const FEATURES = ['stdio', 'random', 'clocks', 'http', 'fetch-event'];
/** The engines a guest may name in guests/<name>/engine. */
const ENGINES = ['componentize-js', 'quickjs'];
/** The WASI release componentize-js 0.23 targets, whose WIT jco ships (imports must match it). */
const WASI_WIT = path.join(root, 'node_modules/@bytecodealliance/jco/lib/wit/builtin/0.2.12');
/** Guest names as `builtin:<name>` accepts them (host/runtime/manifest.ts). */
const NAME = /^[a-z][a-z0-9-]{0,31}$/;
/** Folders of guests/ that are not guests. */
const NOT_GUESTS = new Set(['types', 'adversarial']);

/** A build failure with a message meant for the guest's author (printed without a stack). */
class GuestError extends Error {}

// preview2-shim starts with no preopens; the BUILD process (never the daemon) needs the real filesystem
// for componentize-js and jco's WIT reader.
const { _setPreopens } = await import('@bytecodealliance/preview2-shim/filesystem');
_setPreopens({ '/': '/' });

function writeAtomic(file, data) {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, data);
  renameSync(tmp, file);
}

/** A file as the author should read it: relative below the repository, else absolute. */
const shown = (file) => (path.relative(root, file).startsWith('..') ? file : path.relative(root, file));
const witFiles = (dir) => readdirSync(dir).filter((f) => f.endsWith('.wit')).sort().map((f) => path.join(dir, f));
const isDir = (p) => existsSync(p) && statSync(p).isDirectory();

/**
 * WIT packages a guest world may use, by package name without version (`edgeward:hsm`, `wasi:io`) → the
 * folder holding it: each folder of wit/ and each WASI package jco ships.
 */
function witPackages() {
  const packages = new Map();
  const add = (dir) => {
    for (const f of witFiles(dir)) {
      const m = /^\s*package\s+([a-z][a-z0-9-]*:[a-z][a-z0-9-]*)/m.exec(readFileSync(f, 'utf8'));
      if (m) packages.set(m[1], dir);
    }
  };
  for (const d of readdirSync(path.join(root, 'wit'))) if (isDir(path.join(root, 'wit', d))) add(path.join(root, 'wit', d));
  for (const d of readdirSync(WASI_WIT)) add(path.join(WASI_WIT, d));
  return packages;
}
const PACKAGES = witPackages();

/** Package names (`ns:name`) that WIT text refers to in `use`, `import`, `include` or `export`. */
function referencedPackages(text) {
  const refs = new Set();
  for (const m of text.matchAll(/\b([a-z][a-z0-9-]*:[a-z][a-z0-9-]*)\/[a-z]/g)) refs.add(m[1]);
  return refs;
}

/**
 * What to build for guest `arg` (a name in guests/, or a path to a guest's folder anywhere, as `edgeward
 * new module --dir` makes them): its folders, world and features, checked (GuestError says what is wrong).
 */
function guestSpec(arg) {
  const isPath = arg.includes('/') || arg.startsWith('.');
  const dir = isPath ? path.resolve(arg) : path.join(guestsDir, arg);
  const name = path.basename(dir);
  if (!NAME.test(name)) throw new GuestError(`"${name}" is not a guest name (lower-case letters, digits and '-', at most 32, as builtin:<name> takes)`);
  const src = path.join(dir, 'src', 'index.ts');
  if (!existsSync(src)) throw new GuestError(`no guest "${name}": ${shown(src)} does not exist`);
  const worldFile = path.join(dir, 'world.wit');
  let world = 'module';
  if (existsSync(worldFile)) {
    const text = readFileSync(worldFile, 'utf8');
    const worlds = [...text.matchAll(/^\s*world\s+([a-z][a-z0-9-]*)\s*\{/gm)].map((m) => m[1]);
    if (worlds.length !== 1) throw new GuestError(`${shown(worldFile)} must declare exactly one world (found ${worlds.length})`);
    if (!/\binclude\s+edgeward:module\/module@0\.1\.0\s*;/.test(text)) throw new GuestError(`${shown(worldFile)}: world "${worlds[0]}" must \`include edgeward:module/module@0.1.0;\` (the lifecycle every module exports)`);
    world = worlds[0];
  }
  const featuresFile = path.join(dir, 'features.json');
  const features = existsSync(featuresFile) ? JSON.parse(readFileSync(featuresFile, 'utf8')) : [];
  if (!Array.isArray(features) || features.some((f) => !FEATURES.includes(f))) throw new GuestError(`${shown(featuresFile)} must be a JSON list of componentize-js features among ${FEATURES.join(', ')}`);
  const wasi = existsSync(worldFile) ? [...referencedPackages(readFileSync(worldFile, 'utf8'))].filter((p) => p.startsWith('wasi:')) : [];
  const engineFile = path.join(dir, 'engine');
  const chosen = existsSync(engineFile) ? engineIn(readFileSync(engineFile, 'utf8')) : undefined;
  // No engine file: quickjs, unless the guest needs what only componentize-js has (features, WASI imports).
  const engine = chosen ?? (features.length || wasi.length ? 'componentize-js' : 'quickjs');
  if (!ENGINES.includes(engine)) throw new GuestError(`${shown(engineFile)} must name one engine: ${ENGINES.join(' or ')} (found "${engine}")`);
  if (engine === 'quickjs' && features.length) throw new GuestError(`${shown(featuresFile)}: the quickjs engine has no features (${features.join(', ')}); use componentize-js for them`);
  // --stub-wasi stubs every WASI import, the world's own too: the guest would build, then trap on its first
  // call (and without it the engine imports the whole WASI CLI set, a grant for each).
  if (engine === 'quickjs' && wasi.length) throw new GuestError(`${shown(worldFile)} imports ${wasi.join(', ')}: the quickjs engine stubs every WASI import with a trap, the world's too; build it with componentize-js (write \`componentize-js\` in ${shown(engineFile)})`);
  return { name, dir, src, worldFile: existsSync(worldFile) ? worldFile : undefined, world, features, engine, defaulted: chosen === undefined };
}

/** The engine an `engine` file names: its first line that is neither empty nor a `#` comment. */
function engineIn(text) {
  return text.split('\n').map((l) => l.trim()).find((l) => l && !l.startsWith('#')) ?? '';
}

/**
 * The WIT tree for a guest, as wit-parser resolves packages: its world.wit as the root, and every package it
 * uses (transitively) under deps/<package>/. A guest without world.wit gets wit/module itself. `text`
 * holds every file (for the rebuild hash).
 */
function witTree(spec) {
  if (!spec.worldFile) {
    const dir = path.join(root, 'wit', 'module');
    return { dir, text: witFiles(dir).map((f) => readFileSync(f, 'utf8')).join('\n'), cleanup() {} };
  }
  const dir = mkdtempSync(path.join(os.tmpdir(), 'edgeward-wit-'));
  const parts = [];
  const copy = (file, to) => {
    const text = readFileSync(file, 'utf8');
    mkdirSync(to, { recursive: true });
    writeFileSync(path.join(to, path.basename(file)), text);
    parts.push(`${path.relative(dir, path.join(to, path.basename(file)))}\n${text}`);
    return text;
  };
  const pending = [...referencedPackages(copy(spec.worldFile, dir))];
  const done = new Set();
  while (pending.length) {
    const pkg = pending.shift();
    if (done.has(pkg)) continue;
    done.add(pkg);
    const from = PACKAGES.get(pkg);
    if (!from) {
      rmSync(dir, { recursive: true, force: true });
      throw new GuestError(`${shown(spec.worldFile)} uses package "${pkg}", which is neither in wit/ nor a WASI 0.2.12 package (known: ${[...PACKAGES.keys()].sort().join(', ')})`);
    }
    for (const f of witFiles(from)) pending.push(...referencedPackages(copy(f, path.join(dir, 'deps', pkg.replace(':', '-')))));
  }
  return { dir, text: parts.sort().join('\n'), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

const czVersion = JSON.parse(readFileSync(path.join(root, 'node_modules/@bytecodealliance/componentize-js/package.json'), 'utf8')).version;
const qjsVersion = JSON.parse(readFileSync(path.join(root, 'node_modules/componentize-qjs/package.json'), 'utf8')).version;
const self = readFileSync(fileURLToPath(import.meta.url), 'utf8');
const { typesComponent } = await import('@bytecodealliance/jco/dist/cmd/types.js').catch(() => import(path.join(root, 'node_modules/@bytecodealliance/jco/dist/cmd/types.js')));

/** jco's TypeScript types for one world, written under `outDir`; returns the world's own .d.ts. */
async function writeTypes(witDir, world, outDir, opts) {
  const files = await typesComponent(witDir, { worldName: world, quiet: true, ...opts });
  for (const [name, data] of Object.entries(files)) {
    const out = path.join(outDir, name);
    mkdirSync(path.dirname(out), { recursive: true });
    writeAtomic(out, data);
  }
  return path.join(outDir, `${world}.d.ts`);
}

/** Types of the plain `module` world: for guests without a world of their own, and for the host. */
async function moduleTypes() {
  const dir = path.join(root, 'wit', 'module');
  await writeTypes(dir, 'module', path.join(guestsDir, 'types'), { guest: true });
  await writeTypes(dir, 'module', path.join(root, 'host', 'runtime', 'generated'), { instantiation: 'async' });
}

/**
 * Type-check a guest's source against its world's types (what it imports) and the lifecycle every module
 * exports. componentize-js provides ES2022 and the web APIs (console, fetch, TextEncoder): lib es2022 + dom;
 * quickjs provides ES2022 only, so a guest that uses a web API fails here, not at run time.
 */
function typeCheck(spec, typesFile) {
  const check = path.join(spec.dir, 'src', '.edgeward-exports.ts');
  const checkText = `import * as guest from './index.js';
const lifecycle: { start(config: string): unknown; stop(): unknown; invoke(method: string, payload: string): string | Promise<string> } = guest.lifecycle;
void lifecycle;
`;
  const options = { strict: true, noEmit: true, target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext, moduleResolution: ts.ModuleResolutionKind.Bundler, lib: spec.engine === 'quickjs' ? ['lib.es2022.d.ts'] : ['lib.es2022.d.ts', 'lib.dom.d.ts'], types: [], skipLibCheck: true, allowImportingTsExtensions: false };
  const host = ts.createCompilerHost(options);
  const { fileExists, readFile, getSourceFile } = host;
  host.fileExists = (f) => f === check || fileExists.call(host, f);
  host.readFile = (f) => (f === check ? checkText : readFile.call(host, f));
  host.getSourceFile = (f, lang, ...rest) => (f === check ? ts.createSourceFile(f, checkText, lang) : getSourceFile.call(host, f, lang, ...rest));
  const program = ts.createProgram([spec.src, typesFile, check], options, host);
  const diagnostics = ts.getPreEmitDiagnostics(program);
  if (diagnostics.length === 0) return;
  const text = ts.formatDiagnostics(diagnostics, { getCanonicalFileName: (f) => f, getCurrentDirectory: () => root, getNewLine: () => '\n' })
    .replaceAll(path.relative(root, check), `${shown(spec.src)} (its exports: \`export const lifecycle = { start, stop, invoke }\`)`);
  // An unknown name under quickjs is most often a web API (console, fetch, TextEncoder): say which engine has them.
  const hint = spec.engine === 'quickjs' && diagnostics.some((d) => d.code === 2304 || d.code === 2584)
    ? `\n${spec.name} is built with the quickjs engine${spec.defaulted ? ' (the default)' : ''}, which has no web APIs (console, fetch, TextEncoder…): use the world's imports (edgeward:module/logging for logs), or write \`componentize-js\` in ${shown(path.join(spec.dir, 'engine'))}`
    : '';
  throw new GuestError(`${spec.name} does not type-check against its world "${spec.world}" (types in ${shown(path.dirname(typesFile))}/):\n${text}${hint}`);
}

async function build(name) {
  const spec = guestSpec(name);
  const tree = witTree(spec);
  try {
    // A guest of the plain module world uses the shared guests/types/module.d.ts (written by moduleTypes).
    const typesFile = spec.worldFile ? await writeTypes(tree.dir, spec.world, path.join(spec.dir, 'types'), { guest: true }) : path.join(guestsDir, 'types', 'module.d.ts');
    await componentizeGuest(spec, tree, typesFile);
  } finally {
    tree.cleanup();
  }
}

async function componentizeGuest(spec, tree, typesFile) {
  const { name, features } = spec;
  const source = readFileSync(spec.src, 'utf8');
  const hash = createHash('sha256').update(source).update(spec.world).update(tree.text).update(JSON.stringify(features)).update(spec.engine).update(spec.engine === 'quickjs' ? qjsVersion : czVersion).update(self).digest('hex');
  const dist = path.join(spec.dir, 'dist');
  const out = path.join(dist, `${name}.wasm`);
  const hashFile = `${out}.inputs`;
  if (existsSync(out) && existsSync(hashFile) && readFileSync(hashFile, 'utf8') === hash) {
    console.log(`guests: ${name} up to date`);
    return;
  }
  typeCheck(spec, typesFile);
  mkdirSync(dist, { recursive: true });
  const js = ts.transpileModule(source, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } }).outputText;
  // The author's module, and the entry componentize-js builds: a wrapper around its exports (guestErrors).
  writeAtomic(path.join(dist, `${name}.guest.js`), js);
  const jsFile = path.join(dist, `${name}.js`);
  writeAtomic(jsFile, exportWrapper(`./${name}.guest.js`, exportNames(js)));
  const t = Date.now();
  const component = spec.engine === 'quickjs' ? await quickjs(spec, tree, jsFile) : await spiderMonkey(spec, tree, jsFile);
  writeAtomic(out, component);
  writeAtomic(hashFile, hash);
  const digest = createHash('sha256').update(component).digest('hex');
  console.log(`guests: ${name} built in ${Date.now() - t} ms, ${component.length} bytes, sha256:${digest}`);
}

/** componentize-js (SpiderMonkey): every engine feature off but the guest's. */
async function spiderMonkey(spec, tree, jsFile) {
  const { componentize } = await import('@bytecodealliance/componentize-js');
  const { component } = await componentize({ sourcePath: jsFile, witPath: tree.dir, worldName: spec.world, disableFeatures: FEATURES.filter((f) => !spec.features.includes(f)) });
  return component;
}

/**
 * componentize-qjs (QuickJS): the synchronous runtime (no component-model async ABI), optimised for size,
 * and every WASI import the engine would make stubbed with a trap, so the component imports only what its
 * world declares. Its core modules use extended-const, which the daemon enables in V8
 * (host/runtime/wasm-features.ts).
 */
async function quickjs(spec, tree, jsFile) {
  const { componentize } = await import('componentize-qjs');
  const { component } = await componentize({ witPath: tree.dir, jsSource: readFileSync(jsFile, 'utf8'), jsPath: jsFile, moduleRoot: path.dirname(jsFile), world: spec.world, stubWasi: true, optSize: true, sync: true });
  return component;
}

/** The names a JS module exports itself (`export const|function|class`, `export { a as b }`, `export default`). */
function exportNames(js) {
  const file = ts.createSourceFile('guest.js', js, ts.ScriptTarget.ES2022, false, ts.ScriptKind.JS);
  const names = new Set();
  const exported = (node) => ts.canHaveModifiers(node) && (ts.getModifiers(node) ?? []).some((m) => m.kind === ts.SyntaxKind.ExportKeyword);
  const isDefault = (node) => (ts.getModifiers(node) ?? []).some((m) => m.kind === ts.SyntaxKind.DefaultKeyword);
  for (const st of file.statements) {
    if (ts.isVariableStatement(st) && exported(st)) {
      for (const d of st.declarationList.declarations) if (ts.isIdentifier(d.name)) names.add(d.name.text);
    } else if ((ts.isFunctionDeclaration(st) || ts.isClassDeclaration(st)) && exported(st)) {
      names.add(isDefault(st) ? 'default' : st.name.text);
    } else if (ts.isExportDeclaration(st) && st.exportClause && ts.isNamedExports(st.exportClause)) {
      for (const e of st.exportClause.elements) names.add(e.name.text);
    } else if (ts.isExportAssignment(st)) {
      names.add('default');
    }
  }
  return [...names].sort();
}

/**
 * The entry module componentize-js builds: the author's module re-exported with every exported function
 * (and every function of an exported interface object) wrapped, so that whatever it throws becomes the
 * export's `err` answer instead of a trap. componentize-js makes a thrown string (or an object with
 * `payload`) the `err` of a `result` export, but traps on a thrown Error: the wrapper logs an Error's
 * message and stack through `edgeward:module/logging` (which every world includes, so no grant is added)
 * and throws its message. A WebAssembly trap is not a JS exception and still traps.
 */
function exportWrapper(guestModule, names) {
  const lines = [
    '// Generated by guests/build.mjs: the exports of the guest source, wrapped (see exportWrapper there).',
    "import { log } from 'edgeward:module/logging@0.1.0';",
    `import * as guest from '${guestModule}';`,
    `export * from '${guestModule}';`,
    GUEST_ERRORS,
  ];
  for (const n of names) {
    if (n === 'default') lines.push(`const wrappedDefault = wrapExport('default', guest.default);`, 'export { wrappedDefault as default };');
    else lines.push(`export const ${n} = wrapExport(${JSON.stringify(n)}, guest.${n});`);
  }
  return lines.join('\n') + '\n';
}

/** Runtime half of exportWrapper (plain JS run inside the guest's engine). */
const GUEST_ERRORS = `
/** What a thrown value answers: strings and \`payload\` objects as they are; an Error logged, then its message. */
function answer(where, e) {
  if (typeof e === 'string' || (e !== null && typeof e === 'object' && 'payload' in e)) return e;
  if (e instanceof Error) {
    const text = \`\${e.name}: \${e.message}\`;
    // The guest's own frames: the wrapper's and the engine's binding frames below them are cut.
    const frames = typeof e.stack === 'string' ? e.stack.trimEnd().split('\\n') : [];
    const own = frames.findIndex((f) => f.startsWith('wrapFunction'));
    const stack = (own < 0 ? frames : frames.slice(0, own)).filter((f) => f.trim()).map((f) => \`\\n\${f}\`).join('');
    try { log('error', \`\${where} threw \${text}\${stack}\`); } catch {}
    return e.message || e.name;
  }
  let shown;
  try { shown = JSON.stringify(e); } catch {}
  return shown === undefined ? String(e) : shown;
}
function wrapFunction(where, fn, self) {
  return function (...args) {
    let out;
    try {
      out = fn.apply(self, args);
    } catch (e) {
      throw answer(where, e);
    }
    if (out !== null && typeof out === 'object' && typeof out.then === 'function') return out.then(undefined, (e) => { throw answer(where, e); });
    return out;
  };
}
function wrapExport(name, value) {
  if (typeof value === 'function') return wrapFunction(name, value, undefined);
  if (value === null || typeof value !== 'object') return value;
  // Own keys and methods of its classes (an interface may be an instance), not Object's.
  const keys = new Set();
  for (let o = value; o && o !== Object.prototype; o = Object.getPrototypeOf(o)) for (const k of Object.getOwnPropertyNames(o)) if (k !== 'constructor') keys.add(k);
  const out = {};
  for (const key of keys) out[key] = typeof value[key] === 'function' ? wrapFunction(\`\${name}.\${key}\`, value[key], value) : value[key];
  return out;
}`;

/** Every guest: a folder of guests/ with src/index.ts. */
function allGuests() {
  return readdirSync(guestsDir).filter((d) => !NOT_GUESTS.has(d) && existsSync(path.join(guestsDir, d, 'src', 'index.ts'))).sort();
}

await moduleTypes();
const failed = [];
for (const name of process.argv.slice(2).length ? process.argv.slice(2) : allGuests()) {
  try {
    await build(name);
  } catch (err) {
    failed.push(name);
    console.error(`guests: ${name} FAILED: ${err instanceof GuestError ? err.message : (err?.stack ?? err)}`);
  }
}
if (failed.length) {
  console.error(`guests: ${failed.length} failed (${failed.join(', ')}); the others are built`);
  process.exitCode = 1;
}
