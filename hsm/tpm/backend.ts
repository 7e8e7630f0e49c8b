/**
 * The TPM key backend: keys created under the SRK (0x81000001), kept as TPM-wrapped blobs in key files
 * (key-files.ts), loaded on demand into a small LRU of transient handles (loaded-keys.ts), and used through
 * the TPM: ECDSA/RSA sign, HMAC-SHA256, RSA-OAEP decrypt; plus data sealed to PCR values. Imported key bytes
 * and sealed/unsealed data cross the TPM bus only inside SRK-salted, parameter-encrypted sessions.
 * Label-addressed like the key service's `KeyStore`, so it adapts to that interface without knowing callers
 * or namespaces.
 */
import { promises as fs } from 'node:fs';
import { sweepTempFiles } from '../support/atomic.js';
import { ALG, OBJ, RH, SE } from './constants.js';
import { TpmMarshalError } from './marshal.js';
import { TpmResetError } from './channel.js';
import { SRK_HANDLE, ensurePersistedPrimary, type HierarchyAuths } from './identity.js';
import { KeyFiles, TpmKeyError, type KeyFile, type TpmKeyType } from './key-files.js';
import { DEFAULT_LOADED_KEYS, LoadedKeys } from './loaded-keys.js';
import { ecdsaP1363, publicKeyOf } from './pubkey.js';
import { sealToPcrs, unsealWithPcrs, type SaltKey } from './seal.js';
import { eccSigningTemplate, hmacTemplate, srkRsaTemplate } from './templates.js';
import { MAX_HMAC_INPUT, type Tpm } from './tpm.js';
import { parseTpm2bPublic, type PcrSelection, type TpmtPublic } from './types.js';

export { MAX_LABEL_LENGTH, TpmKeyError, type TpmKeyType } from './key-files.js';
export { DEFAULT_LOADED_KEYS } from './loaded-keys.js';

export type TpmSignScheme = 'ecdsa-sha256' | 'rsassa-sha256' | 'rsapss-sha256';

function rsaKeyTemplate(): TpmtPublic {
  // Unrestricted sign + decrypt with scheme NULL: the scheme (RSASSA/PSS, OAEP) is chosen per operation.
  return {
    type: ALG.RSA, nameAlg: ALG.SHA256,
    objectAttributes: OBJ.fixedTPM | OBJ.fixedParent | OBJ.sensitiveDataOrigin | OBJ.userWithAuth | OBJ.sign | OBJ.decrypt,
    authPolicy: Buffer.alloc(0), symmetric: null, scheme: null, keyBits: 2048, exponent: 0, unique: Buffer.alloc(0),
  };
}

/** DER ECDSA-Sig-Value from r||s. */
export function p1363ToDer(sig: Buffer): Buffer {
  const half = sig.length / 2;
  const int = (b: Buffer): Buffer => {
    let i = 0;
    while (i < b.length - 1 && b[i] === 0) i++;
    let v = b.subarray(i);
    if (v[0]! & 0x80) v = Buffer.concat([Buffer.from([0]), v]);
    return Buffer.concat([Buffer.from([0x02, v.length]), v]);
  };
  const body = Buffer.concat([int(sig.subarray(0, half)), int(sig.subarray(half))]);
  return Buffer.concat([Buffer.from([0x30, body.length]), body]);
}

/** A key file's fields for a new wrapped object. */
function blobFields(obj: { publicBytes: Buffer; privateBytes: Buffer }): Pick<KeyFile, 'public' | 'private'> {
  return { public: obj.publicBytes.toString('base64'), private: obj.privateBytes.toString('base64') };
}

export class TpmKeyBackend {
  private lock: Promise<unknown> = Promise.resolve();
  private readonly files: KeyFiles;
  private readonly keys: LoadedKeys;

  private constructor(
    readonly tpm: Tpm,
    readonly dir: string,
    maxLoaded: number,
    /** Salts the sessions that carry secrets (imported key bytes, sealed data) so they cross the bus encrypted. */
    private readonly saltKey: SaltKey,
  ) {
    this.files = new KeyFiles(dir);
    this.keys = new LoadedKeys(tpm, maxLoaded, saltKey);
  }

  /**
   * Open the backend on `tpm`, storing blobs in `dir` (created 0700); ensures the SRK exists (created and
   * persisted with `hierarchyAuth.owner` if absent). Temp files of writes killed before their rename are
   * removed: a key whose blob never reached its final name was never created.
   */
  static async open(tpm: Tpm, dir: string, opts: { maxLoaded?: number; hierarchyAuth?: HierarchyAuths } = {}): Promise<TpmKeyBackend> {
    await fs.mkdir(dir, { recursive: true, mode: 0o700 });
    await sweepTempFiles(dir);
    const srk = await ensurePersistedPrimary(tpm, SRK_HANDLE, RH.OWNER, srkRsaTemplate(), opts.hierarchyAuth);
    return new TpmKeyBackend(tpm, dir, opts.maxLoaded ?? DEFAULT_LOADED_KEYS, { handle: SRK_HANDLE, public: srk.info.public });
  }

  /**
   * One operation at a time. An operation that named a handle a TPM reset took away (`TpmResetError`) runs
   * once more: by then the stale handles are dropped, and the key is loaded again from its wrapped blob.
   */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const once = (): Promise<T> => fn().catch((err: unknown) => {
      if (!(err instanceof TpmResetError)) throw err;
      this.keys.dropLost();
      return fn();
    });
    const run = this.lock.then(once, once);
    this.lock = run.catch(() => undefined);
    return run;
  }

  /** Loaded keys, and the most ever held at once. */
  loadStats(): { loaded: number; highWater: number; maxLoaded: number } {
    return this.keys.stats();
  }

  /** Make room for one temporary object (a new key, a sequence, a sealed object) beside `keep`. */
  private async makeRoomForOne(keep?: string): Promise<void> {
    await this.keys.makeRoom(1, keep);
    this.keys.noteInUse(1);
  }

  /** The key's type and public area, or undefined. */
  async describe(label: string): Promise<{ type: TpmKeyType | 'sealed'; public: TpmtPublic } | undefined> {
    const f = await this.files.read(label);
    return f && { type: f.kind, public: parseTpm2bPublic(Buffer.from(f.public, 'base64')) };
  }

  /** Create a key in the TPM under the SRK and store its wrapped blob. */
  createKey(label: string, type: TpmKeyType): Promise<void> {
    return this.serial(async () => {
      await this.files.mustBeFree(label);
      const template = type === 'ec-p256' ? eccSigningTemplate() : type === 'rsa-2048' ? rsaKeyTemplate() : hmacTemplate();
      // TPM2_Create holds the new object in a transient slot while it wraps it (TPM_RC_OBJECT_MEMORY otherwise).
      await this.makeRoomForOne();
      const obj = await this.keys.withSlot(new Set(), () => this.tpm.create(SRK_HANDLE, template));
      await this.files.write({ version: 1, label, kind: type, ...blobFields(obj) });
    });
  }

  /** Import HMAC key bytes (e.g. a SAS key); inside the TPM from then on, not extractable. */
  importHmacKey(label: string, bytes: Buffer): Promise<void> {
    if (bytes.length === 0 || bytes.length > 128) throw new TpmKeyError('invalid-argument', 'HMAC key must be 1..128 bytes');
    return this.serial(async () => {
      await this.files.mustBeFree(label);
      await this.makeRoomForOne();
      const s = await this.keys.withSlot(new Set(), () => this.tpm.startAuthSession(SE.HMAC, ALG.SHA256, { saltKey: this.saltKey }));
      const obj = await this.keys.withSlot(new Set(), () =>
        this.tpm.create(SRK_HANDLE, hmacTemplate({ external: true }), { data: bytes, parentAuth: s.authorize(Buffer.alloc(0), { decrypt: true }) }),
      ).finally(() => this.tpm.flushContext(s.handle).catch(() => undefined));
      await this.files.write({ version: 1, label, kind: 'hmac-sha256', ...blobFields(obj) });
    });
  }

  /** SPKI DER of an EC or RSA key. */
  async publicKeyDer(label: string): Promise<Buffer> {
    const f = await this.files.must(label, ['ec-p256', 'rsa-2048']);
    return publicKeyOf(parseTpm2bPublic(Buffer.from(f.public, 'base64'))).export({ type: 'spki', format: 'der' });
  }

  /** Sign a SHA-256 digest. ECDSA results are DER (as X.509 and JWS-to-DER callers expect). */
  sign(label: string, digest: Buffer, scheme?: TpmSignScheme): Promise<Buffer> {
    if (digest.length !== 32) return Promise.reject(new TpmKeyError('invalid-argument', 'digest must be SHA-256 (32 bytes)'));
    return this.serial(async () => {
      const f = await this.files.must(label, ['ec-p256', 'rsa-2048']);
      const s = scheme ?? (f.kind === 'ec-p256' ? 'ecdsa-sha256' : 'rsassa-sha256');
      if ((f.kind === 'ec-p256') !== (s === 'ecdsa-sha256')) throw new TpmKeyError('invalid-argument', `scheme ${s} does not fit a ${f.kind} key`);
      const alg = s === 'ecdsa-sha256' ? ALG.ECDSA : s === 'rsassa-sha256' ? ALG.RSASSA : ALG.RSAPSS;
      const sig = await this.tpm.sign(await this.keys.load(f), digest, { scheme: alg, hashAlg: ALG.SHA256 });
      if (sig.sigAlg === ALG.ECDSA) return p1363ToDer(ecdsaP1363(sig));
      if (sig.sigAlg === ALG.RSASSA || sig.sigAlg === ALG.RSAPSS) return sig.sig;
      throw new TpmMarshalError('unexpected signature type from the TPM');
    });
  }

  /** HMAC-SHA256: one TPM2_HMAC up to MAX_HMAC_INPUT bytes, an HMAC sequence beyond. */
  hmac(label: string, data: Buffer): Promise<Buffer> {
    return this.serial(async () => {
      const f = await this.files.must(label, ['hmac-sha256']);
      const key = await this.keys.load(f);
      if (data.length <= MAX_HMAC_INPUT) return this.tpm.hmac(key, data, ALG.SHA256);
      await this.makeRoomForOne(label); // a slot for the sequence object; `key` itself stays
      return this.keys.withSlot(new Set([label]), () => this.tpm.hmacSequence(key, data, ALG.SHA256));
    });
  }

  /**
   * HMAC-SHA256 whose result is itself a secret (a derived key, as aziot-keyd derives module keys): the TPM
   * encrypts the response parameter in the SRK-salted session, so the result never crosses the bus in clear.
   */
  hmacSecret(label: string, data: Buffer): Promise<Buffer> {
    return this.serial(async () => {
      const f = await this.files.must(label, ['hmac-sha256']);
      const key = await this.keys.load(f);
      return this.keys.withSecretSession((s) => this.tpm.hmac(key, data, ALG.SHA256, s.authorize(Buffer.alloc(0), { encrypt: true })));
    });
  }

  /** RSA-OAEP decrypt with an rsa-2048 key; OAEP hash and MGF1 hash are both `hash` (default SHA-256). */
  decrypt(label: string, ciphertext: Buffer, oaepLabel?: Buffer, hash: 'sha1' | 'sha256' = 'sha256'): Promise<Buffer> {
    return this.serial(async () => {
      const f = await this.files.must(label, ['rsa-2048']);
      return this.tpm.rsaDecrypt(await this.keys.load(f), ciphertext, hash === 'sha1' ? ALG.SHA1 : ALG.SHA256, oaepLabel);
    });
  }

  /** Seal up to 128 bytes to the given PCR values (default: their current values). */
  seal(label: string, secret: Buffer, selection: PcrSelection[], pcrValues?: Buffer[]): Promise<void> {
    return this.serial(async () => {
      await this.files.mustBeFree(label);
      await this.makeRoomForOne();
      const b = await sealToPcrs(this.tpm, SRK_HANDLE, secret, selection, pcrValues, { saltKey: this.saltKey });
      await this.files.write({ version: 1, label, kind: 'sealed', ...blobFields(b), selection, policy: b.policy.toString('hex') });
    });
  }

  /** Unseal; the TPM refuses (TpmError TPM_RC_POLICY_FAIL) unless the PCRs hold the sealed values. */
  unseal(label: string): Promise<Buffer> {
    return this.serial(async () => {
      const f = await this.files.must(label, ['sealed']);
      await this.makeRoomForOne();
      return unsealWithPcrs(this.tpm, SRK_HANDLE, {
        privateBytes: Buffer.from(f.private, 'base64'), publicBytes: Buffer.from(f.public, 'base64'),
        selection: f.selection ?? [], policy: Buffer.from(f.policy ?? '', 'hex'),
      }, { saltKey: this.saltKey });
    });
  }

  /** Delete a key's blob (the TPM holds nothing else of it). True when something was deleted. */
  delete(label: string): Promise<boolean> {
    return this.serial(async () => {
      const f = await this.files.read(label);
      if (!f) return false;
      this.keys.dropLost();
      await this.keys.evict(label);
      await this.files.remove(label);
      return true;
    });
  }

  /** Labels starting with `prefix`. */
  list(prefix = ''): Promise<{ label: string; type: TpmKeyType | 'sealed' }[]> {
    return this.files.list(prefix);
  }

  /** Flush loaded handles (the TPM itself is closed by its owner). */
  close(): Promise<void> {
    return this.serial(() => this.keys.flushAll());
  }
}
