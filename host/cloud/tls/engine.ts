/**
 * A TLS secure context whose private key stays in a PKCS#11 token: OpenSSL's `pkcs11` engine (libp11,
 * Debian `libengine-pkcs11-openssl`) loaded into Node's own, statically linked OpenSSL 3.0 through the
 * `privateKeyEngine`/`privateKeyIdentifier` options of `tls.createSecureContext`. OpenSSL holds an
 * EVP_PKEY whose signing calls C_Sign on the token; the key bytes never enter the process.
 *
 * How it is wired (each point measured on Node 20.20 / OpenSSL 3.0.19, see the module README text):
 * - Node's OpenSSL looks for engines in its build-time directory, not Debian's, so `privateKeyEngine:
 *   'pkcs11'` fails with "DSO support routines::could not load the shared library". We set
 *   `OPENSSL_ENGINES` to the engine's directory (OpenSSL reads it at each ENGINE_by_id): the engine is then
 *   added to OpenSSL's engine list once and every context shares one libp11 state.
 * - libp11 finds its PKCS#11 module in `PKCS11_MODULE_PATH`: the key service's library. The key service
 *   has already called C_Initialize and C_Login on that library in this process; PKCS#11 login state is
 *   per process, so libp11 uses the token without any PIN (none travels in the key URI).
 * - libp11 calls C_Finalize when the engine's last functional reference goes — which happens when a key
 *   load fails while no engine-backed context is alive, and that finalises the library under the key
 *   service too (measured: its next call gets CKR_CRYPTOKI_NOT_INITIALIZED). So the key is checked through
 *   the key service before the engine sees it, and the first engine-backed context is kept for the life of
 *   the process as an anchor that holds the engine initialised (a collected successful context did not
 *   finalise in our measurement; the anchor makes that independent of the garbage collector).
 * - When a key is not found, libp11 tries to log in and asks OpenSSL's UI for a PIN: on /dev/tty if the
 *   process has a terminal (it blocks there), else stdin. The key-service check above keeps the engine
 *   from ever being given a key it will not find.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import { TlsIdentityError } from './errors.js';

/** Where Debian and derivatives install libp11's engine. */
export const PKCS11_ENGINE_CANDIDATES = [
  '/usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so',
  '/usr/lib/aarch64-linux-gnu/engines-3/pkcs11.so',
  '/usr/lib/arm-linux-gnueabihf/engines-3/pkcs11.so',
  '/usr/lib64/engines-3/pkcs11.so',
  '/usr/lib/engines-3/pkcs11.so',
];

/** The first engine-backed context: never released, so libp11 never finalises the shared library. */
let anchor: tls.SecureContext | undefined;

export function findPkcs11Engine(explicit?: string): string {
  const found = [explicit, ...PKCS11_ENGINE_CANDIDATES].find((p): p is string => p !== undefined && existsSync(p));
  if (!found) {
    throw new TlsIdentityError('engine-missing', `OpenSSL's PKCS#11 engine is not installed (looked in ${explicit ?? PKCS11_ENGINE_CANDIDATES.join(', ')}): apt-get install libengine-pkcs11-openssl`);
  }
  return found;
}

/** Point libp11 at the key service's PKCS#11 library; a different one already set is refused. */
function pointAtModule(library: string): void {
  const current = process.env.PKCS11_MODULE_PATH;
  if (current !== undefined && current !== '' && path.resolve(current) !== path.resolve(library)) {
    throw new TlsIdentityError('engine-failed', `PKCS11_MODULE_PATH is set to ${current} but the key service uses ${library}: unset PKCS11_MODULE_PATH (the engine must use the key service's library)`);
  }
  process.env.PKCS11_MODULE_PATH = library;
}

/** The id to give Node: `pkcs11` found through OPENSSL_ENGINES, or the engine's path if that is set elsewhere. */
function engineId(engine: string): string {
  const dir = path.dirname(engine);
  const current = process.env.OPENSSL_ENGINES;
  if (current === undefined || current === '') process.env.OPENSSL_ENGINES = dir;
  else if (path.resolve(current) !== dir) return engine;
  return path.basename(engine, '.so');
}

export interface EngineContextOptions {
  readonly certPem: Buffer;
  /** RFC 7512 URI without a PIN; already resolved through the key service. */
  readonly keyUri: string;
  /** The key service's PKCS#11 library. */
  readonly library: string;
  readonly ca?: string | Buffer | Array<string | Buffer>;
  readonly enginePath?: string;
}

/** A secure context with the certificate and the token's key, signed through the engine. */
export function pkcs11SecureContext(o: EngineContextOptions): tls.SecureContext {
  const engine = findPkcs11Engine(o.enginePath);
  pointAtModule(o.library);
  const id = engineId(engine);
  let ctx: tls.SecureContext;
  try {
    ctx = tls.createSecureContext({ cert: o.certPem, ...(o.ca === undefined ? {} : { ca: o.ca }), privateKeyEngine: id, privateKeyIdentifier: o.keyUri });
  } catch (err) {
    throw new TlsIdentityError('engine-failed', `OpenSSL's pkcs11 engine (${engine}) could not use ${o.keyUri}: ${(err as Error).message}`, { cause: err });
  }
  anchor ??= ctx;
  return ctx;
}
