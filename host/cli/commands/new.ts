/**
 * `edgeward new module NAME [--world module|identity|keys|data] [--dir DIR] [--engine quickjs|componentize-js]`: scaffold a guest module as
 * guests/README.md describes it: DIR/NAME/ (DIR defaults to `guests`) with src/index.ts, world.wit (the
 * `module` world plus the imports the chosen world needs), its `engine` file, a manifest, a README and a
 * vitest test that builds it and deploys it into a temporary runtime. Nothing existing is overwritten.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { packageRoot } from '../../runtime/assets.js';
import { action } from '../output.js';

/** A guest name: what `builtin:<name>` takes, and a WIT identifier (the world is named after it). */
const NAME = /^[a-z][a-z0-9]*(-[a-z][a-z0-9]*)*$/;
const MAX_NAME = 32;

interface WorldTemplate {
  /** What world.wit imports beside `edgeward:module/module`. */
  readonly imports: readonly string[];
  /** The grants a manifest needs for it (with those the JS engine's own imports need). */
  readonly grants: readonly string[];
  /** The engine it is built with unless --engine says otherwise: quickjs, or componentize-js for a world importing WASI. */
  readonly engine: 'quickjs' | 'componentize-js';
  /** TypeScript imports of src/index.ts for the demo method. */
  readonly tsImports: string;
  /** `case` lines of invoke beside `ping`. */
  readonly methods: string;
  /** How the test opens the capability the grant needs (a runtime option expression), if any. */
  readonly testCapability?: 'keys' | 'identity';
}

const WORLDS: Record<string, WorldTemplate> = {
  module: { imports: [], grants: [], engine: 'quickjs', tsImports: '', methods: '' },
  identity: {
    imports: ['edgeward:workload/identity@0.1.0'],
    grants: ['edgeward:workload/identity'],
    engine: 'quickjs',
    tsImports: "import { sasToken } from 'edgeward:workload/identity@0.1.0';\n",
    methods: "      // A SAS token for this module, kept inside: only its length leaves.\n      case 'sas': return JSON.stringify({ length: sasToken(name, 3600).length });\n",
    testCapability: 'identity',
  },
  keys: {
    imports: ['edgeward:hsm/keys@0.1.0'],
    grants: ['edgeward:hsm/keys'],
    engine: 'quickjs',
    tsImports: "import { createKeyPair, sign } from 'edgeward:hsm/keys@0.1.0';\n",
    methods: "      // Sign the payload with key pair `main` of this module's own namespace (created on first use).\n      case 'sign': return JSON.stringify({ signature: Array.from(sign(createKeyPair('main', 'ec-p256'), 'ecdsa-sha256', new TextEncoder().encode(payload)), (b) => b.toString(16).padStart(2, '0')).join('') });\n",
    testCapability: 'keys',
  },
  data: {
    imports: ['wasi:filesystem/preopens@0.2.12', 'wasi:filesystem/types@0.2.12'],
    // componentize-js links its stdio and a clock when the filesystem is imported (guests/README.md).
    grants: ['wasi:filesystem/data', 'wasi:cli/stdio', 'wasi:clocks'],
    // The quickjs engine stubs every WASI import with a trap, the filesystem too (guests/README.md).
    engine: 'componentize-js',
    tsImports: "import { getDirectories } from 'wasi:filesystem/preopens@0.2.12';\n",
    methods: "      // Save the payload as /data/last.json (the module's own data directory).\n      case 'save': {\n        const dir = getDirectories().find(([, p]) => p === '/data')?.[0];\n        if (!dir) throw 'no /data: grant \"wasi:filesystem/data\"';\n        const bytes = new TextEncoder().encode(payload);\n        return JSON.stringify({ bytes: Number(dir.openAt({}, 'last.json', { create: true, truncate: true }, { write: true }).write(bytes, 0n)) });\n      }\n",
  },
};

export interface NewModuleOptions {
  world?: string;
  /** Folder the guest's folder is created in (default `guests`, relative to the working directory). */
  dir?: string;
  /** The JS engine guests/build.mjs builds it with (written to `engine`): the world's (quickjs, componentize-js for `data`) unless given. */
  engine?: string;
}

/** The engines guests/build.mjs knows (its ENGINES). */
const ENGINES = ['quickjs', 'componentize-js'];

/** Write the files of a new guest module; returns its folder. Throws (nothing written) on a bad name or world, or an existing folder. */
export function scaffoldModule(name: string, opts: NewModuleOptions = {}): string {
  if (!NAME.test(name) || name.length > MAX_NAME) throw new Error(`module name "${name}": lower-case words joined by '-' (a letter first in each), at most ${MAX_NAME} characters`);
  const worldKind = opts.world ?? 'module';
  const world = WORLDS[worldKind];
  if (!world) throw new Error(`unknown world "${worldKind}" (known: ${Object.keys(WORLDS).join(', ')})`);
  const engine = opts.engine ?? world.engine;
  if (!ENGINES.includes(engine)) throw new Error(`unknown engine "${engine}" (known: ${ENGINES.join(', ')})`);
  if (engine === 'quickjs' && world.imports.some((i) => i.startsWith('wasi:'))) throw new Error(`world "${worldKind}" imports WASI (${world.imports.join(', ')}), which the quickjs engine stubs with traps: use --engine componentize-js`);
  const dir = path.resolve(opts.dir ?? 'guests', name);
  if (existsSync(dir)) throw new Error(`${dir} already exists`);
  const files: Record<string, string> = {
    'world.wit': worldWit(name, worldKind, world),
    'src/index.ts': source(name, world, engine),
    'manifest.json': `${JSON.stringify(manifest(name, world), null, 2)}\n`,
    'README.md': readme(name, worldKind, world, dir),
    [`${name}.test.ts`]: testFile(name, world, dir),
    engine: `${engine}\n`,
  };
  for (const [rel, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    writeFileSync(path.join(dir, rel), text, { flag: 'wx' });
  }
  return dir;
}

function worldWit(name: string, kind: string, world: WorldTemplate): string {
  const imports = world.imports.map((i) => `  import ${i};\n`).join('');
  return `/// ${name}'s world (${kind}): the \`module\` world plus what it imports. Each import needs its grant in the
/// manifest; guests/build.mjs lays this file out with Edgeward's wit/ packages (and WASI's) as deps.
package guest:${name};

world ${name} {
  include edgeward:module/module@0.1.0;
${imports}}
`;
}

/** UTF-8 for quickjs guests, which have no TextEncoder (no web APIs). */
const UTF8_HELPER = `
/** The UTF-8 bytes of a string (the quickjs engine has no TextEncoder). */
function utf8(s: string): Uint8Array {
  const out: number[] = [];
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (c < 0x80) out.push(c);
    else if (c < 0x800) out.push(0xc0 | (c >> 6), 0x80 | (c & 63));
    else if (c < 0x10000) out.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
    else out.push(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 63), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
  }
  return new Uint8Array(out);
}
`;

function source(name: string, world: WorldTemplate, engine: string): string {
  const quickjs = engine === 'quickjs';
  const methods = quickjs ? world.methods.replaceAll('new TextEncoder().encode(', 'utf8(') : world.methods;
  return `/**
 * ${name}: an Edgeward module. invoke("ping") answers {"pong": "<module name>"}; a thrown string is the
 * \`err\` answer. Built for the world in ../world.wit (npm run build:guests -- ${name}).
 */
/// <reference path="../types/${name}.d.ts" />
import { log } from 'edgeward:module/logging@0.1.0';
${world.tsImports}
let name = '${name}';

export const lifecycle = {
  start(config: string): void {
    name = (JSON.parse(config) as { name: string }).name;
    log('info', \`\${name} started\`);
  },
  stop(): void {},
  invoke(method: string, payload: string): string {
    switch (method) {
      case 'ping': return JSON.stringify({ pong: name });
${methods}      default: throw \`unknown method "\${method}"\`;
    }
  },
};
${quickjs && methods.includes('utf8(') ? UTF8_HELPER : ''}`;
}

function manifest(name: string, world: WorldTemplate): unknown {
  const module = { type: 'wasm', status: 'running', restartPolicy: 'on-failure', settings: { image: `./dist/${name}.wasm` }, ...(world.grants.length ? { capabilities: world.grants } : {}) };
  return { modulesContent: { $edgeAgent: { 'properties.desired': { schemaVersion: '1.1', modules: { [name]: module } } } } };
}

/** `dir` as the user should type it: relative below the working directory, else absolute. */
function shown(dir: string): string {
  const rel = path.relative(process.cwd(), dir);
  return rel === '' ? '.' : rel.startsWith('..') ? dir : rel;
}

function readme(name: string, kind: string, world: WorldTemplate, dir: string): string {
  const rel = shown(dir);
  return `# ${name}

An Edgeward module (world \`${kind}\`${world.grants.length ? `; grants: ${world.grants.map((g) => `\`${g}\``).join(', ')}` : ''}). Build with \`node guests/build.mjs ${rel}\` (\`npm run build:guests -- ${name}\` when it is in guests/), test with \`npx vitest run --root ${rel}\`, deploy with \`npx edgeward deploy ${path.join(rel, 'manifest.json')}\`, then \`npx edgeward invoke ${name} ping\`.
`;
}

function testFile(name: string, world: WorldTemplate, dir: string): string {
  const root = path.relative(dir, packageRoot()) || '.';
  const needsServices = world.testCapability !== undefined;
  const capability = world.testCapability === 'keys' ? 'hsmKeysCapability(services.keys)' : 'workloadIdentityCapability(services)';
  const capImport = world.testCapability === 'keys'
    ? `import { hsmKeysCapability } from '${root}/host/capabilities/hsm-keys/index.js';\n`
    : `import { workloadIdentityCapability } from '${root}/host/capabilities/workload-identity/index.js';\n`;
  return `/** ${name}: built with guests/build.mjs, deployed into a temporary runtime with its grants, invoked. */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Fixture, spec } from '${root}/test/helpers/runtime.js';
${needsServices ? `import { openIdentityServices, type IdentityServices } from '${root}/test/helpers/identity-services.js';\n${capImport}` : ''}
const here = path.dirname(fileURLToPath(import.meta.url));
const fx = new Fixture();
${needsServices ? 'let services: IdentityServices;\n' : ''}
beforeAll(async () => {
  const r = spawnSync(process.execPath, [path.join(here, '${root}', 'guests', 'build.mjs'), here], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(\`build failed:\\n\${r.stdout}\${r.stderr}\`);
${needsServices ? "  services = await openIdentityServices(path.join(fx.dir, 'services'));\n" : ''}}, 600_000);
afterAll(async () => {
  await fx.cleanup();
${needsServices ? '  await services.close();\n' : ''}});

it('starts and answers ping', async () => {
  const rt = await fx.runtime({ limits: { memory_mib: 64, call_timeout_ms: 5_000, max_value_bytes: 65_536 }${needsServices ? `, capabilities: [${capability}]` : ''} });
  await rt.create(spec('${name}', path.join(here, 'dist', '${name}.wasm'), { capabilities: [${world.grants.map((g) => `'${g}'`).join(', ')}] }));
  expect(await rt.invoke('${name}', 'ping', null)).toEqual({ status: 200, payload: { pong: '${name}' } });
});
`;
}

export function registerNewCommand(program: Command): void {
  program
    .command('new')
    .description('scaffold a new guest: new module NAME')
    .command('module <name>')
    .description('scaffold a guest module (src/index.ts, world.wit, manifest.json, README, a test) in DIR/NAME')
    .option('-w, --world <world>', `what it imports: ${Object.keys(WORLDS).join(', ')}`, 'module')
    .option('-d, --dir <dir>', 'folder to create it in', 'guests')
    .option('-e, --engine <engine>', 'JS engine: quickjs (~1 MB, ES2022 only, no WASI; the default) or componentize-js (~12 MB, web APIs such as console, fetch, TextEncoder; the default for --world data)')
    .action(
      action(async (name: string, opts: NewModuleOptions) => {
        const dir = scaffoldModule(name, opts);
        const rel = shown(dir);
        process.stdout.write(`created ${rel}/ (world.wit, src/index.ts, engine, manifest.json, README.md, ${name}.test.ts)\nnext: node guests/build.mjs ${rel} && npx vitest run --root ${rel}\n`);
      }),
    );
}
