/**
 * The TPM key backend: keys created under the SRK (0x81000001), kept as TPM-wrapped blobs (TPM2B_PRIVATE,
 * encrypted and integrity-protected by the SRK, useless off this TPM) in `<dir>/<sha256(label)>.json`,
 * loaded on demand into a small LRU of transient handles, and used through the TPM: ECDSA/RSA sign,
 * HMAC-SHA256, RSA-OAEP decrypt; plus data sealed to PCR values. Imported key bytes and sealed/unsealed
 * data cross the TPM bus only inside SRK-salted, parameter-encrypted sessions. Label-addressed like the key service's
 * `KeyStore`, so it adapts to that interface without knowing callers or namespaces.
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { writeFileAtomic, removeFileDurable, sweepTempFiles } from '../support/atomic.js';
import { ALG, HT, OBJ, RH, SE } from './constants.js';
import { TpmMarshalError } from './marshal.js';
import { TpmError } from './rc.js';
import { SRK_HANDLE, ensurePersistedPrimary, type HierarchyAuths } from './identity.js';
import { ecdsaP1363, publicKeyOf } from './pubkey.js';
import { sealToPcrs, unsealWithPcrs, type SaltKey } from './seal.js';
import { eccSigningTemplate, hmacTemplate, srkRsaTemplate } from './templates.js';
import type { Session } from './session.js';
import { MAX_HMAC_INPUT, TpmResetError, type LoadedObject, type Tpm } from './tpm.js';
import { parseTpm2bPublic, type PcrSelection, type TpmtPublic } from './types.js';

export type TpmKeyType = 'ec-p256' | 'rsa-2048' | 'hmac-sha256';
export type TpmSignScheme = 'ecdsa-sha256' | 'rsassa-sha256' | 'rsapss-sha256';

/** Labels are short printable strings (`edgeward/<namespace>/<id>`). */
export const MAX_LABEL_LENGTH = 256;
/** Transient handles kept loaded; swtpm and most TPMs without a resource manager have 3 object slots. */
export const DEFAULT_LOADED_KEYS = 2;

interface KeyFile {
  version: 1;
  label: string;
  kind: TpmKeyType | 'sealed';
  public: string;
  private: string;
  selection?: PcrSelection[];
  policy?: string;
}

export class TpmKeyError extends Error {
  constructor(
    readonly kind: 'not-found' | 'already-exists' | 'invalid-argument' | 'wrong-type',
    message: string,
  ) {
    super(message);
    this.name = 'TpmKeyError';
  }
}

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

/** A loaded key and the TPM epoch it was loaded in (a reset since then took it away). */
interface Loaded extends LoadedObject {
  readonly epoch: number;
}

/** Bounds the flush-and-retry of a command the TPM refused for want of an object or session slot. */
const MAX_RECLAIMS = 8;

const isOutOfSlots = (err: unknown): boolean =>
  err instanceof TpmError && (err.code === 'TPM_RC_OBJECT_MEMORY' || err.code === 'TPM_RC_SESSION_MEMORY' || err.code === 'TPM_RC_OBJECT_HANDLES' || err.code === 'TPM_RC_SESSION_HANDLES');

export class TpmKeyBackend {
  private readonly loaded = new Map<string, Loaded>();
  /** Most transient objects held at once, this backend's own and temporary ones (reliability H8). */
  private loadedHighWater = 0;
  /** Key files already read (this backend is their only writer). */
  private readonly files = new Map<string, KeyFile>();
  private lock: Promise<unknown> = Promise.resolve();
  private secretSession: (Session & { epoch?: number }) | undefined;

  private constructor(
    readonly tpm: Tpm,
    readonly dir: string,
    private maxLoaded: number,
    /** Salts the sessions that carry secrets (imported key bytes, sealed data) so they cross the bus encrypted. */
    private readonly saltKey: SaltKey,
  ) {}

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
      this.dropLost();
      return fn();
    });
    const run = this.lock.then(once, once);
    this.lock = run.catch(() => undefined);
    return run;
  }

  /** Forget (without flushing: they are gone) handles loaded before the TPM's last reset. */
  private dropLost(): void {
    const epoch = this.tpm.epoch;
    for (const [label, obj] of this.loaded) if (obj.epoch !== epoch) this.loaded.delete(label);
    if (this.secretSession && this.secretSession.epoch !== epoch) this.secretSession = undefined;
  }

  /** Loaded keys, and the most ever held at once. */
  loadStats(): { loaded: number; highWater: number; maxLoaded: number } {
    return { loaded: this.loaded.size, highWater: this.loadedHighWater, maxLoaded: this.maxLoaded };
  }

  /**
   * Run a command that needs a free object or session slot. If the TPM has none (TPM_RC_OBJECT_MEMORY and
   * kin: a TPM with fewer slots than `maxLoaded`, or objects left by a client before a reconnection), flush
   * our least recently used key — never one in `keep` — and shrink the cache to what fits, or else flush
   * transient objects and sessions that are not ours (as at open: without a resource manager the key store
   * is the TPM's only user), and try again.
   */
  private async withSlot<T>(keep: ReadonlySet<string>, fn: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await fn();
      } catch (err) {
        if (!isOutOfSlots(err) || attempt >= MAX_RECLAIMS) throw err;
        this.dropLost();
        const objects = (err as TpmError).code === 'TPM_RC_OBJECT_MEMORY' || (err as TpmError).code === 'TPM_RC_OBJECT_HANDLES';
        const victim = objects ? [...this.loaded.keys()].find((l) => !keep.has(l)) : undefined;
        if (victim !== undefined) {
          // The TPM held our `size` objects and not one more: cache no more than it holds.
          this.maxLoaded = Math.max(1, Math.min(this.maxLoaded, this.loaded.size));
          await this.evict(victim);
        } else if (!(await this.flushForeign())) throw err;
      }
    }
  }

  /** Flush transient objects and sessions this backend does not hold. True when something was flushed. */
  private async flushForeign(): Promise<boolean> {
    const ours = new Set<number>([...this.loaded.values()].map((o) => o.handle));
    if (this.secretSession) ours.add(this.secretSession.handle);
    let flushed = false;
    for (const range of [HT.TRANSIENT, HT.HMAC_SESSION, HT.POLICY_SESSION]) {
      for (const h of await this.tpm.getHandles((range << 24) >>> 0)) {
        if (ours.has(h)) continue;
        await this.tpm.flushContext(h).catch(() => undefined);
        flushed = true;
      }
    }
    return flushed;
  }

  /** Flush one cached key; a handle a reset already took away is just forgotten. */
  private async evict(label: string): Promise<void> {
    const obj = this.loaded.get(label);
    if (!obj) return;
    this.loaded.delete(label);
    if (obj.epoch !== this.tpm.epoch) return;
    await this.tpm.flushContext(obj.handle).catch((err: unknown) => {
      if (!(err instanceof TpmResetError)) throw err;
    });
  }

  /** Note `extra` temporary objects in use on top of the cache, for the high-water mark. */
  private noteInUse(extra: number): void {
    this.loadedHighWater = Math.max(this.loadedHighWater, this.loaded.size + extra);
  }

  private fileOf(label: string): string {
    if (label.length === 0 || label.length > MAX_LABEL_LENGTH || /[\x00-\x1f]/.test(label)) {
      throw new TpmKeyError('invalid-argument', `key label must be 1..${MAX_LABEL_LENGTH} printable characters`);
    }
    return path.join(this.dir, `${createHash('sha256').update(label).digest('hex')}.json`);
  }

  private async read(label: string): Promise<KeyFile | undefined> {
    const cached = this.files.get(label);
    if (cached) return cached;
    try {
      const f = JSON.parse(await fs.readFile(this.fileOf(label), 'utf8')) as KeyFile;
      if (f.label !== label) return undefined;
      this.files.set(label, f);
      return f;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  private async must(label: string, kinds: KeyFile['kind'][]): Promise<KeyFile> {
    const f = await this.read(label);
    if (!f) throw new TpmKeyError('not-found', `no TPM key "${label}"`);
    if (!kinds.includes(f.kind)) throw new TpmKeyError('wrong-type', `TPM key "${label}" is ${f.kind}, not ${kinds.join(' or ')}`);
    return f;
  }

  private async write(f: KeyFile): Promise<void> {
    if (await this.read(f.label)) throw new TpmKeyError('already-exists', `TPM key "${f.label}" already exists`);
    await writeFileAtomic(this.fileOf(f.label), JSON.stringify(f));
    this.files.set(f.label, f);
  }

  /** The key's type and public area, or undefined. */
  async describe(label: string): Promise<{ type: TpmKeyType | 'sealed'; public: TpmtPublic } | undefined> {
    const f = await this.read(label);
    return f && { type: f.kind, public: parseTpm2bPublic(Buffer.from(f.public, 'base64')) };
  }

  /** Create a key in the TPM under the SRK and store its wrapped blob. */
  createKey(label: string, type: TpmKeyType): Promise<void> {
    return this.serial(async () => {
      if (await this.read(label)) throw new TpmKeyError('already-exists', `TPM key "${label}" already exists`);
      const template = type === 'ec-p256' ? eccSigningTemplate() : type === 'rsa-2048' ? rsaKeyTemplate() : hmacTemplate();
      // TPM2_Create holds the new object in a transient slot while it wraps it (TPM_RC_OBJECT_MEMORY otherwise).
      await this.makeRoom(1);
      this.noteInUse(1);
      const obj = await this.withSlot(new Set(), () => this.tpm.create(SRK_HANDLE, template));
      await this.write({ version: 1, label, kind: type, public: obj.publicBytes.toString('base64'), private: obj.privateBytes.toString('base64') });
    });
  }

  /** Import HMAC key bytes (e.g. a SAS key); inside the TPM from then on, not extractable. */
  importHmacKey(label: string, bytes: Buffer): Promise<void> {
    if (bytes.length === 0 || bytes.length > 128) throw new TpmKeyError('invalid-argument', 'HMAC key must be 1..128 bytes');
    return this.serial(async () => {
      if (await this.read(label)) throw new TpmKeyError('already-exists', `TPM key "${label}" already exists`);
      await this.makeRoom(1);
      this.noteInUse(1);
      const s = await this.withSlot(new Set(), () => this.tpm.startAuthSession(SE.HMAC, ALG.SHA256, { saltKey: this.saltKey }));
      const obj = await this.withSlot(new Set(), () =>
        this.tpm.create(SRK_HANDLE, hmacTemplate({ external: true }), { data: bytes, parentAuth: s.authorize(Buffer.alloc(0), { decrypt: true }) }),
      ).finally(() => this.tpm.flushContext(s.handle).catch(() => undefined));
      await this.write({ version: 1, label, kind: 'hmac-sha256', public: obj.publicBytes.toString('base64'), private: obj.privateBytes.toString('base64') });
    });
  }

  /** Load (or reuse) the key's transient handle; the least recently used one is flushed past `maxLoaded`. */
  private async load(f: KeyFile): Promise<LoadedObject> {
    this.dropLost();
    const hit = this.loaded.get(f.label);
    if (hit) {
      this.loaded.delete(f.label);
      this.loaded.set(f.label, hit);
      return hit;
    }
    await this.makeRoom(1);
    const obj = await this.withSlot(new Set(), () => this.tpm.load(SRK_HANDLE, Buffer.from(f.private, 'base64'), Buffer.from(f.public, 'base64')));
    this.loaded.set(f.label, { ...obj, epoch: this.tpm.epoch });
    this.noteInUse(0);
    return obj;
  }

  /** SPKI DER of an EC or RSA key. */
  async publicKeyDer(label: string): Promise<Buffer> {
    const f = await this.must(label, ['ec-p256', 'rsa-2048']);
    return publicKeyOf(parseTpm2bPublic(Buffer.from(f.public, 'base64'))).export({ type: 'spki', format: 'der' });
  }

  /** Sign a SHA-256 digest. ECDSA results are DER (as X.509 and JWS-to-DER callers expect). */
  sign(label: string, digest: Buffer, scheme?: TpmSignScheme): Promise<Buffer> {
    if (digest.length !== 32) return Promise.reject(new TpmKeyError('invalid-argument', 'digest must be SHA-256 (32 bytes)'));
    return this.serial(async () => {
      const f = await this.must(label, ['ec-p256', 'rsa-2048']);
      const s = scheme ?? (f.kind === 'ec-p256' ? 'ecdsa-sha256' : 'rsassa-sha256');
      if ((f.kind === 'ec-p256') !== (s === 'ecdsa-sha256')) throw new TpmKeyError('invalid-argument', `scheme ${s} does not fit a ${f.kind} key`);
      const alg = s === 'ecdsa-sha256' ? ALG.ECDSA : s === 'rsassa-sha256' ? ALG.RSASSA : ALG.RSAPSS;
      const sig = await this.tpm.sign(await this.load(f), digest, { scheme: alg, hashAlg: ALG.SHA256 });
      if (sig.sigAlg === ALG.ECDSA) return p1363ToDer(ecdsaP1363(sig));
      if (sig.sigAlg === ALG.RSASSA || sig.sigAlg === ALG.RSAPSS) return sig.sig;
      throw new TpmMarshalError('unexpected signature type from the TPM');
    });
  }

  /** HMAC-SHA256: one TPM2_HMAC up to MAX_HMAC_INPUT bytes, an HMAC sequence beyond. */
  hmac(label: string, data: Buffer): Promise<Buffer> {
    return this.serial(async () => {
      const f = await this.must(label, ['hmac-sha256']);
      const key = await this.load(f);
      if (data.length <= MAX_HMAC_INPUT) return this.tpm.hmac(key, data, ALG.SHA256);
      await this.makeRoom(1, label); // a slot for the sequence object; `key` itself stays
      this.noteInUse(1);
      return this.withSlot(new Set([label]), () => this.tpm.hmacSequence(key, data, ALG.SHA256));
    });
  }

  /**
   * HMAC-SHA256 whose result is itself a secret (a derived key, as aziot-keyd derives module keys): the TPM
   * encrypts the response parameter in the SRK-salted session, so the result never crosses the bus in clear.
   */
  hmacSecret(label: string, data: Buffer): Promise<Buffer> {
    return this.serial(async () => {
      const f = await this.must(label, ['hmac-sha256']);
      const key = await this.load(f);
      return this.withSecretSession((s) => this.tpm.hmac(key, data, ALG.SHA256, s.authorize(Buffer.alloc(0), { encrypt: true })));
    });
  }

  /**
   * Run `fn` in the backend's long-lived salted session: salting costs an RSA decryption in the TPM, too
   * slow per operation on a discrete TPM. A failed command drops the session (the TPM may have lost it
   * in a restart, or its nonces may be out of step); the next call salts a new one.
   */
  private async withSecretSession<T>(fn: (s: Session) => Promise<T>): Promise<T> {
    this.dropLost();
    if (!this.secretSession) {
      const fresh = await this.withSlot(new Set(this.loaded.keys()), () => this.tpm.startAuthSession(SE.HMAC, ALG.SHA256, { saltKey: this.saltKey }));
      this.secretSession = Object.assign(fresh, { epoch: this.tpm.epoch });
    }
    const s = this.secretSession;
    try {
      return await fn(s);
    } catch (err) {
      this.secretSession = undefined;
      await this.tpm.flushContext(s.handle).catch(() => undefined);
      throw err;
    }
  }

  /** RSA-OAEP decrypt with an rsa-2048 key; OAEP hash and MGF1 hash are both `hash` (default SHA-256). */
  decrypt(label: string, ciphertext: Buffer, oaepLabel?: Buffer, hash: 'sha1' | 'sha256' = 'sha256'): Promise<Buffer> {
    return this.serial(async () => {
      const f = await this.must(label, ['rsa-2048']);
      return this.tpm.rsaDecrypt(await this.load(f), ciphertext, hash === 'sha1' ? ALG.SHA1 : ALG.SHA256, oaepLabel);
    });
  }

  /** Seal up to 128 bytes to the given PCR values (default: their current values). */
  seal(label: string, secret: Buffer, selection: PcrSelection[], pcrValues?: Buffer[]): Promise<void> {
    return this.serial(async () => {
      if (await this.read(label)) throw new TpmKeyError('already-exists', `TPM key "${label}" already exists`);
      await this.makeRoom(1);
      this.noteInUse(1);
      const b = await sealToPcrs(this.tpm, SRK_HANDLE, secret, selection, pcrValues, { saltKey: this.saltKey });
      await this.write({
        version: 1, label, kind: 'sealed', public: b.publicBytes.toString('base64'), private: b.privateBytes.toString('base64'),
        selection, policy: b.policy.toString('hex'),
      });
    });
  }

  /** Unseal; the TPM refuses (TpmError TPM_RC_POLICY_FAIL) unless the PCRs hold the sealed values. */
  unseal(label: string): Promise<Buffer> {
    return this.serial(async () => {
      const f = await this.must(label, ['sealed']);
      await this.makeRoom(1);
      this.noteInUse(1);
      return unsealWithPcrs(this.tpm, SRK_HANDLE, {
        privateBytes: Buffer.from(f.private, 'base64'), publicBytes: Buffer.from(f.public, 'base64'),
        selection: f.selection ?? [], policy: Buffer.from(f.policy ?? '', 'hex'),
      }, { saltKey: this.saltKey });
    });
  }

  /** Flush cached handles, least recently used first and never `keep`, until at most `maxLoaded - n` remain. */
  private async makeRoom(n: number, keep?: string): Promise<void> {
    this.dropLost();
    while (this.loaded.size > Math.max(keep === undefined ? 0 : 1, this.maxLoaded - n)) {
      const victim = [...this.loaded.keys()].find((l) => l !== keep);
      if (victim === undefined) return;
      await this.evict(victim);
    }
  }

  /** Delete a key's blob (the TPM holds nothing else of it). True when something was deleted. */
  delete(label: string): Promise<boolean> {
    return this.serial(async () => {
      const f = await this.read(label);
      if (!f) return false;
      this.dropLost();
      await this.evict(label);
      this.files.delete(label);
      await removeFileDurable(this.fileOf(label));
      return true;
    });
  }

  /** Labels starting with `prefix`. */
  async list(prefix = ''): Promise<{ label: string; type: TpmKeyType | 'sealed' }[]> {
    const out: { label: string; type: TpmKeyType | 'sealed' }[] = [];
    for (const name of await fs.readdir(this.dir)) {
      if (!/^[0-9a-f]{64}\.json$/.test(name)) continue;
      const f = JSON.parse(await fs.readFile(path.join(this.dir, name), 'utf8')) as KeyFile;
      if (f.label.startsWith(prefix)) out.push({ label: f.label, type: f.kind });
    }
    return out.sort((a, b) => a.label.localeCompare(b.label));
  }

  /** Flush loaded handles (the TPM itself is closed by its owner). */
  close(): Promise<void> {
    return this.serial(async () => {
      this.dropLost();
      for (const obj of this.loaded.values()) await this.tpm.flushContext(obj.handle).catch(() => undefined);
      this.loaded.clear();
      if (this.secretSession) await this.tpm.flushContext(this.secretSession.handle).catch(() => undefined);
      this.secretSession = undefined;
    });
  }
}
