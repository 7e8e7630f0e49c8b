/**
 * Capability `wasi:cli/stdio`: stdout and stderr to the module's log, an empty stdin, no terminal
 * (worker.mjs). The wasi:filesystem interfaces that componentize-js guests import along with it are linked
 * EMPTY (placeholders): no preopened directory, so no descriptor can ever be obtained; a granted
 * `wasi:filesystem/data` takes precedence.
 */
import type { Capability } from '../../runtime/capabilities.js';

export const stdioCapability: Capability = {
  name: 'wasi:cli/stdio',
  interfaces: [
    'wasi:cli/stdout', 'wasi:cli/stderr', 'wasi:cli/stdin', 'wasi:cli/terminal-input', 'wasi:cli/terminal-output',
    'wasi:cli/terminal-stdin', 'wasi:cli/terminal-stdout', 'wasi:cli/terminal-stderr',
    'wasi:io/error', 'wasi:io/poll', 'wasi:io/streams',
    'wasi:filesystem/preopens', 'wasi:filesystem/types',
  ],
  placeholders: ['wasi:filesystem/preopens', 'wasi:filesystem/types'],
  workerModule: 'host/capabilities/stdio/worker.mjs',
};
