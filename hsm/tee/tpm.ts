/**
 * TPM TEE backend: the workload-decryption key is an RSA-2048 decryption key created under the SRK with
 * userWithAuth clear and authPolicy = PolicyPCR(sha256:[runtime PCR]) over the value that PCR has when the
 * key is made (or a known-good value given). The TPM itself refuses TPM2_RSA_Decrypt unless a policy session
 * proves the PCR still has that value, so a changed runtime (a different measured launch) can never unwrap,
 * and an unchanged one can after every clean reboot (the runtime PCR is deterministic per boot).
 *
 * The key blob (wrapped by the SRK) is stored as JSON; it is useless off this TPM. The runtime PCR index is
 * a parameter (default 12, the measured-launch runtime PCR). The unwrap session is salted with the SRK and
 * encrypts the response, so the content key does not cross the TPM bus in clear.
 */
import { promises as fs } from 'node:fs';
import { writeFileAtomic } from '../support/atomic.js';
import { ALG, OBJ, SE } from '../tpm/constants.js';
import { SRK_HANDLE } from '../tpm/identity.js';
import { publicKeyOf } from '../tpm/pubkey.js';
import { TpmError } from '../tpm/rc.js';
import { readPcrValues } from '../tpm/seal.js';
import { PolicyDigest } from '../tpm/session.js';
import { rsaDecryptTemplate } from '../tpm/templates.js';
import type { Tpm } from '../tpm/tpm.js';
import { readPublic, type TpmtPublic } from '../tpm/types.js';
import { Reader } from '../tpm/marshal.js';
import { checkMasterTpm, sealMasterTpm, unsealMasterTpm } from './tpm-master.js';
import { TeeError, checkExpectedPolicy, keyIdOf, type DeviceKeyInfo, type KeyPolicyDescription, type TeeBackend } from './port.js';

export const DEFAULT_RUNTIME_PCR = 12;

/** What is stored for the key: the SRK-wrapped blobs and the policy it was made with. */
export interface TpmWorkloadKeyFile {
  version: 1;
  privateBytes: string;
  publicBytes: string;
  pcr: number;
  pcrValue: string;
  policyDigest: string;
}

/** The template: RSA-2048 decrypt, no userWithAuth (a password cannot use it), authPolicy = PolicyPCR. */
export function workloadKeyTemplate(policy: Buffer): TpmtPublic {
  const t = rsaDecryptTemplate();
  return { ...t, objectAttributes: (t.objectAttributes & ~OBJ.userWithAuth) | OBJ.noDA, authPolicy: policy } as TpmtPublic;
}

/** PolicyPCR(sha256:[pcr]) over `value`, computed in software (a trial session gives the same digest). */
export function pcrPolicyDigest(pcr: number, value: Buffer): Buffer {
  return new PolicyDigest(ALG.SHA256).policyPcr([{ hashAlg: ALG.SHA256, pcrs: [pcr] }], [value]).digest;
}

export class TpmTeeBackend implements TeeBackend {
  readonly name = 'tpm';
  private constructor(private readonly tpm: Tpm, private readonly key: TpmWorkloadKeyFile, private readonly parent: number) {}

  /** Create a key bound to the runtime PCR's current value (or `pcrValue`) and store it at `file`. */
  static async create(tpm: Tpm, file: string, opts: { pcr?: number; pcrValue?: Buffer; parent?: number } = {}): Promise<TpmTeeBackend> {
    const pcr = opts.pcr ?? DEFAULT_RUNTIME_PCR;
    if (!Number.isInteger(pcr) || pcr < 0 || pcr > 23) throw new RangeError(`PCR index ${pcr} is outside 0..23`);
    const value = opts.pcrValue ?? (await readPcrValues(tpm, [{ hashAlg: ALG.SHA256, pcrs: [pcr] }]))[0]!;
    const policy = pcrPolicyDigest(pcr, value);
    const parent = opts.parent ?? SRK_HANDLE;
    const obj = await tpm.create(parent, workloadKeyTemplate(policy));
    const key: TpmWorkloadKeyFile = {
      version: 1, privateBytes: obj.privateBytes.toString('base64'), publicBytes: obj.publicBytes.toString('base64'),
      pcr, pcrValue: value.toString('hex'), policyDigest: policy.toString('hex'),
    };
    await writeFileAtomic(file, JSON.stringify(key, null, 2) + '\n');
    return new TpmTeeBackend(tpm, key, parent);
  }

  /** Open a key stored by `create`. */
  static async open(tpm: Tpm, file: string, opts: { parent?: number } = {}): Promise<TpmTeeBackend> {
    const text = await fs.readFile(file, 'utf8').catch((e: NodeJS.ErrnoException) => {
      throw new TeeError('unavailable', `workload-decryption key ${file}: ${e.code ?? e.message} (create it first)`);
    });
    let key: TpmWorkloadKeyFile;
    try {
      key = JSON.parse(text) as TpmWorkloadKeyFile;
    } catch {
      throw new TeeError('protocol', `workload-decryption key ${file}: not JSON`);
    }
    if (key.version !== 1 || typeof key.privateBytes !== 'string' || typeof key.publicBytes !== 'string' || !Number.isInteger(key.pcr) || !/^[0-9a-f]{64}$/.test(String(key.pcrValue))) {
      throw new TeeError('protocol', `workload-decryption key ${file}: unknown format`);
    }
    const backend = new TpmTeeBackend(tpm, key, opts.parent ?? SRK_HANDLE);
    backend.checkConsistent(file);
    return backend;
  }

  /** The stated PCR value must give the authPolicy the TPM object really carries (a hand-edited file lies). */
  private checkConsistent(file: string): void {
    const actual = this.publicArea().authPolicy.toString('hex');
    const stated = pcrPolicyDigest(this.key.pcr, Buffer.from(this.key.pcrValue, 'hex')).toString('hex');
    if (actual !== stated || actual !== this.key.policyDigest) throw new TeeError('protocol', `workload-decryption key ${file}: the stated PCR ${this.key.pcr} policy does not match the key's authPolicy (file edited?)`);
  }

  private publicArea(): TpmtPublic {
    // TPM2B_PUBLIC: u16 size, then the TPMT_PUBLIC.
    return readPublic(Reader.of(Buffer.from(this.key.publicBytes, 'base64').subarray(2)));
  }

  policy(): KeyPolicyDescription {
    return {
      kind: 'tpm-pcr',
      description: `TPM RSA-2048 key under the SRK, usable only under PolicyPCR(sha256:${this.key.pcr}) = this value`,
      pcrs: [{ index: this.key.pcr, bank: 'sha256', value: this.key.pcrValue }],
      policyDigest: this.key.policyDigest,
    };
  }

  async deviceKey(): Promise<DeviceKeyInfo> {
    const pub = publicKeyOf(this.publicArea());
    return { keyId: keyIdOf(pub), publicPem: pub.export({ type: 'spki', format: 'pem' }).toString(), policy: this.policy() };
  }

  async unwrap(wrappedKey: Buffer, expected?: KeyPolicyDescription): Promise<Buffer> {
    checkExpectedPolicy(this.policy(), expected);
    const srk = await this.tpm.readPublic(this.parent);
    const obj = await this.tpm.load(this.parent, Buffer.from(this.key.privateBytes, 'base64'), Buffer.from(this.key.publicBytes, 'base64'));
    try {
      const s = await this.tpm.startAuthSession(SE.POLICY, ALG.SHA256, { saltKey: { handle: this.parent, public: srk.public } });
      try {
        await this.tpm.policyPcr(s, [{ hashAlg: ALG.SHA256, pcrs: [this.key.pcr] }]);
        return await this.tpm.rsaDecrypt(obj, wrappedKey, ALG.SHA256, Buffer.alloc(0), s.authorize(Buffer.alloc(0), { encrypt: true }));
      } finally {
        await this.tpm.flushContext(s.handle);
      }
    } catch (err) {
      throw await this.refusal(err);
    } finally {
      await this.tpm.flushContext(obj.handle);
    }
  }

  /** Map a TPM refusal to a typed error; a policy failure names the PCR and its current vs bound value. */
  private async refusal(err: unknown): Promise<unknown> {
    if (!(err instanceof TpmError)) return err;
    if (err.code === 'TPM_RC_POLICY_FAIL') {
      const now = (await readPcrValues(this.tpm, [{ hashAlg: ALG.SHA256, pcrs: [this.key.pcr] }]).catch(() => []))[0];
      return new TeeError('policy-mismatch', `the TPM refuses the workload-decryption key: PCR ${this.key.pcr} (sha256) is ${now?.toString('hex') ?? 'unreadable'}, the key is bound to ${this.key.pcrValue} (the measured runtime changed)`, this.key.pcr);
    }
    return new TeeError('unwrap-failed', `the TPM could not unwrap the content key: ${err.code} (the package was not sealed to this key, or it is damaged)`);
  }

  /** The seal master secret, sealed to this key's runtime PCR (its current value) under the same parent. */
  sealMaster(secret: Buffer): Promise<Buffer> {
    return sealMasterTpm(this.tpm, this.parent, this.key.pcr, secret);
  }

  unsealMaster(blob: Buffer): Promise<Buffer> {
    return unsealMasterTpm(this.tpm, this.parent, blob);
  }

  checkMaster(blob: Buffer): Promise<void> {
    return checkMasterTpm(this.tpm, blob);
  }

  async close(): Promise<void> {}
}
