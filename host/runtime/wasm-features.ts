/**
 * WebAssembly features the runtime enables in V8 before it compiles any component's core modules.
 *
 * - extended-const (constant expressions with `i32.add`/`i32.sub`/`i32.mul`, part of WebAssembly 3.0; on by
 *   default from V8 11.4, i.e. Node 22): QuickJS guests (componentize-qjs) use it in their data segments,
 *   and Node 20's V8 has it behind a flag. Only what a core module may *declare* changes; nothing a guest
 *   may call or reach does.
 *
 * V8 flags are per process: set here on the daemon's thread before the first compile, they hold for the
 * sandbox workers too (checked by test/guests-quickjs.test.ts, whose guest does not compile without it).
 */
import v8 from 'node:v8';

v8.setFlagsFromString('--experimental-wasm-extended-const');
