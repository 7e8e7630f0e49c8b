#!/usr/bin/env node
/**
 * The `edgeward` process's own code as one bundle (issue 14): what tsc emitted under dist/ for the daemon's
 * and the CLI's thread, starting at dist/host/cli/main.js, joined by esbuild into dist/host/bundle/ — one
 * entry (`edgeward.js`, the package's bin and `npm start`) and one chunk per lazy `import()` boundary, so
 * what the running config does not need is still not loaded.
 *
 * Why: Node keeps every module's source text in memory and resolves and links each file on its own. Measured
 * on this machine (daemon with no module, RSS settled, bench/memory's method): ~163 modules of dist/ plus
 * zod's and hono's 130 files cost ~2.4 MiB more resident and ~135–180 ms more start than this bundle
 * (dist/host/cli/main.js is kept and still runs, unbundled, for debugging).
 *
 * What is bundled: our code and the pure ES-module libraries of the daemon's own thread (zod, hono,
 * @hono/node-server, smol-toml). Every other package stays an `import` of node_modules: native or
 * WebAssembly parts (pkcs11js, jco, componentize-*), files read at run time (pino's transports), and
 * CommonJS. The `.mjs` code (the sandbox worker and the modules it imports, the transpiler process, the
 * broker protocol and the validator) is not part of it: scripts/copy-mjs.mjs copies it into dist/, and the
 * daemon loads it from there (host/runtime/assets.ts), inside the tree its code digest measures.
 *
 * Whitespace and syntax are minified (that is where the memory is); identifiers are not minified. Where
 * two modules declare the same top-level name, esbuild renames one (`describe2`): a stack trace shows that
 * name, while every error class sets its `name` itself (`this.name = 'RuntimeError'`), so errors and logs
 * read as before (the classes renamed today are hono's and @hono/node-server's own: Hono, Node, Response).
 * `keepNames` is off: it wraps every closure a request creates (hono's dispatch, our handlers) in a
 * defineProperty of its name, and cost the workload API a third of its throughput (bench/workload.ts, A/B
 * twice, same minute: 6,245–7,071 req/s with it, 8,469–9,113 without; ratio to bare hono 0.51–0.60 →
 * 0.80–0.86). The bundle lives under dist/host/, so the measured
 * code digest (host/measure/code.ts) covers it. esbuild's metafile (which source file went into which output
 * file) is written beside dist/, for test/daemon-lazy-load.test.ts.
 */
import { build } from 'esbuild';
import { existsSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const ENTRY = path.join(ROOT, 'dist', 'host', 'cli', 'main.js');
const OUT = path.join(ROOT, 'dist', 'host', 'bundle');
const META = path.join(ROOT, 'dist', 'bundle-meta.json');
/** Packages joined into the bundle; every other bare specifier stays external. */
const BUNDLED = new Set(['zod', 'hono', '@hono/node-server', 'smol-toml']);

/** `@scope/name/sub` → `@scope/name`, `name/sub` → `name`. */
function packageOf(spec) {
  const parts = spec.split('/');
  return spec.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}

const onlyListedPackages = {
  name: 'only-listed-packages',
  setup(b) {
    b.onResolve({ filter: /^[^./]/ }, (args) => (BUNDLED.has(packageOf(args.path)) ? undefined : { path: args.path, external: true }));
  },
};

/**
 * zod's every entry point re-exports all its 58 locales (`z.locales`): ~300 KB of the bundle's text, each
 * evaluated at start. Edgeward words its own config and API errors (host/config/load.ts describeIssues)
 * and uses only zod's default, English: in the bundle, `locales` holds `en` alone.
 */
const englishOnlyZod = {
  name: 'english-only-zod',
  setup(b) {
    b.onResolve({ filter: /^\.\.\/locales\/index\.js$/ }, (args) => {
      if (!/[\\/]node_modules[\\/]zod[\\/]/.test(args.importer)) return undefined;
      return { path: path.join(path.dirname(args.importer), '..', 'locales', 'en.js'), namespace: 'zod-en' };
    });
    b.onLoad({ filter: /.*/, namespace: 'zod-en' }, (args) => ({
      contents: `export { default as en } from ${JSON.stringify(args.path)};`,
      resolveDir: path.dirname(args.path),
      loader: 'js',
    }));
  },
};

rmSync(OUT, { recursive: true, force: true });
const result = await build({
  absWorkingDir: ROOT,
  entryPoints: { edgeward: ENTRY },
  outdir: OUT,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  minifyWhitespace: true,
  minifySyntax: true,
  keepNames: false,
  legalComments: 'none',
  chunkNames: 'chunk-[hash]',
  metafile: true,
  logLevel: 'warning',
  plugins: [englishOnlyZod, onlyListedPackages],
});
writeFileSync(META, JSON.stringify(result.metafile));

/**
 * The sandbox worker as one CommonJS file, dist/host/runtime/worker.bundle.cjs: worker.mjs, what it
 * imports, and every worker-side capability module (host/capabilities/<name>/worker.mjs), each evaluated
 * only when a `load` or `preload` asks for it (its `import()` becomes a lazy initialiser here). A worker
 * whose code is all CommonJS never starts Node's ES module loader: measured (median of 9, the daemon's V8
 * flag, logging and exit preloaded as every spare does) ~15 ms of CPU less per worker boot. One `import()`
 * of an ES module would bring the loader back, so the capability modules must be in the bundle too.
 * runtime/sandbox/pool.ts spawns this file when it exists beside the compiled code (never under tsx). The
 * first module sets the URL → module map worker.mjs takes (and removes from the global) at its top.
 */
const RUNTIME = path.join(ROOT, 'host', 'runtime');
const capabilityWorkers = readdirSync(path.join(ROOT, 'host', 'capabilities'), { withFileTypes: true })
  .filter((e) => e.isDirectory() && existsSync(path.join(ROOT, 'host', 'capabilities', e.name, 'worker.mjs')))
  .map((e) => `host/capabilities/${e.name}/worker.mjs`);
const workerModuleMap = {
  name: 'worker-module-map',
  setup(b) {
    b.onResolve({ filter: /^edgeward:worker-module-map$/ }, () => ({ path: 'map', namespace: 'worker-module-map' }));
    b.onLoad({ filter: /.*/, namespace: 'worker-module-map' }, () => ({
      resolveDir: RUNTIME,
      loader: 'js',
      contents: [
        "import path from 'node:path';",
        "import { pathToFileURL } from 'node:url';",
        '// __dirname: dist/host/runtime/, where this bundle is; the modules\' URLs are those assets.ts gives.',
        "const at = (rel) => pathToFileURL(path.join(__dirname, '..', '..', rel)).href;",
        "globalThis[Symbol.for('edgeward.bundledWorkerModules')] = new Map([",
        ...capabilityWorkers.map((rel) => `  [at(${JSON.stringify(rel)}), () => import(${JSON.stringify(path.relative(RUNTIME, path.join(ROOT, rel)))})],`),
        ']);',
      ].join('\n'),
    }));
  },
};
await build({
  absWorkingDir: ROOT,
  stdin: { contents: "import 'edgeward:worker-module-map';\nimport './worker.mjs';\n", resolveDir: RUNTIME, sourcefile: 'worker-bundle-entry.mjs', loader: 'js' },
  outfile: path.join(ROOT, 'dist', 'host', 'runtime', 'worker.bundle.cjs'),
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  banner: { js: '"use strict";' }, // the sources are ES modules: strict mode, as they were written for
  minifyWhitespace: true,
  minifySyntax: true,
  legalComments: 'none',
  logLevel: 'warning',
  plugins: [workerModuleMap],
});
console.log(`worker bundle: dist/host/runtime/worker.bundle.cjs (worker.mjs and ${capabilityWorkers.length} capability worker modules)`);
const outputs = Object.keys(result.metafile.outputs);
const modules = Object.keys(result.metafile.inputs).length;
console.log(`bundle: ${outputs.length} files in ${path.relative(ROOT, OUT)}/ from ${modules} modules`);
