// wasi:cli/stdio for one instance, inside the sandbox worker: stdout and stderr go to the module's log
// (line-buffered, capped), stdin is empty, there is no terminal, and the filesystem it drags in is
// linked EMPTY (no preopened directories; a descriptor cannot be obtained). This is what componentize-js
// guests built with the `stdio` feature import. Nothing here touches the host's process streams or
// filesystem (preview2-shim's versions do).
import { MAX_LOG_LINE_BYTES } from '../logging/worker.mjs';

/** Bytes a guest may hand over per write call (wasi:io/streams check-write). */
export const MAX_WRITE_BYTES = 4096n;

class IoError {
  constructor(message) { this.message = message; }
  toDebugString() { return this.message; }
}

class Pollable {
  ready() { return true; }
  block() {}
}

const closed = () => ({ tag: 'closed' });

class InputStream {
  read() { throw closed(); }
  blockingRead() { throw closed(); }
  skip() { throw closed(); }
  blockingSkip() { throw closed(); }
  subscribe() { return new Pollable(); }
}

class OutputStream {
  #pending = '';
  #emit;
  #decoder = new TextDecoder();
  constructor(emit) { this.#emit = emit; }
  checkWrite() { return MAX_WRITE_BYTES; }
  write(contents) {
    if (BigInt(contents.byteLength) > MAX_WRITE_BYTES) throw { tag: 'last-operation-failed', val: new IoError('write larger than check-write allowed') };
    this.#pending += this.#decoder.decode(contents, { stream: true });
    let nl;
    while ((nl = this.#pending.indexOf('\n')) >= 0) {
      this.#emit(this.#pending.slice(0, nl));
      this.#pending = this.#pending.slice(nl + 1);
    }
    if (this.#pending.length > MAX_LOG_LINE_BYTES) {
      this.#emit(this.#pending);
      this.#pending = '';
    }
  }
  blockingWriteAndFlush(contents) {
    this.write(contents);
  }
  // The log is line-oriented: a flush does not cut a line (StarlingMonkey flushes the text and its
  // newline separately); an unterminated line is emitted once it reaches the line cap.
  flush() {}
  blockingFlush() { this.flush(); }
  subscribe() { return new Pollable(); }
  writeZeroes(n) { this.write(new Uint8Array(Number(n))); }
  blockingWriteZeroesAndFlush(n) { this.blockingWriteAndFlush(new Uint8Array(Number(n))); }
}

class Descriptor {}
class DirectoryEntryStream {}
class TerminalInput {}
class TerminalOutput {}

export function imports(ctx) {
  const stdout = new OutputStream((line) => ctx.log('info', line));
  const stderr = new OutputStream((line) => ctx.log('error', line));
  const stdin = new InputStream();
  return {
    'wasi:io/error': { Error: IoError },
    'wasi:io/poll': { Pollable, poll: (list) => new Uint32Array(list.map((_, i) => i)) },
    'wasi:io/streams': { InputStream, OutputStream },
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
