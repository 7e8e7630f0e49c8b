/**
 * Loading a PKCS#11 library, finding the token and logging in: the places where a misconfiguration shows,
 * so each failure is a `StartupError` (exit 2) that names the library or token but never the PIN.
 *
 * One `PKCS11` instance per library path per process, reference-counted: PKCS#11 allows one C_Initialize
 * per process (CKR_CRYPTOKI_ALREADY_INITIALIZED otherwise), and login state is shared by all sessions of
 * the process on a token (PKCS#11 v2.40 §5.6).
 */
import { existsSync, readFileSync } from 'node:fs';
import pkcs11js from 'pkcs11js';
import type * as P from 'pkcs11js';
import type { Pkcs11Options } from '../support/options.js';
import { StartupError } from '../support/errors.js';
import { KeyError } from '../keys/types.js';

export type Handle = Buffer;

interface LoadedLibrary {
  readonly module: P.PKCS11;
  refs: number;
}

const libraries = new Map<string, LoadedLibrary>();

/** Load and initialise `library` (or take another reference to it). */
export function acquireLibrary(library: string): P.PKCS11 {
  const loaded = libraries.get(library);
  if (loaded) {
    loaded.refs++;
    return loaded.module;
  }
  if (!existsSync(library)) {
    throw new StartupError(`PKCS#11 library not found: ${library}`, 2, 'check [keys.pkcs11] library (SoftHSM2: /usr/lib/softhsm/libsofthsm2.so)');
  }
  const module = new pkcs11js.PKCS11();
  try {
    module.load(library);
  } catch (err) {
    throw new StartupError(`cannot load PKCS#11 library ${library}: ${(err as Error).message}`);
  }
  try {
    // CKF_OS_LOCKING_OK: we call from libuv worker threads (the *Async calls); without it a library may
    // assume single-threaded use (SoftHSM2 then disables its mutexes).
    module.C_Initialize({ flags: pkcs11js.CKF_OS_LOCKING_OK });
  } catch (err) {
    if (codeOf(err) !== pkcs11js.CKR_CRYPTOKI_ALREADY_INITIALIZED) {
      module.close();
      throw new StartupError(`PKCS#11 library ${library} failed to initialise: ${(err as Error).message}`);
    }
  }
  libraries.set(library, { module, refs: 1 });
  return module;
}

/** Drop a reference; the last one finalises and unloads the library. */
export function releaseLibrary(library: string): void {
  const loaded = libraries.get(library);
  if (!loaded) return;
  if (--loaded.refs > 0) return;
  libraries.delete(library);
  try {
    loaded.module.C_Finalize();
  } finally {
    loaded.module.close();
  }
}

/** The token's slot, by label, serial or slot id (all given selectors must match). */
export function findTokenSlot(module: P.PKCS11, cfg: Pkcs11Options): { slot: Handle; label: string; serial: string } {
  const seen: string[] = [];
  for (const slot of module.C_GetSlotList(true)) {
    const info = module.C_GetTokenInfo(slot);
    const label = info.label.trimEnd();
    const serial = info.serialNumber.trimEnd();
    seen.push(`"${label}" (serial ${serial})`);
    if (cfg.token_label !== undefined && cfg.token_label !== label) continue;
    if (cfg.token_serial !== undefined && cfg.token_serial !== serial) continue;
    if (cfg.slot !== undefined && slotId(slot) !== cfg.slot) continue;
    return { slot, label, serial };
  }
  const wanted = [
    cfg.token_label !== undefined ? `label "${cfg.token_label}"` : '',
    cfg.token_serial !== undefined ? `serial ${cfg.token_serial}` : '',
    cfg.slot !== undefined ? `slot ${cfg.slot}` : '',
  ].filter(Boolean).join(', ');
  throw new StartupError(
    `PKCS#11 token with ${wanted} not found in ${cfg.library}; tokens present: ${seen.length > 0 ? seen.join(', ') : 'none'}`,
  );
}

export function slotId(slot: Handle): number {
  return Number(slot.length >= 8 ? slot.readBigUInt64LE(0) : BigInt(slot.readUIntLE(0, slot.length)));
}

/** The user PIN from the config or `pin_file` (trailing newline dropped). Never logged. */
export function readPin(cfg: Pkcs11Options): string {
  if (cfg.pin !== undefined) return cfg.pin;
  if (cfg.pin_file === undefined) throw new StartupError('[keys.pkcs11] needs pin or pin_file');
  try {
    return readFileSync(cfg.pin_file, 'utf8').replace(/\r?\n$/, '');
  } catch (err) {
    throw new StartupError(`cannot read [keys.pkcs11] pin_file ${cfg.pin_file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
}

/** C_Login as CKU_USER; a wrong or locked PIN is a StartupError that does not contain the PIN. */
export function login(module: P.PKCS11, session: Handle, pin: string, tokenLabel: string): void {
  try {
    module.C_Login(session, pkcs11js.CKU_USER, pin);
  } catch (err) {
    const code = codeOf(err);
    if (code === pkcs11js.CKR_USER_ALREADY_LOGGED_IN) return;
    if (code === pkcs11js.CKR_PIN_INCORRECT) throw new StartupError(`PKCS#11 login to token "${tokenLabel}" failed: wrong PIN (CKR_PIN_INCORRECT)`);
    if (code === pkcs11js.CKR_PIN_LOCKED) throw new StartupError(`PKCS#11 login to token "${tokenLabel}" failed: the PIN is locked (CKR_PIN_LOCKED)`);
    throw new StartupError(`PKCS#11 login to token "${tokenLabel}" failed: ${ckrName(err)}`);
  }
}

/** The CKR_* code of a pkcs11js error (also one a worker reported, wrapped as `cause`), if it is one. */
export function codeOf(err: unknown): number | undefined {
  if (err instanceof pkcs11js.Pkcs11Error) return err.code;
  const cause = (err as { cause?: unknown } | undefined)?.cause;
  return cause instanceof pkcs11js.Pkcs11Error ? cause.code : undefined;
}

function ckrName(err: unknown): string {
  return err instanceof Error ? err.message.split(':')[0]!.trim() : 'unknown error';
}

const UNAVAILABLE = new Set([
  pkcs11js.CKR_TOKEN_NOT_PRESENT, pkcs11js.CKR_DEVICE_REMOVED, pkcs11js.CKR_DEVICE_ERROR, pkcs11js.CKR_SESSION_HANDLE_INVALID,
  pkcs11js.CKR_SESSION_CLOSED, pkcs11js.CKR_USER_NOT_LOGGED_IN, pkcs11js.CKR_CRYPTOKI_NOT_INITIALIZED, pkcs11js.CKR_TOKEN_WRITE_PROTECTED,
  pkcs11js.CKR_DEVICE_MEMORY,
]);

/** Map a runtime PKCS#11 failure onto the service's error tags (the CKR name goes to `cause` for the log). */
export function toKeyError(err: unknown, what: string): KeyError {
  if (err instanceof KeyError) return err;
  const code = codeOf(err);
  if (code === pkcs11js.CKR_MECHANISM_INVALID || code === pkcs11js.CKR_MECHANISM_PARAM_INVALID || code === pkcs11js.CKR_KEY_TYPE_INCONSISTENT) {
    return new KeyError('unsupported', `the token does not support ${what} (${ckrName(err)})`, { cause: err });
  }
  if (code !== undefined && UNAVAILABLE.has(code)) return new KeyError('backend-unavailable', `HSM unavailable during ${what}`, { cause: err });
  return new KeyError('internal', 'internal error', { cause: err });
}
