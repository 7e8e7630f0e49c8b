import { describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { transpile } from '@bytecodealliance/jco';
import { buildTestGuest } from '../../guests/adversarial/components.js';
import { assetPath } from './assets.js';
import { realModuleOf, stubComponent, stubCoreModule } from './stub-core.js';

const OPTIONS = { name: 'component', instantiation: 'async', base64Cutoff: 0, noTypescript: true, quiet: true } as const;
const wasm = globalThis as unknown as { WebAssembly: { validate(b: Uint8Array): boolean; Module: { new (b: Uint8Array): object; imports(m: object): unknown; exports(m: object): unknown } } };

/** jco's output for the real component and for its stubbed copy, with the stubs swapped back. */
async function both(component: Uint8Array, minBytes?: number) {
  const stubbed = stubComponent(component, minBytes)!;
  expect(stubbed).toBeDefined();
  const real = await transpile(component, OPTIONS as never);
  const fast = await transpile(stubbed.component, OPTIONS as never);
  return { stubbed, real: real.files as Record<string, Uint8Array>, fast: fast.files as Record<string, Uint8Array> };
}

describe('stubbed transpiling', () => {
  it('gives the same glue and, after the swap, the same core modules (WAT guests, every module stubbed)', async () => {
    for (const g of ['echo', 'hostcall', 'fs'] as const) {
      const { stubbed, real, fast } = await both(await buildTestGuest(g), 0);
      expect(Buffer.from(fast['component.js']!).equals(Buffer.from(real['component.js']!))).toBe(true);
      for (const [name, data] of Object.entries(fast)) {
        if (!name.endsWith('.wasm')) continue;
        const swapped = realModuleOf(stubbed, data) ?? data;
        expect(Buffer.from(swapped).equals(Buffer.from(real[name]!)), `${g} ${name}`).toBe(true);
      }
    }
  }, 60_000);

  // console stays on componentize-js (guests/console/engine): its 12 MB component carries the JS engine.
  it('gives the same glue for the 12 MB componentize-js console sample', async () => {
    const file = assetPath('guests/console/dist/console.wasm');
    expect(existsSync(file)).toBe(true);
    expect(readFileSync(file).length).toBeGreaterThan(10_000_000);
    const { stubbed, real, fast } = await both(new Uint8Array(readFileSync(file)));
    expect(Buffer.from(fast['component.js']!).equals(Buffer.from(real['component.js']!))).toBe(true);
    expect(stubbed.component.length).toBeLessThan(200_000);
    const big = Object.entries(fast).find(([n, d]) => n.endsWith('.wasm') && realModuleOf(stubbed, d));
    expect(big).toBeDefined();
    expect(Buffer.from(realModuleOf(stubbed, big![1])!).equals(Buffer.from(real[big![0]]!))).toBe(true);
  }, 60_000);

  // componentize-qjs wraps QuickJS's core module in a nested component: stubbed there too (before, hello
  // went to jco whole, ~1 MB of code and data).
  it('stubs the core modules inside nested components (the QuickJS hello sample), same glue and modules', async () => {
    const file = assetPath('guests/hello/dist/hello.wasm');
    const component = new Uint8Array(readFileSync(file));
    const { stubbed, real, fast } = await both(component);
    expect(stubbed.swaps.length).toBe(2);
    expect(stubbed.component.length).toBeLessThan(component.length / 8);
    expect(Buffer.from(fast['component.js']!).equals(Buffer.from(real['component.js']!))).toBe(true);
    let swapped = 0;
    for (const [name, data] of Object.entries(fast)) {
      if (!name.endsWith('.wasm')) continue;
      const back = realModuleOf(stubbed, data);
      if (back) swapped++;
      expect(Buffer.from(back ?? data).equals(Buffer.from(real[name]!)), name).toBe(true);
    }
    expect(swapped).toBe(2);
  }, 60_000);

  it('keeps a core module valid, with the same imports and exports', () => {
    const file = assetPath('guests/console/dist/console.wasm');
    const stubbed = stubComponent(new Uint8Array(readFileSync(file)))!;
    const real = stubbed.swaps[0]!.real;
    const stub = stubCoreModule(real);
    expect(wasm.WebAssembly.validate(stub)).toBe(true);
    const [a, b] = [new wasm.WebAssembly.Module(stub), new wasm.WebAssembly.Module(real)];
    expect(wasm.WebAssembly.Module.imports(a)).toEqual(wasm.WebAssembly.Module.imports(b));
    expect(wasm.WebAssembly.Module.exports(a)).toEqual(wasm.WebAssembly.Module.exports(b));
  });

  it('leaves what is not a component, or has nothing big enough, to jco', async () => {
    expect(stubComponent(new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]))).toBeUndefined();
    expect(stubComponent(await buildTestGuest('echo'))).toBeUndefined(); // all core modules under the threshold
    const truncated = (await buildTestGuest('echo')).subarray(0, 40);
    expect(() => stubComponent(truncated, 0)).toThrow();
  });
});
