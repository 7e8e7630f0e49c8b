/**
 * Capability `wasi:filesystem/data`: one preopened directory, the module's own data directory, seen as
 * `/data`, with a quota (DATA_QUOTA_BYTES, 16 MiB). worker.mjs resolves every path inside the sandbox worker and
 * refuses escapes and symbolic links; each refusal is reported to the host (`edgeward-private:filesystem`
 * `denied`), which records it as a denied call of the module.
 */
import type { Capability } from '../../runtime/capabilities.js';

/** Must match HOST_INTERFACE in worker.mjs: handed to the worker module, never to the guest. */
export const FILESYSTEM_HOST_INTERFACE = 'edgeward-private:filesystem';
/** Longest path a denied-call event quotes. */
const MAX_SHOWN_PATH = 200;

export const filesystemDataCapability: Capability = {
  name: 'wasi:filesystem/data',
  interfaces: ['wasi:filesystem/types', 'wasi:filesystem/preopens'],
  workerModule: 'host/capabilities/filesystem/worker.mjs',
  dataDir: true,
  prepare: (instance) => ({
    [FILESYSTEM_HOST_INTERFACE]: {
      denied: (path: unknown) => {
        const shown = typeof path === 'string' ? JSON.stringify(path.slice(0, MAX_SHOWN_PATH)) : 'a path';
        instance.denied?.(`wasi:filesystem: ${shown} refused (not-permitted): it leaves /data or crosses a symbolic link`);
      },
    },
  }),
};
