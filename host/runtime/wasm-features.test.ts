/**
 * extended-const is on only while a compile runs (wasm-features.ts): V8's flags are back to the defaults
 * once no compile needs it, so sandbox workers that boot then take Node's code cache for its own bootstrap.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { assetPath } from './assets.js';
import { Loader } from './loader.js';
import { wasmFeaturesOn, withWasmFeatures } from './wasm-features.js';

const nodeMajor = Number(process.versions.node.split('.')[0]);

describe('WebAssembly features', () => {
  it('are on while a compile runs, for every compile that overlaps, and off after the last', async () => {
    // Node 22's V8 has extended-const by default (then no flag is ever set); this machine runs Node 20.
    if (nodeMajor >= 22) return expect(wasmFeaturesOn()).toBe(true);
    expect(wasmFeaturesOn()).toBe(false);
    let release!: () => void;
    const held = new Promise<void>((r) => { release = r; });
    const first = withWasmFeatures(async () => { await held; return wasmFeaturesOn(); });
    const second = await withWasmFeatures(async () => wasmFeaturesOn());
    expect(second).toBe(true);
    expect(wasmFeaturesOn()).toBe(true); // the first still runs
    release();
    expect(await first).toBe(true);
    expect(wasmFeaturesOn()).toBe(false);
    await expect(withWasmFeatures(async () => { throw new Error('compile failed'); })).rejects.toThrow('compile failed');
    expect(wasmFeaturesOn()).toBe(false);
  });

  it('let a QuickJS sample compile, and are off again after it', { timeout: 60_000 }, async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'edgeward-wasmfeat-'));
    try {
      const loader = new Loader(dir);
      const bytes = new Uint8Array(readFileSync(assetPath('guests/hello/dist/hello.wasm')));
      const prepared = await loader.prepare(`sha256:${'0'.repeat(64)}`, async () => bytes, { disk: false });
      const modules = await loader.compile(prepared, 64); // throws without extended-const (a CompileError)
      expect(Object.keys(modules).length).toBeGreaterThan(1);
      if (nodeMajor < 22) expect(wasmFeaturesOn()).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
