// Transpiles components off the daemon's thread: jco's transpiler is synchronous WebAssembly and takes
// seconds on a 12 MB component, which would otherwise stall the management API and every module's calls.
import { parentPort } from 'node:worker_threads';
import { transpile } from '@bytecodealliance/jco';

/** Always a worker thread (transpiler.ts). */
const port = /** @type {import('node:worker_threads').MessagePort} */ (parentPort);

port.on('message', /** @param {{ id: number; bytes: Uint8Array; options: Parameters<typeof transpile>[1] }} msg */ async ({ id, bytes, options }) => {
  try {
    const out = await transpile(bytes, options);
    const files = Object.fromEntries(Object.entries(out.files).filter(([name]) => !name.endsWith('.d.ts')));
    port.postMessage({ id, files, imports: out.imports, exports: out.exports.map(([name]) => name) });
  } catch (err) {
    port.postMessage({ id, error: err instanceof Error ? err.message : String(err) });
  }
});
