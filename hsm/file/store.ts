/**
 * The development key store: one JSON file per key under `<state_dir>/keys/`, mode 0600, written atomically
 * (temp + fsync + rename + fsync dir), so a crash leaves a key fully present or absent. Private keys sit on
 * disk in the clear: this is NOT a hardware root of trust, and `openFileKeyStore` says so at every open.
 */
import {
  createCipheriv, createDecipheriv, createHmac, createPrivateKey, createPublicKey, generateKeyPair, privateDecrypt,
  randomBytes, sign as cryptoSign, constants, type KeyObject,
} from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { Logger } from '../support/log.js';
import { removeFileDurable, sweepTempFiles, writeFileAtomic } from '../support/atomic.js';
import { oaepHash } from '../keys/algorithms.js';
import {
  isKeyPairType, isSecretKeyType, KeyError, type EncryptAlgorithm, type KeyPairType, type KeyStore, type KeyType,
  type SecretKeyType, type SignAlgorithm, type StoredKey,
} from '../keys/types.js';

const SUFFIX = '.key.json';

interface KeyFile {
  readonly v: 1;
  readonly label: string;
  readonly type: KeyType;
  /** PKCS#8 PEM for key pairs. */
  readonly pkcs8?: string;
  /** base64 secret for symmetric keys. */
  readonly secret?: string;
}

interface Loaded extends StoredKey {
  readonly privateKey?: KeyObject;
  readonly secret?: Buffer;
}

export const FILE_BACKEND_WARNING =
  'keys backend "file": private keys are stored unencrypted on disk; this is NOT a hardware root of trust. Use it for development only.';

/** Open the store in `dir` (created 0700), sweeping temp files a crashed writer left behind. */
export async function openFileKeyStore(dir: string, logger: Logger): Promise<KeyStore> {
  logger.warn({ dir }, FILE_BACKEND_WARNING);
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  const swept = await sweepTempFiles(dir);
  if (swept.length > 0) logger.info({ swept }, 'removed half-written key files');
  return new FileKeyStore(dir);
}

class FileKeyStore implements KeyStore {
  readonly kind = 'file' as const;
  private readonly cache = new Map<string, Loaded>();

  constructor(private readonly dir: string) {}

  async describe(label: string): Promise<StoredKey | undefined> {
    const k = await this.load(label);
    return k && { label: k.label, type: k.type };
  }

  async generate(label: string, type: KeyType): Promise<StoredKey> {
    if (await this.load(label)) throw new KeyError('already-exists', 'key already exists');
    const file: KeyFile = isKeyPairType(type)
      ? { v: 1, label, type, pkcs8: (await generatePair(type)).export({ type: 'pkcs8', format: 'pem' }).toString() }
      : { v: 1, label, type, secret: randomBytes(32).toString('base64') };
    await writeFileAtomic(this.fileOf(label), JSON.stringify(file), 0o600);
    return { label, type };
  }

  async importSecret(label: string, type: SecretKeyType, bytes: Buffer): Promise<StoredKey> {
    if (await this.load(label)) throw new KeyError('already-exists', 'key already exists');
    const file: KeyFile = { v: 1, label, type, secret: bytes.toString('base64') };
    await writeFileAtomic(this.fileOf(label), JSON.stringify(file), 0o600);
    return { label, type };
  }

  async resolveUri(uri: string): Promise<StoredKey> {
    if (!uri.startsWith('file:///')) throw new KeyError('unsupported', 'the file backend accepts file:/// key URIs only');
    const cached = this.cache.get(uri);
    if (cached) return cached;
    let pem: string;
    try {
      pem = await fs.readFile(fileURLToPath(uri), 'utf8');
    } catch {
      throw new KeyError('not-found', 'no key file at that URI');
    }
    const privateKey = createPrivateKey(pem);
    const loaded: Loaded = { label: uri, type: pairTypeOf(privateKey), privateKey };
    this.cache.set(uri, loaded);
    return loaded;
  }

  async publicKeyDer(label: string): Promise<Buffer> {
    const k = await this.require(label);
    if (!k.privateKey) throw new KeyError('unsupported', 'not a key pair');
    return createPublicKey(k.privateKey).export({ type: 'spki', format: 'der' });
  }

  async sign(key: StoredKey, algorithm: SignAlgorithm, message: Buffer): Promise<Buffer> {
    const k = await this.require(key.label);
    if (algorithm === 'hmac-sha256') return createHmac('sha256', secretOf(k)).update(message).digest();
    const priv = k.privateKey;
    if (!priv) throw new KeyError('invalid-argument', 'not a key pair');
    switch (algorithm) {
      case 'ecdsa-sha256':
      case 'rsa-pkcs1-sha256':
        return cryptoSign('sha256', message, priv);
      case 'ecdsa-sha384':
        return cryptoSign('sha384', message, priv);
      case 'rsa-pss-sha256':
        return cryptoSign('sha256', message, { key: priv, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 });
      default:
        return assertNever(algorithm);
    }
  }

  async encryptAesGcm(key: StoredKey, iv: Buffer, aad: Buffer, plaintext: Buffer): Promise<Buffer> {
    const cipher = createCipheriv('aes-256-gcm', secretOf(await this.require(key.label)), iv);
    cipher.setAAD(aad);
    return Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
  }

  async decrypt(key: StoredKey, algorithm: EncryptAlgorithm, iv: Buffer, aad: Buffer, ciphertext: Buffer): Promise<Buffer> {
    const k = await this.require(key.label);
    try {
      if (algorithm !== 'aes-256-gcm') {
        if (!k.privateKey) throw new KeyError('invalid-argument', 'not a key pair');
        return privateDecrypt({ key: k.privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: oaepHash(algorithm) }, ciphertext);
      }
      const decipher = createDecipheriv('aes-256-gcm', secretOf(k), iv);
      decipher.setAAD(aad);
      decipher.setAuthTag(ciphertext.subarray(ciphertext.length - 16));
      return Buffer.concat([decipher.update(ciphertext.subarray(0, ciphertext.length - 16)), decipher.final()]);
    } catch (err) {
      if (err instanceof KeyError) throw err;
      throw new KeyError('decrypt-failed', 'decryption failed');
    }
  }

  async randomBytes(n: number): Promise<Buffer> {
    return randomBytes(n);
  }

  async delete(label: string): Promise<boolean> {
    this.cache.delete(label);
    const file = this.fileOf(label);
    const existed = await fs.stat(file).then(() => true, () => false);
    await removeFileDurable(file);
    return existed;
  }

  async list(prefix: string): Promise<StoredKey[]> {
    const names = await fs.readdir(this.dir);
    const out: StoredKey[] = [];
    for (const name of names) {
      if (!name.endsWith(SUFFIX)) continue;
      const label = decodeURIComponent(name.slice(0, -SUFFIX.length));
      if (!label.startsWith(prefix)) continue;
      const k = await this.load(label);
      if (k) out.push({ label: k.label, type: k.type });
    }
    return out;
  }

  async close(): Promise<void> {
    this.cache.clear();
  }

  private fileOf(label: string): string {
    // encodeURIComponent turns "/" into "%2F": one flat directory, no traversal.
    return path.join(this.dir, encodeURIComponent(label) + SUFFIX);
  }

  private async require(label: string): Promise<Loaded> {
    const k = this.cache.get(label) ?? (await this.load(label));
    if (!k) throw new KeyError('not-found', 'key not found');
    return k;
  }

  private async load(label: string): Promise<Loaded | undefined> {
    const cached = this.cache.get(label);
    if (cached) return cached;
    let text: string;
    try {
      text = await fs.readFile(this.fileOf(label), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    const f = JSON.parse(text) as KeyFile;
    if (f.v !== 1 || f.label !== label) throw new Error(`key file for ${label} is not a version-1 key of that label`);
    const loaded: Loaded =
      isKeyPairType(f.type) && f.pkcs8 ? { label, type: f.type, privateKey: createPrivateKey(f.pkcs8) }
      : isSecretKeyType(f.type) && f.secret ? { label, type: f.type, secret: Buffer.from(f.secret, 'base64') }
      : (() => { throw new Error(`key file for ${label} is malformed`); })();
    this.cache.set(label, loaded);
    return loaded;
  }
}

const generateKeyPairAsync = promisify(generateKeyPair);

/** Off the event loop (libuv's pool): RSA-3072 generation takes around a second. */
async function generatePair(type: KeyPairType): Promise<KeyObject> {
  switch (type) {
    case 'ec-p256':
      return (await generateKeyPairAsync('ec', { namedCurve: 'P-256' })).privateKey;
    case 'ec-p384':
      return (await generateKeyPairAsync('ec', { namedCurve: 'P-384' })).privateKey;
    case 'rsa-2048':
      return (await generateKeyPairAsync('rsa', { modulusLength: 2048 })).privateKey;
    case 'rsa-3072':
      return (await generateKeyPairAsync('rsa', { modulusLength: 3072 })).privateKey;
    default:
      return assertNever(type);
  }
}

function pairTypeOf(k: KeyObject): KeyPairType {
  const d = k.asymmetricKeyDetails;
  if (k.asymmetricKeyType === 'ec' && d?.namedCurve === 'prime256v1') return 'ec-p256';
  if (k.asymmetricKeyType === 'ec' && d?.namedCurve === 'secp384r1') return 'ec-p384';
  if (k.asymmetricKeyType === 'rsa' && d?.modulusLength === 2048) return 'rsa-2048';
  if (k.asymmetricKeyType === 'rsa' && d?.modulusLength === 3072) return 'rsa-3072';
  throw new KeyError('unsupported', 'key type not supported (EC P-256/P-384, RSA 2048/3072)');
}

function secretOf(k: Loaded): Buffer {
  if (!k.secret) throw new KeyError('invalid-argument', 'not a symmetric key');
  return k.secret;
}

function assertNever(x: never): never {
  throw new Error(`unreachable: ${String(x)}`);
}
