/**
 * Test helper: a throwaway SoftHSM2 token directory. Writes a softhsm2.conf with its own `directories.tokendir`
 * and initialises tokens with `softhsm2-util --init-token --free`. The library reads SOFTHSM2_CONF at
 * C_Initialize, so `activate()` must run before the first key store opens in the process.
 *
 * If softhsm2-util or the library is missing this throws (tests fail with the message; CI installs softhsm2).
 */
import { execFile } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pkcs11js from 'pkcs11js';
import type * as P from 'pkcs11js';
import { acquireLibrary, releaseLibrary } from '../pkcs11/library.js';

const run = promisify(execFile);

export const SOFTHSM_LIBRARY_CANDIDATES = [
  '/usr/lib/softhsm/libsofthsm2.so',
  '/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so',
  '/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so',
  '/usr/local/lib/softhsm/libsofthsm2.so',
  '/opt/homebrew/lib/softhsm/libsofthsm2.so',
];

/** Each softhsm2-util call is bounded; a hung tool fails the test instead of stalling it. */
const TOOL_TIMEOUT_MS = 20_000;

export interface SoftHsmToken {
  readonly label: string;
  readonly pin: string;
  readonly soPin: string;
  readonly serial: string;
}

export interface SoftHsm {
  readonly dir: string;
  readonly conf: string;
  readonly library: string;
  /** `{ SOFTHSM2_CONF }` for child processes (pkcs11-tool). */
  readonly env: NodeJS.ProcessEnv;
  initToken(label: string, pin?: string, soPin?: string): Promise<SoftHsmToken>;
  /** Point this process at the temp token directory (set SOFTHSM2_CONF). */
  activate(): void;
  cleanup(): Promise<void>;
}

export function findSoftHsmLibrary(): string {
  const fromEnv = process.env.SOFTHSM2_LIB;
  const found = [fromEnv, ...SOFTHSM_LIBRARY_CANDIDATES].find((p): p is string => p !== undefined && existsSync(p));
  if (!found) {
    throw new Error(`SoftHSM2 library not found (looked in ${SOFTHSM_LIBRARY_CANDIDATES.join(', ')}); install softhsm2 (apt-get install softhsm2) or set SOFTHSM2_LIB`);
  }
  return found;
}

/** Create a temporary SoftHSM2 setup. */
export async function startSoftHsm(): Promise<SoftHsm> {
  const library = findSoftHsmLibrary();
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'edgeward-softhsm-'));
  const tokendir = path.join(dir, 'tokens');
  await fs.mkdir(tokendir, { mode: 0o700 });
  const conf = path.join(dir, 'softhsm2.conf');
  await fs.writeFile(conf, `directories.tokendir = ${tokendir}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n`);
  const env = { ...process.env, SOFTHSM2_CONF: conf };
  try {
    await run('softhsm2-util', ['--version'], { env, timeout: TOOL_TIMEOUT_MS });
  } catch (err) {
    await fs.rm(dir, { recursive: true, force: true });
    throw new Error(`softhsm2-util is not runnable (${(err as Error).message}); install softhsm2 (apt-get install softhsm2)`);
  }
  return {
    dir,
    conf,
    library,
    env,
    async initToken(label, pin = '1234', soPin = '5678') {
      const { stdout } = await run('softhsm2-util', ['--init-token', '--free', '--label', label, '--pin', pin, '--so-pin', soPin], { env, timeout: TOOL_TIMEOUT_MS });
      const { stdout: shown } = await run('softhsm2-util', ['--show-slots'], { env, timeout: TOOL_TIMEOUT_MS });
      const serial = serialOf(shown, label);
      if (!serial) throw new Error(`token "${label}" initialised but not listed: ${stdout}`);
      return { label, pin, soPin, serial };
    },
    activate() {
      process.env.SOFTHSM2_CONF = conf;
    },
    async cleanup() {
      await fs.rm(dir, { recursive: true, force: true });
    },
  };
}

/** The serial number of the token labelled `label` in `softhsm2-util --show-slots` output. */
function serialOf(showSlots: string, label: string): string | undefined {
  for (const block of showSlots.split(/\n(?=Slot )/)) {
    const l = /^\s*Label:\s*(.*)$/m.exec(block)?.[1]?.trim();
    if (l === label) return /^\s*Serial number:\s*(\S+)/m.exec(block)?.[1];
  }
  return undefined;
}

/** Run pkcs11-tool against the temp setup. */
export async function pkcs11Tool(hsm: SoftHsm, args: string[]): Promise<string> {
  const { stdout } = await run('pkcs11-tool', ['--module', hsm.library, ...args], { env: hsm.env, timeout: TOOL_TIMEOUT_MS });
  return stdout;
}

/**
 * Run `fn` on a raw pkcs11js session of the token labelled `tokenLabel` (logged in through the process's
 * shared login state, if any), for tests and benchmarks that check the token behind the service's back.
 */
export function withRawSession<T>(library: string, tokenLabel: string, rw: boolean, fn: (m: P.PKCS11, session: Buffer) => T): T {
  const m = acquireLibrary(library);
  try {
    const slot = m.C_GetSlotList(true).find((s) => m.C_GetTokenInfo(s).label.trimEnd() === tokenLabel);
    if (!slot) throw new Error(`token "${tokenLabel}" not present`);
    const s = m.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION | (rw ? pkcs11js.CKF_RW_SESSION : 0));
    try {
      return fn(m, s);
    } finally {
      m.C_CloseSession(s);
    }
  } finally {
    releaseLibrary(library);
  }
}
