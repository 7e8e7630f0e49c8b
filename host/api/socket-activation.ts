/**
 * systemd socket activation (sd_listen_fds(3)): a daemon started by its `.socket` units receives the
 * listening sockets as file descriptors 3, 4, … with `LISTEN_PID` (its own pid), `LISTEN_FDS` (how many)
 * and `LISTEN_FDNAMES` (their `FileDescriptorName=`, colon-separated). IoT Edge's `[listen]` URIs name them
 * `fd://aziot-edged.mgmt.socket`; `fd://N` names the N-th (0-based) as IoT Edge's http-common also accepts.
 */
import { StartupError } from '../errors.js';

/** The first passed descriptor (SD_LISTEN_FDS_START). */
const FIRST_FD = 3;

export interface ActivatedSocket {
  readonly fd: number;
  readonly name: string;
}

/**
 * The sockets systemd passed to this process, read once; the variables are then removed from the
 * environment so processes the daemon starts do not take them for their own (sd_listen_fds' unset_environment).
 */
let passed: readonly ActivatedSocket[] | undefined;
export function activatedSockets(env: NodeJS.ProcessEnv = process.env, pid = process.pid): readonly ActivatedSocket[] {
  if (passed) return passed;
  const count = Number(env.LISTEN_FDS ?? 0);
  const forUs = env.LISTEN_PID !== undefined && Number(env.LISTEN_PID) === pid;
  const names = (env.LISTEN_FDNAMES ?? '').split(':');
  passed = forUs && Number.isInteger(count) && count > 0 ? Array.from({ length: count }, (_, i) => ({ fd: FIRST_FD + i, name: names[i] || 'unknown' })) : [];
  for (const k of ['LISTEN_PID', 'LISTEN_FDS', 'LISTEN_FDNAMES']) delete env[k];
  return passed;
}

/** The descriptor an `fd://NAME` or `fd://N` listen URI names, or a StartupError saying how to start. */
export function activatedSocketFor(uri: string, sockets: readonly ActivatedSocket[] = activatedSockets()): ActivatedSocket {
  const ref = uri.slice('fd://'.length);
  const found = /^\d+$/.test(ref) ? sockets[Number(ref)] : sockets.find((s) => s.name === ref);
  if (found) return found;
  const got = sockets.length === 0 ? 'no socket was passed (LISTEN_FDS unset, or LISTEN_PID is another process)' : `passed: ${sockets.map((s) => s.name).join(', ')}`;
  throw new StartupError(
    `listen URI "${uri}" is systemd socket activation, but ${got}: start the daemon through its .socket units ` +
      `(FileDescriptorName=${/^\d+$/.test(ref) ? '…' : ref}), or listen on a unix socket URI such as the one in [connect]`,
  );
}
