/**
 * `[keys] backend = "tpm"`: the key service's `KeyStore` over `TpmKeyBackend`. Keys live under the SRK
 * (0x81000001, created and persisted if absent, as `ensureIdentity` does) as wrapped blobs in
 * `<keys state dir>/tpm/`, loaded on demand. The atomic blob write is the commit point of a creation: the
 * TPM keeps nothing of a key until its blob is loaded, so a crash before the rename leaves no key at all.
 *
 * What this TPM profile cannot do is `unsupported` (a typed KeyError), never a vague failure:
 * ec-p384 / ecdsa-sha384, rsa-3072, aes-256-gcm (TPM2_EncryptDecrypt has no GCM mode in the TPM 2.0
 * library spec, and swtpm/libtpms offers none), and key URIs.
 */
import { StartupError } from '../support/errors.js';
import {
  KeyError, type EncryptAlgorithm, type KeyStore, type KeyType, type SecretKeyType, type SignAlgorithm, type StoredKey,
} from '../keys/types.js';
import { TpmKeyBackend, TpmKeyError, type TpmKeyType } from './backend.js';
import { HT } from './constants.js';
import { HierarchyAuthError, type HierarchyAuths } from './identity.js';
import { TpmError } from './rc.js';
import { Tpm, TpmResetError } from './tpm.js';
import { TpmTransportError } from './transport.js';
import { openSharedTpm } from './shared.js';

/** Key types this backend creates; the rest of `KEY_TYPES` is `unsupported`. */
export const TPM_KEY_TYPES: readonly KeyType[] = ['ec-p256', 'rsa-2048', 'hmac-sha256'] satisfies readonly TpmKeyType[];

export interface TpmKeyStoreOptions {
  /** TCTI string (`device:/dev/tpmrm0`, `swtpm:host=…,port=…`). */
  readonly tcti: string;
  /** Directory of the wrapped key blobs. */
  readonly dir: string;
  /** `[tpm.hierarchy_authorization]`: only needed to create the SRK. */
  readonly hierarchyAuth?: HierarchyAuths;
  /** Transient handles kept loaded (default: the backend's). */
  readonly maxLoaded?: number;
}

/**
 * Open the TPM and the store. A TPM the user must fix (unreachable, permission, hierarchy auth, lockout)
 * is a `StartupError` (exit 2) carrying hsm/tpm's message and hint.
 */
export async function openTpmKeyStore(opts: TpmKeyStoreOptions): Promise<KeyStore> {
  let tpm: Tpm | undefined;
  try {
    tpm = await openSharedTpm(opts.tcti); // shared with measured launch (host/measure)
    await flushStale(tpm);
    const backend = await TpmKeyBackend.open(tpm, opts.dir, { maxLoaded: opts.maxLoaded, hierarchyAuth: opts.hierarchyAuth });
    return tpmKeyStoreOver(tpm, backend);
  } catch (err) {
    await tpm?.close().catch(() => undefined);
    throw tpmStartupError(err, opts.tcti);
  }
}

/** The store over a TPM and backend opened elsewhere (tests wrap the transport); `close()` closes both. */
export function tpmKeyStoreOver(tpm: Tpm, backend: TpmKeyBackend): KeyStore {
  return new TpmKeyStore(tpm, backend);
}

/**
 * Flush transient objects and sessions left in the TPM by an earlier daemon that was killed. Without a
 * resource manager (swtpm, /dev/tpm0) they outlive the connection and fill the TPM's three object slots
 * (TPM_RC_OBJECT_MEMORY on the next TPM2_Create); through /dev/tpmrm0 a new connection sees none of them.
 * The key store is the TPM's only user in the daemon when it opens, so nothing live is flushed.
 */
async function flushStale(tpm: Tpm): Promise<void> {
  for (const range of [HT.TRANSIENT, HT.HMAC_SESSION, HT.POLICY_SESSION]) {
    for (const handle of await tpm.getHandles((range << 24) >>> 0)) await tpm.flushContext(handle);
  }
}

/** TPM problems fixed on the device become StartupErrors (exit 2); anything else passes through. */
export function tpmStartupError(err: unknown, tcti: string): unknown {
  const user = err instanceof TpmTransportError || err instanceof HierarchyAuthError || (err instanceof TpmError && err.code === 'TPM_RC_LOCKOUT');
  if (!user) return err;
  return new StartupError(`[keys] backend = "tpm": cannot use the TPM at "${tcti}": ${(err as Error).message}`, 2);
}

const unsupported = (what: string): KeyError => new KeyError('unsupported', `the TPM backend does not support ${what}`);

/** Map hsm/tpm errors onto the key service's tags; TPM faults stay `internal` with their cause for the log. */
function keyError(err: unknown): unknown {
  if (err instanceof KeyError) return err;
  if (err instanceof TpmKeyError) {
    const tag = err.kind === 'wrong-type' ? 'invalid-argument' : err.kind;
    return new KeyError(tag, err.message, { cause: err });
  }
  if (err instanceof TpmTransportError) return new KeyError('backend-unavailable', 'the TPM is not reachable', { cause: err });
  // Reset again while the operation was retried: the caller may retry too.
  if (err instanceof TpmResetError) return new KeyError('backend-unavailable', 'the TPM was reset during the operation; retry', { cause: err });
  // Dictionary-attack lockout refuses every authorized command until it recovers: the TPM, not the key, is out.
  if (err instanceof TpmError && err.code === 'TPM_RC_LOCKOUT') return new KeyError('backend-unavailable', 'the TPM is in lockout', { cause: err });
  return err;
}

async function mapped<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw keyError(err);
  }
}

function isTpmKeyType(t: string): t is TpmKeyType {
  return (TPM_KEY_TYPES as readonly string[]).includes(t);
}

class TpmKeyStore implements KeyStore {
  readonly kind = 'tpm' as const;

  constructor(
    private readonly tpm: Tpm,
    private readonly backend: TpmKeyBackend,
  ) {}

  async describe(label: string): Promise<StoredKey | undefined> {
    const d = await mapped(() => this.backend.describe(label));
    return d && isTpmKeyType(d.type) ? { label, type: d.type } : undefined;
  }

  async generate(label: string, type: KeyType): Promise<StoredKey> {
    if (!isTpmKeyType(type)) throw unsupported(`${type} keys (it creates ${TPM_KEY_TYPES.join(', ')})`);
    await mapped(() => this.backend.createKey(label, type));
    return { label, type };
  }

  async importSecret(label: string, type: SecretKeyType, bytes: Buffer): Promise<StoredKey> {
    if (type !== 'hmac-sha256') throw unsupported(`importing ${type} keys`);
    await mapped(() => this.backend.importHmacKey(label, bytes));
    return { label, type };
  }

  async resolveUri(_uri: string): Promise<StoredKey> {
    throw unsupported('keys named by URI (create keys in the TPM through the key service)');
  }

  publicKeyDer(label: string): Promise<Buffer> {
    return mapped(() => this.backend.publicKeyDer(label));
  }

  async sign(key: StoredKey, algorithm: SignAlgorithm, message: Buffer, digest?: Buffer): Promise<Buffer> {
    switch (algorithm) {
      case 'hmac-sha256':
        return mapped(() => this.backend.hmac(key.label, message));
      case 'ecdsa-sha256':
      case 'rsa-pkcs1-sha256':
      case 'rsa-pss-sha256': {
        if (!digest) throw new KeyError('invalid-argument', 'a digest is required');
        const scheme = algorithm === 'ecdsa-sha256' ? 'ecdsa-sha256' : algorithm === 'rsa-pkcs1-sha256' ? 'rsassa-sha256' : 'rsapss-sha256';
        return mapped(() => this.backend.sign(key.label, digest, scheme));
      }
      case 'ecdsa-sha384':
        throw unsupported('ecdsa-sha384 (no P-384 keys)');
      default: {
        const never: never = algorithm;
        throw new KeyError('invalid-argument', `unknown algorithm ${String(never)}`);
      }
    }
  }

  /** Derivation data is at most MAX_DERIVATION_DATA_BYTES (1024), one TPM2B_MAX_BUFFER. */
  deriveSecret(key: StoredKey, data: Buffer): Promise<Buffer> {
    return mapped(() => this.backend.hmacSecret(key.label, data));
  }

  async encryptAesGcm(): Promise<Buffer> {
    throw unsupported('AES-256-GCM');
  }

  async decrypt(key: StoredKey, algorithm: EncryptAlgorithm, _iv: Buffer, _aad: Buffer, ciphertext: Buffer): Promise<Buffer> {
    if (algorithm === 'aes-256-gcm') throw unsupported('AES-256-GCM');
    try {
      return await this.backend.decrypt(key.label, ciphertext, undefined, algorithm === 'rsa-oaep-sha1' ? 'sha1' : 'sha256');
    } catch (err) {
      if (err instanceof TpmError && (await this.isBadCiphertext(err))) throw new KeyError('decrypt-failed', 'decryption failed', { cause: err });
      throw keyError(err);
    }
  }

  /**
   * Did TPM2_RSA_Decrypt refuse the ciphertext (not fail)? The reference code answers a bad OAEP encoding
   * with TPM_RC_VALUE (Part 3 §14.3), but libtpms built on OpenSSL answers TPM_RC_FAILURE — the code a TPM
   * in failure mode gives to almost every command. So TPM_RC_FAILURE counts as a refusal only if the TPM still
   * answers a harmless command — TPM2_GetRandom, not GetCapability: in failure mode a TPM
   * still answers GetCapability and GetTestResult (Part 1, "Failure Mode") — and a TPM really in failure
   * mode stays an `internal` error in the log.
   */
  private async isBadCiphertext(err: TpmError): Promise<boolean> {
    if (err.code === 'TPM_RC_VALUE' || err.code === 'TPM_RC_SIZE') return true;
    if (err.code !== 'TPM_RC_FAILURE') return false;
    return this.tpm.getRandom(1).then(() => true, () => false);
  }

  /** TPM2_GetRandom (the TPM's RNG, not the host's). */
  randomBytes(n: number): Promise<Buffer> {
    return n === 0 ? Promise.resolve(Buffer.alloc(0)) : mapped(() => this.tpm.getRandom(n));
  }

  delete(label: string): Promise<boolean> {
    return mapped(() => this.backend.delete(label));
  }

  async list(prefix: string): Promise<StoredKey[]> {
    const all = await mapped(() => this.backend.list(prefix));
    return all.flatMap((k) => (isTpmKeyType(k.type) ? [{ label: k.label, type: k.type }] : []));
  }

  async close(): Promise<void> {
    try {
      await this.backend.close();
    } finally {
      await this.tpm.close();
    }
  }
}
