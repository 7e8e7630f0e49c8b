// wasi:cli/stdio for one instance, inside the sandbox worker: stdout and stderr go to the module's log
// (line-buffered, capped), stdin is empty, there is no terminal, and the filesystem it drags in is
// linked EMPTY (no preopened directories; a descriptor cannot be obtained). This is what componentize-js
// guests built with the `stdio` feature import. Nothing here touches the host's process streams or
// filesystem (preview2-shim's versions do). The wasi:io classes are the shared ones (io/worker.mjs).
import { MAX_LOG_LINE_BYTES } from '../logging/worker.mjs';
import { InputStream, OutputStream, ioImports } from '../io/worker.mjs';
/** @import { Sink } from '../io/worker.mjs' */
/** @import { ImportObject, WorkerContext } from '../../runtime/sandbox/worker-api.js' */

/**
 * A sink for the shared output stream (io/worker.mjs) that cuts what the guest writes into log lines.
 * The log is line-oriented: a flush does not cut a line (StarlingMonkey flushes the text and its newline
 * separately); an unterminated line is emitted once it reaches the line cap.
 * @param {(line: string) => void} emit
 * @returns {Sink}
 */
function lineSink(emit) {
  let pending = '';
  const decoder = new TextDecoder();
  return {
    write(contents) {
      pending += decoder.decode(contents, { stream: true });
      let nl;
      while ((nl = pending.indexOf('\n')) >= 0) {
        emit(pending.slice(0, nl));
        pending = pending.slice(nl + 1);
      }
      if (pending.length > MAX_LOG_LINE_BYTES) {
        emit(pending);
        pending = '';
      }
      return undefined;
    },
  };
}

class Descriptor {}
class DirectoryEntryStream {}
class TerminalInput {}
class TerminalOutput {}

/** @param {Pick<WorkerContext, 'log'>} ctx @returns {ImportObject} */
export function imports(ctx) {
  const stdout = new OutputStream(lineSink((line) => ctx.log('info', line)));
  const stderr = new OutputStream(lineSink((line) => ctx.log('error', line)));
  const stdin = new InputStream();
  return {
    ...ioImports(),
    'wasi:cli/stdout': { getStdout: () => stdout },
    'wasi:cli/stderr': { getStderr: () => stderr },
    'wasi:cli/stdin': { getStdin: () => stdin },
    'wasi:cli/terminal-input': { TerminalInput },
    'wasi:cli/terminal-output': { TerminalOutput },
    'wasi:cli/terminal-stdin': { getTerminalStdin: () => undefined },
    'wasi:cli/terminal-stdout': { getTerminalStdout: () => undefined },
    'wasi:cli/terminal-stderr': { getTerminalStderr: () => undefined },
    'wasi:filesystem/preopens': { getDirectories: () => [] },
    'wasi:filesystem/types': { Descriptor, DirectoryEntryStream, filesystemErrorCode: () => undefined },
  };
}
