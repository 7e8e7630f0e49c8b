/**
 * The kernel TPM character device (`device[:/dev/tpmrm0]`): one write() of the command, one read() of the
 * response. /dev/tpmrm0 is the in-kernel resource manager (transient objects and sessions are virtualised
 * per open file), /dev/tpm0 the raw device (exclusive). An open that fails says why and how to fix it.
 */
import { promises as fs, constants as fsc } from 'node:fs';
import { DEFAULT_COMMAND_TIMEOUT_MS, MAX_RESPONSE_BYTES, TpmTransportError, checkFraming, withTimeout, type TpmTransport } from './base.js';

/** The udev rule that gives the tss group the resource-manager device (named in the permission hint). */
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
