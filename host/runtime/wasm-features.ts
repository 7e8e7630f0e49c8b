/**
 * WebAssembly features the runtime enables in V8 while it compiles components' core modules.
 *
 * - extended-const (constant expressions with `i32.add`/`i32.sub`/`i32.mul`, part of WebAssembly 3.0; on by
 *   default from V8 11.4, i.e. Node 22): QuickJS guests (componentize-qjs) use it in their data segments,
 *   and Node 20's V8 has it behind a flag. Only what a core module may *declare* changes; nothing a guest
 *   may call or reach does.
 *
 * Only while a compile runs. V8 refuses a code cache made under other flags (its flag hash), and Node's
 * own bootstrap code, which every sandbox worker runs as it boots, comes with a code cache made under the
 * defaults: with any flag set at run time, each worker boot compiled that code again. A cold process's
 * first worker: 39–55 ms with the defaults, 74–93 with this flag left set (and 39–52 with it set, then
 * cleared). The compiled modules keep the features they were compiled with, and the workers receive them
 * compiled (test/guests-quickjs.test.ts: its guest does not compile without the feature).
 */
import v8 from 'node:v8';

/** `(module (global i32 (i32.add (i32.const 1) (i32.const 2))))`: valid only with extended-const. */
const EXTENDED_CONST_PROBE = new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x06, 0x09, 0x01, 0x7f, 0x00, 0x41, 0x01, 0x41, 0x02, 0x6a, 0x0b]);
const validate = (globalThis as unknown as { WebAssembly: { validate(b: Uint8Array): boolean } }).WebAssembly.validate;

/** Whether the features are on now (tests). */
export function wasmFeaturesOn(): boolean {
  return validate(EXTENDED_CONST_PROBE);
}

/** Whether V8 has extended-const without the flag (Node 22 and later): then no flag is ever set. */
const builtIn = wasmFeaturesOn();
let compiling = 0;

/** Run `compile` with the features on; the flag is cleared again once no compile needs it. */
export async function withWasmFeatures<T>(compile: () => Promise<T>): Promise<T> {
  if (builtIn) return compile();
  if (compiling++ === 0) v8.setFlagsFromString('--experimental-wasm-extended-const');
  try {
    return await compile();
  } finally {
    if (--compiling === 0) v8.setFlagsFromString('--no-experimental-wasm-extended-const');
  }
}
