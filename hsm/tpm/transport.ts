/**
 * How command bytes reach a TPM. Three transports, chosen by a TCTI string as tpm2-tools spells it
 * (TPM2TOOLS_TCTI / `[tpm] tcti`):
 *
 * - `device[:/dev/tpmrm0]` — the kernel character device: one write() of the command, one read() of the
 *   response. /dev/tpmrm0 is the in-kernel resource manager (transient objects and sessions are virtualised
 *   per open file), /dev/tpm0 the raw device (exclusive).
 * - `swtpm[:host=H,port=P]` — swtpm's TCP server port, which takes raw command bytes and answers with a raw
 *   response (the same protocol as tpm2-tss' tcti-swtpm). swtpm serves one connection at a time, so the
 *   connection is opened lazily and dropped by `close()`.
 * - `mssim[:host=H,port=P]` — the Microsoft/IBM simulator protocol: TPM_SEND_COMMAND (8), locality, UINT32
 *   length, command; the answer is UINT32 length, response, UINT32 acknowledgement.
 *
 * Every transport is bounded in time; a simulator that does not answer is a `TpmTransportError`, not a hang.
 */
import net from 'node:net';
import { promises as fs, constants as fsc } from 'node:fs';

/** The largest response we accept (TPM responses are at most a few KiB; Part 2 MAX_RESPONSE_SIZE is 4096 on most TPMs). */
export const MAX_RESPONSE_BYTES = 16 * 1024;
/** Default bound on one command; RSA key generation on a slow TPM can take tens of seconds. */
export const DEFAULT_COMMAND_TIMEOUT_MS = 120_000;
const CONNECT_TIMEOUT_MS = 5_000;

export interface TpmTransport {
  /** Send one command, resolve with the whole response. Callers serialise; a transport sees one at a time. */
  transmit(command: Buffer): Promise<Buffer>;
  close(): Promise<void>;
  /** For messages: "device /dev/tpmrm0", "swtpm 127.0.0.1:2321". */
  readonly description: string;
  /**
   * Connections (or device opens) made so far. A new one may face a TPM that lost every transient object
   * and session (a restarted simulator, a reopened /dev/tpmrm0): `Tpm` treats a change as a possible reset.
   */
  readonly generation?: number;
  /** False when the next command will open a new connection (after a drop, a timeout or `close()`). */
  readonly connected?: boolean;
}

/** The TPM could not be reached (no device, permission, simulator down, timeout, malformed framing). */
export class TpmTransportError extends Error {
  constructor(
    message: string,
    readonly reason: 'no-device' | 'permission' | 'busy' | 'not-answering' | 'protocol',
    readonly hint?: string,
  ) {
    super(hint ? `${message}\n  hint: ${hint}` : message);
    this.name = 'TpmTransportError';
  }
}

export type Tcti =
  | { kind: 'device'; path: string }
  | { kind: 'swtpm' | 'mssim'; host: string; port: number };

/** Parse a TCTI string ("device:/dev/tpmrm0", "swtpm:host=127.0.0.1,port=2321", "mssim:port=2321"). */
export function parseTcti(tcti: string): Tcti {
  const colon = tcti.indexOf(':');
  const name = colon < 0 ? tcti : tcti.slice(0, colon);
  const conf = colon < 0 ? '' : tcti.slice(colon + 1);
  if (name === 'device') return { kind: 'device', path: conf === '' ? '/dev/tpmrm0' : conf };
  if (name === 'swtpm' || name === 'mssim') {
    let host = 'localhost';
    let port = 2321;
    for (const part of conf.split(',').filter((p) => p !== '')) {
      const [k, v] = part.split('=', 2);
      if (k === 'host' && v) host = v;
      else if (k === 'port' && v && /^\d{1,5}$/.test(v) && Number(v) > 0 && Number(v) < 65536) port = Number(v);
      else throw new TpmTransportError(`bad TCTI option "${part}" in "${tcti}" (expected host=… or port=…)`, 'protocol');
    }
    return { kind: name, host, port };
  }
  throw new TpmTransportError(`unknown TCTI "${tcti}" (expected device:PATH, swtpm:host=H,port=P or mssim:host=H,port=P)`, 'protocol');
}

/** Open the transport a TCTI string names. */
export async function openTransport(tcti: string | Tcti, timeoutMs = DEFAULT_COMMAND_TIMEOUT_MS): Promise<TpmTransport> {
  const t = typeof tcti === 'string' ? parseTcti(tcti) : tcti;
  if (t.kind === 'device') return DeviceTransport.open(t.path, timeoutMs);
  return new TcpTransport(t.host, t.port, t.kind, timeoutMs);
}

export const UDEV_RULE = 'KERNEL=="tpmrm[0-9]*", GROUP="tss", MODE="0660"';

/** The kernel TPM character device. */
export class DeviceTransport implements TpmTransport {
  private inFlight: Promise<unknown> = Promise.resolve();
  private opens = 1;

  private constructor(
    private fh: fs.FileHandle | undefined,
    readonly path: string,
    private readonly timeoutMs: number,
  ) {}

  get description(): string {
    return `device ${this.path}`;
  }

  get generation(): number {
    return this.opens;
  }

  get connected(): boolean {
    return this.fh !== undefined;
  }

  static async open(path: string, timeoutMs = DEFAULT_COMMAND_TIMEOUT_MS): Promise<DeviceTransport> {
    try {
      const fh = await fs.open(path, fsc.O_RDWR);
      return new DeviceTransport(fh, path, timeoutMs);
    } catch (err) {
      throw deviceOpenError(path, err as NodeJS.ErrnoException);
    }
  }

  /** One command in flight: the kernel answers a second write before the read with EBUSY. */
  transmit(command: Buffer): Promise<Buffer> {
    const run = this.inFlight.then(() => this.transmitOne(command));
    this.inFlight = run.catch(() => undefined);
    return run;
  }

  private async transmitOne(command: Buffer): Promise<Buffer> {
    // Reopened after a timeout closed it: a late response must not be read as the next command's.
    if (!this.fh) {
      try {
        this.fh = await fs.open(this.path, fsc.O_RDWR);
        this.opens++;
      } catch (err) {
        throw deviceOpenError(this.path, err as NodeJS.ErrnoException);
      }
    }
    const fh: fs.FileHandle = this.fh;
    const io = (async () => {
      const { bytesWritten } = await fh.write(command, 0, command.length, null);
      if (bytesWritten !== command.length) throw new TpmTransportError(`short write to ${this.path} (${bytesWritten}/${command.length})`, 'protocol');
      const buf = Buffer.alloc(MAX_RESPONSE_BYTES);
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      return checkFraming(buf.subarray(0, bytesRead), this.description);
    })();
    try {
      return await withTimeout(io, this.timeoutMs, this.description);
    } catch (err) {
      if (err instanceof TpmTransportError && err.reason === 'not-answering') {
        this.fh = undefined;
        void fh.close().catch(() => undefined);
      }
      throw err;
    }
  }

  async close(): Promise<void> {
    const fh = this.fh;
    this.fh = undefined;
    await fh?.close();
  }
}

export function deviceOpenError(path: string, err: NodeJS.ErrnoException): TpmTransportError {
  switch (err.code) {
    case 'ENOENT':
    case 'ENODEV':
    case 'ENXIO':
      return new TpmTransportError(
        `no TPM device at ${path} (${err.code})`,
        'no-device',
        'check that the device has a TPM 2.0 and that it is enabled in firmware (ls /dev/tpm*); for a simulator set [tpm] tcti = "swtpm:host=127.0.0.1,port=2321"',
      );
    case 'EACCES':
    case 'EPERM':
      return new TpmTransportError(
        `permission denied opening ${path}`,
        'permission',
        `allow the tss group to use the TPM with the udev rule '${UDEV_RULE}' (e.g. in /etc/udev/rules.d/tpmaccess.rules, then 'udevadm control --reload-rules && udevadm trigger'), and add this user to it: 'sudo usermod -aG tss $USER' (log in again)`,
      );
    case 'EBUSY':
      return new TpmTransportError(
        `${path} is in use by another process`,
        'busy',
        '/dev/tpm0 allows one user at a time (often tpm2-abrmd); use the resource manager device /dev/tpmrm0',
      );
    default:
      return new TpmTransportError(`cannot open ${path}: ${err.message}`, 'no-device');
  }
}

/** Check a response's header size field against what arrived. */
function checkFraming(rsp: Buffer, who: string): Buffer {
  if (rsp.length < 10) throw new TpmTransportError(`short TPM response from ${who} (${rsp.length} bytes)`, 'protocol');
  const size = rsp.readUInt32BE(2);
  if (size !== rsp.length) throw new TpmTransportError(`TPM response from ${who} says ${size} bytes, got ${rsp.length}`, 'protocol');
  return rsp;
}

function withTimeout<T>(p: Promise<T>, ms: number, who: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TpmTransportError(`${who} did not answer within ${ms} ms`, 'not-answering')), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

const TPM_SEND_COMMAND = 8;
/** `need` of a frame whose declared size is impossible. */
const BAD_FRAME = -2;
const TPM_SESSION_END = 20;

/** swtpm raw-TCP or mssim-framed TCP. */
export class TcpTransport implements TpmTransport {
  private socket: net.Socket | undefined;
  private pending: { need: (b: Buffer) => number; resolve: (b: Buffer) => void; reject: (e: Error) => void } | undefined;
  private buffered: Buffer = Buffer.alloc(0);
  private inFlight: Promise<unknown> = Promise.resolve();
  private connections = 0;

  constructor(
    readonly host: string,
    readonly port: number,
    readonly protocol: 'swtpm' | 'mssim',
    private readonly timeoutMs = DEFAULT_COMMAND_TIMEOUT_MS,
    /** Locality for mssim framing. */
    private readonly locality = 0,
  ) {}

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
        resolve(s);
      });
    });
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
    const need = p.need(this.buffered);
    if (need === BAD_FRAME) {
      // A size no TPM response has: fail now instead of waiting out the timeout for bytes that never come.
      const declared = this.buffered.readUInt32BE(this.protocol === 'mssim' ? 0 : 2);
      this.pending = undefined;
      this.buffered = Buffer.alloc(0);
      this.socket?.destroy();
      this.socket = undefined;
      p.reject(new TpmTransportError(`${this.description} sent a response header declaring ${declared} bytes (a TPM response is 10..${MAX_RESPONSE_BYTES})`, 'protocol'));
      return;
    }
    if (need < 0 || this.buffered.length < need) return;
    const msg = this.buffered.subarray(0, need);
    this.buffered = this.buffered.subarray(need);
    this.pending = undefined;
    p.resolve(Buffer.from(msg));
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
    const mssim = this.protocol === 'mssim';
    const frame = mssim ? Buffer.concat([header(TPM_SEND_COMMAND, this.locality, command.length), command]) : command;
    const need = (b: Buffer): number => {
      const size = mssim ? (b.length < 4 ? -1 : b.readUInt32BE(0)) : b.length < 10 ? -1 : b.readUInt32BE(2);
      if (size < 0) return -1;
      if (size < 10 || size > MAX_RESPONSE_BYTES) return BAD_FRAME;
      return mssim ? 4 + size + 4 : size;
    };
    const got = new Promise<Buffer>((resolve, reject) => {
      this.pending = { need, resolve, reject };
    });
    s.write(frame);
    let raw: Buffer;
    try {
      raw = await withTimeout(got, this.timeoutMs, this.description);
    } catch (err) {
      // A late answer would be read as the next command's response: drop the connection.
      this.pending = undefined;
      this.socket?.destroy();
      this.socket = undefined;
      throw err;
    }
    if (!mssim) return checkFraming(raw, this.description);
    const len = raw.readUInt32BE(0);
    const ack = raw.readUInt32BE(4 + len);
    if (ack !== 0) throw new TpmTransportError(`mssim ${this.host}:${this.port} acknowledged with ${ack}`, 'protocol');
    return checkFraming(raw.subarray(4, 4 + len), this.description);
  }

  async close(): Promise<void> {
    const s = this.socket;
    this.socket = undefined;
    if (!s) return;
    if (this.protocol === 'mssim') s.write(u32(TPM_SESSION_END));
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
