/**
 * Renewable security (anti-rollback). A module update may carry a **security version**: a non-negative
 * integer (0..MAX_SECURITY_VERSION) in a custom section named `edgeward.security-version` at the top
 * level of the component, whose payload is the version in ASCII decimal (e.g. `3`). The section is part
 * of the component bytes, so the module's detached signature (signature.ts) covers it: the version is as
 * authentic as the code. No manifest or API field can claim a version (one that tries is refused), and
 * an unsigned component's section is ignored (nothing vouches for it; it is reported, never counted).
 *
 * For each (signer, module) pair a floor holds the highest version that ran. A start (and a deploy) of a
 * lower version is refused with a `rollback` event and a RollbackError (code `denied`: terminal, never
 * retried); a start of a higher version raises the floor before the instance runs. Where the floor
 * lives (`VersionFloors`): a TPM NV monotonic counter (rollback-tpm.ts; survives daemon restarts and
 * state-directory restores) or, without a TPM, a state file (survives restarts, NOT a state restore).
 */
import { createHash } from 'node:crypto';
import path from 'node:path';
import { readStateJson, SerialStateFile } from '../state/dir.js';
import { RuntimeError } from './errors.js';
import { UNSIGNED } from './signature.js';

export const SECURITY_VERSION_SECTION = 'edgeward.security-version';
/**
 * Highest security version. A TPM counter advances by one per NV_Increment, so a jump from a to b costs
 * b − a TPM NV writes: versions count security-relevant releases (like SGX's ISVSVN), not builds.
 */
export const MAX_SECURITY_VERSION = 1023;

/** Where the floor of each (signer, module) pair is kept. */
export interface VersionFloors {
  /** "tpm-nv" or "state-file", for status and messages. */
  readonly kind: string;
  /** The highest version that ran for `pairKey` (0 when none did). */
  floor(pairKey: Buffer): Promise<number>;
  /** Raise the floor to `version` (> the current floor); resolves to the new floor. */
  advance(pairKey: Buffer, version: number): Promise<number>;
}

export class RollbackError extends RuntimeError {
  constructor(readonly version: number, readonly floor: number, message: string) {
    super('denied', message);
    this.name = 'RollbackError';
  }
}

/** The identity of a (signer, module) pair: sha256 over a domain tag, the signer id and the module name. */
export function pairKey(signer: string, module: string): Buffer {
  return createHash('sha256').update(`edgeward-rollback\0${signer}\0${module}`).digest();
}

function leb(bytes: Uint8Array, at: number): [value: number, next: number] {
  let value = 0;
  for (let shift = 0, i = at; i < bytes.length && shift < 35; shift += 7, i++) {
    value += (bytes[i]! & 0x7f) * 2 ** shift;
    if ((bytes[i]! & 0x80) === 0) return [value, i + 1];
  }
  throw new RuntimeError('invalid', 'component: truncated LEB128 in a top-level section header');
}

function encodeLeb(n: number): number[] {
  const out: number[] = [];
  do {
    const b = n & 0x7f;
    n = Math.floor(n / 128);
    out.push(n > 0 ? b | 0x80 : b);
  } while (n > 0);
  return out;
}

/**
 * The security version a component's bytes carry (its top-level `edgeward.security-version` section),
 * or undefined when it has none. A malformed or repeated section is `invalid`.
 */
export function readSecurityVersion(bytes: Uint8Array): number | undefined {
  let found: number | undefined;
  for (let at = 8; at < bytes.length;) {
    const id = bytes[at]!;
    const [size, body] = leb(bytes, at + 1);
    const end = body + size;
    if (end > bytes.length) throw new RuntimeError('invalid', 'component: a top-level section runs past the end');
    if (id === 0) {
      const [nameLen, nameAt] = leb(bytes, body);
      const name = Buffer.from(bytes.subarray(nameAt, nameAt + nameLen)).toString('utf8');
      if (name === SECURITY_VERSION_SECTION) {
        if (found !== undefined) throw new RuntimeError('invalid', `component: more than one "${SECURITY_VERSION_SECTION}" section`);
        found = parseVersion(Buffer.from(bytes.subarray(nameAt + nameLen, end)).toString('latin1'));
      }
    }
    at = end;
  }
  return found;
}

function parseVersion(text: string): number {
  if (!/^(0|[1-9][0-9]{0,5})$/.test(text) || Number(text) > MAX_SECURITY_VERSION) {
    throw new RuntimeError('invalid', `component: "${SECURITY_VERSION_SECTION}" must be a decimal integer 0..${MAX_SECURITY_VERSION} (got ${JSON.stringify(text.slice(0, 16))})`);
  }
  return Number(text);
}

/** `bytes` with a `edgeward.security-version` section appended (sign the result, not the input). */
export function withSecurityVersion(bytes: Uint8Array, version: number): Uint8Array {
  parseVersion(String(version));
  const name = Buffer.from(SECURITY_VERSION_SECTION);
  const body = Buffer.concat([Buffer.from(encodeLeb(name.length)), name, Buffer.from(String(version))]);
  return Buffer.concat([bytes, Buffer.from([0, ...encodeLeb(body.length)]), body]);
}

/** What the guard decided for one component. */
export interface VersionCheck {
  /** The version the bytes carry, if any (not read for an unsigned component). */
  version?: number;
  /** Whether it counted (signed by a verified signer); an unsigned component's claim never does. */
  enforced: boolean;
  floor?: number;
}

export interface RollbackEvents {
  record(module: string, kind: 'rollback', message: string): void;
}

/** Checks (and at a start, raises) the floor of each signed (signer, module) pair. */
export class RollbackGuard {
  constructor(readonly floors: VersionFloors, private readonly events: RollbackEvents) {}

  /**
   * Refuse `bytes` (verified as signed by `signer`) if their version is below the pair's floor; with
   * `advance` (a start, before the instance runs) raise the floor to it. The caller holds the module's lock.
   */
  async check(module: string, signer: string, bytes: Uint8Array, advance: boolean): Promise<VersionCheck> {
    if (signer === UNSIGNED) return { enforced: false }; // nothing vouches for an unsigned claim: not even read
    const version = readSecurityVersion(bytes);
    const key = pairKey(signer, module);
    const floor = await this.floors.floor(key);
    const v = version ?? 0;
    if (v < floor) {
      const msg = `module "${module}": security version ${v}${version === undefined ? ' (no version section)' : ''} is below ${floor}, the highest that ran for this signer (${this.floors.kind}); a rollback is refused — deploy version ${floor} or later`;
      this.events.record(module, 'rollback', msg);
      throw new RollbackError(v, floor, msg);
    }
    if (advance && v > floor) return { version: v, enforced: true, floor: await this.floors.advance(key, v) };
    return { ...(version !== undefined ? { version } : {}), enforced: true, floor };
  }
}

/**
 * Floors in a state file (`runtime/security-versions.json`, written atomically): for a device without a
 * TPM. It survives daemon restarts, but restoring an older copy of the state directory restores older
 * floors too, so it does not stop a rollback by someone who can write the state directory.
 */
export class FileVersionFloors implements VersionFloors {
  readonly kind = 'state-file';
  private readonly store: SerialStateFile;

  private constructor(file: string, private readonly floors: Record<string, number>) {
    this.store = new SerialStateFile(file);
  }

  static async open(stateDir: string): Promise<FileVersionFloors> {
    const file = path.join(stateDir, 'runtime', 'security-versions.json');
    const saved = await readStateJson<{ version: 1; floors: Record<string, number> }>(file);
    return new FileVersionFloors(file, { ...saved?.floors });
  }

  async floor(key: Buffer): Promise<number> {
    return this.floors[key.toString('hex')] ?? 0;
  }

  async advance(key: Buffer, version: number): Promise<number> {
    this.floors[key.toString('hex')] = version;
    await this.store.write({ version: 1, floors: this.floors });
    return version;
  }
}
