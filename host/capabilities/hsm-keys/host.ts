/**
 * The host functions of `edgeward:hsm/keys` for one instance: decode (check types and sizes before
 * copying anything) → call the key service as that module → encode. The caller is fixed at prepare time
 * from the registration, so no argument can name another module.
 */
import {
  MAX_AAD_BYTES, MAX_DERIVATION_DATA_BYTES, MAX_ENCRYPT_INPUT_BYTES, MAX_HANDLE_LENGTH, MAX_IMPORT_KEY_BYTES, MAX_KEY_ID_LENGTH,
  MAX_RANDOM_BYTES, MAX_SIGN_INPUT_BYTES, MAX_SIGNATURE_BYTES,
  KeyError, type Caller, type KeyService, type KeyType,
} from '../../../hsm/keys/index.js';
import type { Imports } from './generated/imports.js';
import { invalidArgument, KeyErrorPayload, limitExceeded, toPayloadError } from './errors.js';
import { encryptAlgorithm, keyPairType, secretKeyType, signAlgorithm, witKeyType } from './wit.js';

/** The jco-shaped import object for `edgeward:hsm/keys` (kebab-case → camelCase), generated from the WIT. */
export type HsmKeysImports = Imports;

/** What the calls of one instance report to the runtime (InstanceContext.denied, keyCreated). */
export interface KeyEventReports {
  denied?(message: string): void;
  keyCreated?(message: string): void;
}

export function hostFunctions(keys: KeyService, caller: Caller, reports: KeyEventReports = {}): HsmKeysImports {
  /** Create-if-absent, reporting a key that was absent before (the service loads an existing one instead). */
  const create = async (id: string, type: KeyType, make: () => Promise<string>): Promise<string> => {
    if (!reports.keyCreated) return make();
    const existed = await keys.loadKey(caller, { id }).then(() => true, (e: unknown) => !(e instanceof KeyError && e.tag === 'not-found'));
    const handle = await make();
    if (!existed) reports.keyCreated(`edgeward:hsm/keys: key ${JSON.stringify(id)} (${type}) created`);
    return handle;
  };
  return reportDenials(reports, {
    createKeyPair: (id, kind) => call(() => {
      const [i, t] = [str(id, MAX_KEY_ID_LENGTH, 'id'), keyPairType(kind)];
      return create(i, t, () => keys.createKeyPair(caller, { id: i }, t));
    }),
    createSecretKey: (id, kind) => call(() => {
      const [i, t] = [str(id, MAX_KEY_ID_LENGTH, 'id'), secretKeyType(kind)];
      return create(i, t, () => keys.createSecretKey(caller, { id: i }, t));
    }),
    loadKey: (id) => call(() => keys.loadKey(caller, { id: str(id, MAX_KEY_ID_LENGTH, 'id') })),
    importSecretKey: (id, kind, key) =>
      call(async () => {
        const [i, t] = [str(id, MAX_KEY_ID_LENGTH, 'id'), secretKeyType(kind)];
        const handle = await keys.importSecretKey(caller, { id: i }, t, bytes(key, MAX_IMPORT_KEY_BYTES, 'key'));
        reports.keyCreated?.(`edgeward:hsm/keys: key ${JSON.stringify(i)} (${t}) imported`);
        return handle;
      }),
    deriveKey: (base, data) => call(() => keys.deriveKey(caller, handle(base), bytes(data, MAX_DERIVATION_DATA_BYTES, 'derivation data'))),
    getPublicKey: (key) => call(async () => u8(await keys.getPublicKey(caller, handle(key)))),
    sign: (key, algorithm, message) =>
      call(async () => u8(await keys.sign(caller, handle(key), signAlgorithm(algorithm), bytes(message, MAX_SIGN_INPUT_BYTES, 'sign input')))),
    verify: (key, algorithm, message, signature) =>
      call(() => keys.verify(caller, handle(key), signAlgorithm(algorithm), bytes(message, MAX_SIGN_INPUT_BYTES, 'verify input'), bytes(signature, MAX_SIGNATURE_BYTES, 'signature'))),
    encrypt: (key, algorithm, plaintext, aad) =>
      call(async () => {
        const r = await keys.encrypt(caller, handle(key), encryptAlgorithm(algorithm), bytes(plaintext, MAX_ENCRYPT_INPUT_BYTES, 'plaintext'), bytes(aad, MAX_AAD_BYTES, 'aad'));
        return { iv: u8(r.iv), data: u8(r.ciphertext) };
      }),
    decrypt: (key, algorithm, iv, data, aad) =>
      call(async () =>
        u8(await keys.decrypt(caller, handle(key), encryptAlgorithm(algorithm), bytes(iv, 16, 'iv'), bytes(data, MAX_ENCRYPT_INPUT_BYTES + 16, 'ciphertext'), bytes(aad, MAX_AAD_BYTES, 'aad'))),
      ),
    randomBytes: (len) =>
      call(async () => {
        if (typeof len !== 'number' || !Number.isInteger(len) || len < 0) throw invalidArgument('len must be a u32');
        if (len > MAX_RANDOM_BYTES) throw limitExceeded('random length', MAX_RANDOM_BYTES);
        return u8(await keys.randomBytes(caller, len));
      }),
    deleteKey: (key) => call(() => keys.deleteKey(caller, handle(key))),
    listKeys: () => call(async () => (await keys.listKeys(caller)).map((k) => ({ id: k.id, kind: witKeyType(k.type) }))),
  });
}

/**
 * Every function as it is, except that an `access-denied` answer (a handle of another namespace, a key the
 * module is not granted) is also reported as a denied call, naming the function only (never the handle).
 */
function reportDenials(reports: KeyEventReports, fns: HsmKeysImports): HsmKeysImports {
  const denied = reports.denied;
  if (!denied) return fns;
  const wrapped = Object.entries(fns).map(([name, fn]) => [name, async (...args: unknown[]) => {
    try {
      return await (fn as (...a: unknown[]) => Promise<unknown>)(...args);
    } catch (err) {
      if (err instanceof KeyErrorPayload && err.payload.tag === 'access-denied') denied(`edgeward:hsm/keys ${kebab(name)}: access denied (a key outside this module's namespace)`);
      throw err;
    }
  }]);
  return Object.fromEntries(wrapped) as HsmKeysImports;
}

/** `createKeyPair` → `create-key-pair` (the WIT name). */
const kebab = (name: string) => name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

/** Run one call; every failure leaves as a jco payload error. */
async function call<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw toPayloadError(err);
  }
}

/** Size is checked on the view the guest handed over, before any copy is made (reliability G4). */
function bytes(v: unknown, max: number, what: string): Uint8Array {
  if (!(v instanceof Uint8Array)) throw invalidArgument(`${what} must be list<u8>`);
  if (v.byteLength > max) throw limitExceeded(what, max);
  return v;
}

function str(v: unknown, max: number, what: string): string {
  if (typeof v !== 'string') throw invalidArgument(`${what} must be a string`);
  if (v.length > max) throw limitExceeded(what, max);
  return v;
}

function handle(v: unknown): string {
  // Anything that is not a plausible handle is simply not one of ours.
  if (typeof v !== 'string' || v.length > MAX_HANDLE_LENGTH) throw new KeyErrorPayload({ tag: 'invalid-handle' });
  return v;
}

/** A plain Uint8Array (not a Buffer view of Node's pool) for the guest. */
function u8(b: Buffer): Uint8Array {
  return new Uint8Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}
