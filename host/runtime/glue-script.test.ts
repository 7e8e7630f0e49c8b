/**
 * The glue's script form (glue-script.mjs), as the sandbox worker compiles it: real jco glue compiles and
 * instantiates; glue with other module syntax does not compile; the glue's import() loads nothing; a code
 * cache the daemon made (sandbox/glue-cache.ts, by a rehearsal of the glue) is accepted for the same text
 * only, and holds the functions a start and a call run compiled.
 */
import { transpile } from '@bytecodealliance/jco';
import { Script } from 'node:vm';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildTestGuest } from '../../guests/adversarial/components.js';
import { GLUE_FILENAME, glueScript } from './glue-script.mjs';
import { hardenGlue } from './harden-glue.js';
import { clearGlueCodeCaches, glueCodeCache } from './sandbox/glue-cache.js';

const wasm = (globalThis as unknown as { WebAssembly: { compile(bytes: Uint8Array): Promise<unknown> } }).WebAssembly;
const OPTIONS = { name: 'component', instantiation: 'async', base64Cutoff: 0, noTypescript: true, quiet: true } as const;
type Instantiate = (get: (n: string) => unknown, imports: unknown) => Promise<Record<string, unknown>>;
const compile = (source: string, cachedData?: Uint8Array) => {
  const script = new Script(glueScript(source), { filename: GLUE_FILENAME, ...(cachedData ? { cachedData } : {}) });
  return { instantiate: script.runInThisContext() as Instantiate, rejected: script.cachedDataRejected };
};

/** The code cache glue-cache.ts made for `source` (asked for before), once it is there. */
async function cacheOf(source: string): Promise<Uint8Array> {
  for (let waited = 0; waited < 15_000; waited += 50) {
    const cache = glueCodeCache(source);
    if (cache) return cache;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('no code cache made within 15 s');
}

let glue: string;
let modules: Map<string, unknown>;
beforeAll(async () => {
  const out = await transpile(await buildTestGuest('echo'), OPTIONS as Parameters<typeof transpile>[1]);
  glue = hardenGlue(Buffer.from(out.files['component.js'] as Uint8Array).toString('utf8'));
  modules = new Map();
  for (const [name, data] of Object.entries(out.files)) if (name.endsWith('.wasm')) modules.set(name, await wasm.compile(data as Uint8Array));
}, 60_000);

describe('glueScript', () => {
  it('compiles real jco glue into its instantiate, which instantiates the component', async () => {
    const { instantiate } = compile(glue);
    expect(typeof instantiate).toBe('function');
    const logged: string[] = [];
    const imports = { 'edgeward:module/logging': { log: (_l: string, m: string) => logged.push(m) } };
    const ex = await instantiate((n) => modules.get(n), imports);
    expect(Object.keys(ex)).toContain('lifecycle');
  });

  it('refuses glue with any other module syntax (it does not compile), and glue with no instantiate', () => {
    for (const extra of ["import fs from 'node:fs';", 'export const leak = 1;', 'await 0;']) {
      expect(() => compile(`${extra}\n${glue}`)).toThrow(SyntaxError);
    }
    expect(() => glueScript('export const _util = {};\n')).toThrow(/no instantiate/);
  });

  it("leaves the glue's import() nothing to load", async () => {
    const probe = glue.replace(/^(export function instantiate\(.*\{)$/m, "$1\n  return import('node:fs');");
    await expect(compile(probe).instantiate(() => undefined, {})).rejects.toThrow(/dynamic import callback|importModuleDynamically/i);
  });

  it("takes the daemon's code cache of the same text only", async () => {
    clearGlueCodeCaches();
    expect(glueCodeCache(glue)).toBeUndefined(); // the first start goes without; the cache is made after it
    const cache = await cacheOf(glue);
    expect(cache.byteLength).toBeGreaterThan(0);
    expect(compile(glue, cache).rejected).toBe(false);
    expect(compile(glue.replace('edgeward: checked lifting', 'edgeward: checked lifting '), cache).rejected).toBe(true);
    clearGlueCodeCaches();
  });

  it('makes the cache with what a start and a call run compiled (a rehearsal against stand-ins)', async () => {
    clearGlueCodeCaches();
    glueCodeCache(glue);
    const rehearsed = await cacheOf(glue);
    // The glue only compiled, never run, is its top level: a few KB against ~70 KB with instantiate,
    // jco's task machinery and start/invoke's lifting compiled. (A text of its own: this process has run
    // the glue's own text, and V8's in-memory compilation cache would hand back its compiled functions.)
    const compiledOnly = new Script(`${glueScript(glue)}\n// fresh`, { filename: GLUE_FILENAME }).createCachedData();
    expect(rehearsed.byteLength).toBeGreaterThan(5 * compiledOnly.byteLength);
    // The cached code runs: the component instantiates and answers through it.
    const { instantiate, rejected } = compile(glue, rehearsed);
    expect(rejected).toBe(false);
    const ex = (await instantiate((n) => modules.get(n), { 'edgeward:module/logging': { log: () => undefined } })) as { lifecycle: { invoke(m: string, p: string): string } };
    expect(ex.lifecycle.invoke('x', '"y"')).toBe('"y"');
    clearGlueCodeCaches();
  });

  it('still gets a cache when the rehearsal stops at once (the glue compiled, never run)', async () => {
    clearGlueCodeCaches();
    const stops = glue.replace(/^(export function instantiate\(.*\{)$/m, "$1\n  throw new Error('stop');");
    glueCodeCache(stops);
    expect(compile(stops, await cacheOf(stops)).rejected).toBe(false);
    clearGlueCodeCaches();
  });
});
