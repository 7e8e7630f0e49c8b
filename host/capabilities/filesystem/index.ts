/**
 * Capability `wasi:filesystem/data`: one preopened directory, the module's own data directory, seen as
 * `/data`, with a quota (DATA_QUOTA_BYTES, 16 MiB). worker.mjs resolves every path inside the sandbox worker and
 * refuses escapes and symbolic links.
 */
import type { Capability } from '../../runtime/capabilities.js';

export const filesystemDataCapability: Capability = {
  name: 'wasi:filesystem/data',
  interfaces: ['wasi:filesystem/types', 'wasi:filesystem/preopens'],
  workerModule: 'host/capabilities/filesystem/worker.mjs',
  dataDir: true,
};
