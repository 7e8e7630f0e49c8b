/**
 * How command bytes reach a TPM. Three transports, chosen by a TCTI string as tpm2-tools spells it
 * (TPM2TOOLS_TCTI / `[tpm] tcti`):
 *
 * - `device[:/dev/tpmrm0]` — the kernel character device (transport/device.ts).
 * - `swtpm[:host=H,port=P]` — swtpm's TCP server port, raw command and response bytes (transport/tcp.ts).
 * - `mssim[:host=H,port=P]` — the Microsoft/IBM simulator protocol over TCP (transport/tcp.ts).
 *
 * Every transport is bounded in time; a simulator that does not answer is a `TpmTransportError`, not a hang.
 */
import { DEFAULT_COMMAND_TIMEOUT_MS, TpmTransportError, type TpmTransport } from './transport/base.js';
import { DeviceTransport } from './transport/device.js';
import { TcpTransport } from './transport/tcp.js';

export { DEFAULT_COMMAND_TIMEOUT_MS, MAX_RESPONSE_BYTES, TpmTransportError, type TpmTransport } from './transport/base.js';
export { DeviceTransport, UDEV_RULE, deviceOpenError } from './transport/device.js';
export { TcpTransport } from './transport/tcp.js';

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
