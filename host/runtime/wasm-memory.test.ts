import { describe, expect, it } from 'vitest';
import { parse } from '@bytecodealliance/jco';
import { capCoreModuleMemory, MAX_TABLE_ELEMENTS, MemoryLimitError } from './wasm-memory.js';

const wasm = (globalThis as unknown as { WebAssembly: { Module: new (b: Uint8Array) => object; Instance: new (m: object) => { exports: Record<string, { buffer: ArrayBuffer; grow(n: number): number }> } } }).WebAssembly;

describe('capCoreModuleMemory', () => {
  it('adds a maximum to a memory that has none, and the engine enforces it', async () => {
    const bytes = await parse('(module (memory (export "m") 1))');
    const { bytes: out, report } = capCoreModuleMemory(bytes, 4);
    expect(report).toEqual({ memories: [{ min: 1 }], tables: [], rewritten: true });
    const mem = new wasm.Instance(new wasm.Module(out)).exports.m!;
    expect(mem.grow(3)).toBe(1);
    expect(() => mem.grow(1)).toThrow(RangeError);
  });

  it('lowers a maximum above the cap and keeps one below it', async () => {
    expect(capCoreModuleMemory(await parse('(module (memory 1 100))'), 4).report).toEqual({ memories: [{ min: 1, max: 100 }], tables: [], rewritten: true });
    const same = await parse('(module (memory 1 2))');
    const r = capCoreModuleMemory(same, 4);
    expect(r.report.rewritten).toBe(false);
    expect(r.bytes).toBe(same);
  });

  it('caps a table with no maximum, and the engine enforces it', async () => {
    const bytes = await parse('(module (table (export "t") 1 funcref) (memory 1 1))');
    const { bytes: out, report } = capCoreModuleMemory(bytes, 4);
    expect(report).toEqual({ memories: [{ min: 1, max: 1 }], tables: [{ min: 1 }], rewritten: true });
    const table = (new wasm.Instance(new wasm.Module(out)).exports as unknown as Record<string, { grow(n: number): number }>).t!;
    expect(() => table.grow(MAX_TABLE_ELEMENTS)).toThrow(RangeError);
    expect(table.grow(10)).toBe(1);
    expect(() => capCoreModuleMemory(bytes.slice(), 4) && capCoreModuleMemory(new Uint8Array(Buffer.from('0061736d010000000405017000c0843d', 'hex')), 4)).toThrow('table 0 needs 1000000 elements at start, above the ceiling of 100000 elements');
  });

  it('refuses a memory whose minimum is above the cap', async () => {
    expect(() => capCoreModuleMemory(new Uint8Array(Buffer.from('0061736d01000000050401010a0a', 'hex')), 4)).toThrow(MemoryLimitError);
    expect(() => capCoreModuleMemory(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]), 4)).toThrow('not a core WebAssembly module');
  });
});
