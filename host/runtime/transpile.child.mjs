// jco's transpiler, in a process of its own (transpiler.ts): it runs only js-component-bindgen's
// `generate`, the step of jco's `transpile` that makes the glue, with the options our `transpile` call
// would hand it (transpiler.test.ts checks the output is jco's, byte for byte). The process exits when
// the daemon disconnects, so a daemon killed with SIGKILL leaves none behind.
import { $init, generate } from '@bytecodealliance/jco-transpile/component';

/**
 * What jco 1.35's `transpile(bytes, { name: 'component', instantiation: 'async', base64Cutoff: 0 })` passes to `generate`.
 * @type {import('@bytecodealliance/jco-transpile/component').GenerateOptions}
 */
const GENERATE = {
  name: 'component',
  map: [],
  instantiation: { tag: 'async' },
  asyncMode: undefined,
  importBindings: undefined,
  validLiftingOptimization: false,
  tracing: false,
  noComponentErrorWrapping: false,
  noNodejsCompat: false,
  noTypescript: true,
  tlaCompat: false,
  base64Cutoff: 0,
  noNamespacedExports: false,
  multiMemory: false,
  bindgenEnableWasmExnref: false,
  strict: false,
  flagsAsBigint: false,
  variantsInlineCases: false,
  useNamespaceObjects: false,
  enumValuesScreamingSnakeCase: false,
  asmjs: false,
};

process.on('disconnect', () => process.exit(0));
process.on('message', /** @param {{ id: number; bytes: Uint8Array }} msg */ async ({ id, bytes }) => {
  /** @type {Record<string, unknown>} */
  let reply;
  try {
    await $init;
    const out = generate(bytes, GENERATE);
    const files = Object.fromEntries(out.files.filter(([name]) => !name.endsWith('.d.ts')));
    reply = { id, files, imports: out.imports, exports: out.exports.map(([name]) => name) };
  } catch (err) {
    reply = { id, error: err instanceof Error ? err.message : String(err) };
  }
  process.send?.(reply);
});
