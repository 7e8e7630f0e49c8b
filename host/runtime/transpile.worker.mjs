// Transpiles components off the daemon's thread: jco's transpiler is synchronous WebAssembly and takes
// seconds on a 12 MB component, which would otherwise stall the management API and every module's calls.
import { parentPort } from 'node:worker_threads';
import { transpile } from '@bytecodealliance/jco';

parentPort.on('message', async ({ id, bytes, options }) => {
  try {
    const out = await transpile(bytes, options);
    const files = Object.fromEntries(Object.entries(out.files).filter(([name]) => !name.endsWith('.d.ts')));
    parentPort.postMessage({ id, files, imports: out.imports, exports: out.exports.map(([name]) => name) });
  } catch (err) {
    parentPort.postMessage({ id, error: err instanceof Error ? err.message : String(err) });
  }
});
