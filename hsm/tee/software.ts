/**
 * Software "TEE" backend for development only: the workload-decryption key is a PEM file. It protects
 * nothing against anyone who can read the state directory, so it refuses to open unless the caller passes
 * `insecureDevelopment: true` (a development flag in the config), and then warns loudly on every open.
 * Its policy kind is "software" so a publisher sees what it seals to. The seal master secret is wrapped with
 * AES-256-GCM under a key derived (HKDF-SHA256) from the key file: bound to that file, nothing more.
 */
import { constants, createCipheriv, createDecipheriv, createPrivateKey, createPublicKey, generateKeyPairSync, hkdfSync, privateDecrypt, randomBytes, type KeyObject } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { writeFileAtomic } from '../support/atomic.js';
import { TeeError, checkExpectedPolicy, checkMasterSecret, keyIdOf, type DeviceKeyInfo, type KeyPolicyDescription, type TeeBackend } from './port.js';

export const INSECURE_WARNING =
  'confidential workloads are using the INSECURE software key backend (development flag set): the workload key is a file, any reader of the state directory can decrypt every package sealed to this device';

export class SoftwareTeeBackend implements TeeBackend {
  readonly name = 'software';
  private constructor(private readonly key: KeyObject) {}

  /** Open (or create, 0600) the key at `file`; refused without the development flag. */
  static async open(file: string, opts: { insecureDevelopment?: boolean; warn?: (msg: string) => void } = {}): Promise<SoftwareTeeBackend> {
    if (opts.insecureDevelopment !== true) {
      throw new TeeError('unavailable', 'confidential workloads need a TPM (or OP-TEE) key backend: the file backend cannot keep the workload key from the normal world; set the development flag only on a development machine');
    }
    (opts.warn ?? ((m: string) => process.emitWarning(m)))(INSECURE_WARNING);
    const pem = await fs.readFile(file, 'utf8').catch(async (e: NodeJS.ErrnoException) => {
      if (e.code !== 'ENOENT') throw new TeeError('unavailable', `software workload key ${file}: ${e.code ?? e.message}`);
      const k = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
      await writeFileAtomic(file, k);
      return k;
    });
    return new SoftwareTeeBackend(createPrivateKey(pem));
  }

  policy(): KeyPolicyDescription {
    return { kind: 'software', description: 'INSECURE development key in a file: bound to nothing' };
  }

  async deviceKey(): Promise<DeviceKeyInfo> {
    const pub = createPublicKey(this.key);
    return { keyId: keyIdOf(pub), publicPem: pub.export({ type: 'spki', format: 'pem' }).toString(), policy: this.policy() };
  }

  async unwrap(wrappedKey: Buffer, expected?: KeyPolicyDescription): Promise<Buffer> {
    checkExpectedPolicy(this.policy(), expected);
    try {
      return privateDecrypt({ key: this.key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, wrappedKey);
    } catch {
      throw new TeeError('unwrap-failed', 'the content key is not wrapped to this device key');
    }
  }

  /** The master-wrapping key: HKDF-SHA256 over the private key's PKCS#8 DER. */
  private masterKey(): Buffer {
    return Buffer.from(hkdfSync('sha256', this.key.export({ type: 'pkcs8', format: 'der' }), Buffer.alloc(0), 'edgeward-tee-software-master/1', 32));
  }

  /** Blob: "EWSM" ‖ IV (12) ‖ ciphertext (32) ‖ tag (16). */
  async sealMaster(secret: Buffer): Promise<Buffer> {
    checkMasterSecret(secret);
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', this.masterKey(), iv).setAAD(SOFTWARE_MASTER_MAGIC);
    const body = Buffer.concat([c.update(secret), c.final()]);
    return Buffer.concat([SOFTWARE_MASTER_MAGIC, iv, body, c.getAuthTag()]);
  }

  async unsealMaster(blob: Buffer): Promise<Buffer> {
    if (blob.length !== 4 + 12 + 32 + 16 || !blob.subarray(0, 4).equals(SOFTWARE_MASTER_MAGIC)) throw new TeeError('protocol', 'the sealed master secret is not a software-backend blob');
    try {
      const d = createDecipheriv('aes-256-gcm', this.masterKey(), blob.subarray(4, 16)).setAAD(SOFTWARE_MASTER_MAGIC).setAuthTag(blob.subarray(48));
      return Buffer.concat([d.update(blob.subarray(16, 48)), d.final()]);
    } catch {
      throw new TeeError('unwrap-failed', 'the sealed master secret was not wrapped with this software key (or is damaged)');
    }
  }

  /** Bound to nothing that can change while the file stays: always holds. */
  async checkMaster(): Promise<void> {}

  async close(): Promise<void> {}
}

const SOFTWARE_MASTER_MAGIC = Buffer.from('EWSM');
