/**
 * TPM simulators over TCP, in one of two framings:
 *
 * - `swtpm` — swtpm's TCP server port, which takes raw command bytes and answers with a raw response (the
 *   same protocol as tpm2-tss' tcti-swtpm).
 * - `mssim` — the Microsoft/IBM simulator protocol: TPM_SEND_COMMAND (8), locality, UINT32 length,
 *   command; the answer is UINT32 length, response, UINT32 acknowledgement.
 *
 * A simulator serves one connection at a time, so the connection is opened lazily and dropped by `close()`,
 * and after a timeout (a late answer would otherwise be read as the next command's).
 */
import net from 'node:net';
import { DEFAULT_COMMAND_TIMEOUT_MS, MAX_RESPONSE_BYTES, TpmTransportError, checkFraming, withTimeout, type TpmTransport } from './base.js';

const CONNECT_TIMEOUT_MS = 5_000;
const TPM_SEND_COMMAND = 8;
const TPM_SESSION_END = 20;
/** `need` of a frame whose declared size is impossible. */
const BAD_FRAME = -2;

/** How one protocol wraps a command, and where the response's size field sits in what comes back. */
interface Framing {
  wrap(command: Buffer, locality: number): Buffer;
  /** Bytes that must arrive before the size field can be read, and its offset. */
  readonly headerBytes: number;
  readonly sizeOffset: number;
  /** The whole frame's length for a response of `size` bytes. */
  frameLength(size: number): number;
  /** The TPM response inside a whole frame. */
  unwrap(frame: Buffer, who: string): Buffer;
  /** Sent before closing the connection, if anything. */
  readonly goodbye?: Buffer;
}

const SWTPM: Framing = {
  wrap: (command) => command,
  headerBytes: 10,
  sizeOffset: 2,
  frameLength: (size) => size,
  unwrap: (frame, who) => checkFraming(frame, who),
};

const MSSIM: Framing = {
  wrap: (command, locality) => Buffer.concat([header(TPM_SEND_COMMAND, locality, command.length), command]),
  headerBytes: 4,
  sizeOffset: 0,
  frameLength: (size) => 4 + size + 4,
  unwrap: (frame, who) => {
    const len = frame.readUInt32BE(0);
    const ack = frame.readUInt32BE(4 + len);
    if (ack !== 0) throw new TpmTransportError(`${who} acknowledged with ${ack}`, 'protocol');
    return checkFraming(frame.subarray(4, 4 + len), who);
  },
  goodbye: u32(TPM_SESSION_END),
};

/** Bytes still needed for a whole frame: -1 before the size field arrived, BAD_FRAME for a size no TPM response has. */
function frameNeed(framing: Framing, b: Buffer): number {
  if (b.length < framing.headerBytes) return -1;
  const size = b.readUInt32BE(framing.sizeOffset);
  if (size < 10 || size > MAX_RESPONSE_BYTES) return BAD_FRAME;
  return framing.frameLength(size);
}

/** swtpm raw-TCP or mssim-framed TCP. */
export class TcpTransport implements TpmTransport {
  private socket: net.Socket | undefined;
  private pending: { resolve: (b: Buffer) => void; reject: (e: Error) => void } | undefined;
  private buffered: Buffer = Buffer.alloc(0);
  private inFlight: Promise<unknown> = Promise.resolve();
  private connections = 0;
  private readonly framing: Framing;

  constructor(
    readonly host: string,
    readonly port: number,
    readonly protocol: 'swtpm' | 'mssim',
    private readonly timeoutMs = DEFAULT_COMMAND_TIMEOUT_MS,
    /** Locality for mssim framing. */
    private readonly locality = 0,
  ) {
    this.framing = protocol === 'mssim' ? MSSIM : SWTPM;
  }

  get description(): string {
    return `${this.protocol} ${this.host}:${this.port}`;
  }

  get generation(): number {
    return this.connections;
  }

  get connected(): boolean {
    return this.socket !== undefined;
  }

  private connect(): Promise<net.Socket> {
    if (this.socket) return Promise.resolve(this.socket);
    return new Promise((resolve, reject) => {
      const s = net.connect({ host: this.host, port: this.port });
      s.setNoDelay(true);
      const timer = setTimeout(() => {
        s.destroy();
        reject(this.notAnswering(`no connection within ${CONNECT_TIMEOUT_MS} ms`));
      }, CONNECT_TIMEOUT_MS);
      s.once('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        reject(this.notAnswering(err.code ?? err.message));
      });
      s.once('connect', () => {
        clearTimeout(timer);
        this.adopt(s);
        resolve(s);
      });
    });
  }

  /** Make a freshly connected socket the current one. */
  private adopt(s: net.Socket): void {
    s.removeAllListeners('error');
    s.on('data', (d: Buffer) => this.onData(d));
    // Events of a socket that has since been replaced must not fail the new socket's command.
    const current = (): boolean => this.socket === s;
    s.on('error', (err: NodeJS.ErrnoException) => current() && this.fail(this.notAnswering(err.code ?? err.message)));
    s.on('close', () => {
      if (!current()) return;
      this.socket = undefined;
      this.fail(this.notAnswering('connection closed by the simulator'));
    });
    this.socket = s;
    this.connections++;
  }

  private notAnswering(cause: string): TpmTransportError {
    return new TpmTransportError(
      `TPM simulator not answering at ${this.host}:${this.port} (${cause})`,
      'not-answering',
      `start it, e.g. 'swtpm socket --tpm2 --server type=tcp,port=${this.port} --ctrl type=tcp,port=${this.port + 1} --tpmstate dir=/tmp/tpm --flags not-need-init,startup-clear', or fix [tpm] tcti`,
    );
  }

  private onData(d: Buffer): void {
    this.buffered = this.buffered.length === 0 ? d : Buffer.concat([this.buffered, d]);
    const p = this.pending;
    if (!p) return;
    const need = frameNeed(this.framing, this.buffered);
    if (need === BAD_FRAME) {
      // A size no TPM response has: fail now instead of waiting out the timeout for bytes that never come.
      const declared = this.buffered.readUInt32BE(this.framing.sizeOffset);
      this.drop();
      p.reject(new TpmTransportError(`${this.description} sent a response header declaring ${declared} bytes (a TPM response is 10..${MAX_RESPONSE_BYTES})`, 'protocol'));
      return;
    }
    if (need < 0 || this.buffered.length < need) return;
    const msg = this.buffered.subarray(0, need);
    this.buffered = this.buffered.subarray(need);
    this.pending = undefined;
    p.resolve(Buffer.from(msg));
  }

  /** Forget the pending command and its bytes, and drop the connection. */
  private drop(): void {
    this.pending = undefined;
    this.buffered = Buffer.alloc(0);
    this.socket?.destroy();
    this.socket = undefined;
  }

  private fail(err: Error): void {
    const p = this.pending;
    this.pending = undefined;
    p?.reject(err);
  }

  /** One command in flight per connection, whatever the caller does. */
  transmit(command: Buffer): Promise<Buffer> {
    const run = this.inFlight.then(() => this.transmitOne(command));
    this.inFlight = run.catch(() => undefined);
    return run;
  }

  private async transmitOne(command: Buffer): Promise<Buffer> {
    const s = await this.connect();
    this.buffered = Buffer.alloc(0);
    const got = new Promise<Buffer>((resolve, reject) => {
      this.pending = { resolve, reject };
    });
    s.write(this.framing.wrap(command, this.locality));
    let frame: Buffer;
    try {
      frame = await withTimeout(got, this.timeoutMs, this.description);
    } catch (err) {
      // A late answer would be read as the next command's response: drop the connection.
      this.pending = undefined;
      this.socket?.destroy();
      this.socket = undefined;
      throw err;
    }
    return this.framing.unwrap(frame, this.description);
  }

  async close(): Promise<void> {
    const s = this.socket;
    this.socket = undefined;
    if (!s) return;
    if (this.framing.goodbye) s.write(this.framing.goodbye);
    await new Promise<void>((resolve) => {
      s.once('close', () => resolve());
      s.end();
      setTimeout(() => {
        s.destroy();
        resolve();
      }, 1000).unref();
    });
  }
}

function u32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v);
  return b;
}

function header(cmd: number, locality: number, len: number): Buffer {
  const b = Buffer.alloc(9);
  b.writeUInt32BE(cmd, 0);
  b.writeUInt8(locality, 4);
  b.writeUInt32BE(len, 5);
  return b;
}
