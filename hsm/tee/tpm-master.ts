/**
 * The seal master secret on a TPM (TeeBackend.sealMaster/unsealMaster for tpm.ts): a keyedHash data object
 * under the SRK whose userWithAuth is clear and whose authPolicy is PolicyPCR(sha256:[runtime PCR]) over the
 * value that PCR has when it is sealed (hsm/tpm/seal.ts). The TPM releases it (TPM2_Unseal) only in a policy
 * session where that PCR still has that value; the session is salted with the SRK and encrypts the answer,
 * so the secret does not cross the TPM bus in clear. The blob (JSON, below) is useless off this TPM.
 */
import { ALG } from '../tpm/constants.js';
import { Reader } from '../tpm/marshal.js';
import { TpmError } from '../tpm/rc.js';
import { readPcrValues, sealToPcrs, unsealWithPcrs, type SaltKey } from '../tpm/seal.js';
import type { Tpm } from '../tpm/tpm.js';
import { readPublic } from '../tpm/types.js';
import { TeeError, checkMasterSecret } from './port.js';
import { PolicyDigest } from '../tpm/session.js';

const FORMAT = 'edgeward-tpm-sealed-master';

const policyOf = (pcr: number, value: Buffer) => new PolicyDigest(ALG.SHA256).policyPcr([{ hashAlg: ALG.SHA256, pcrs: [pcr] }], [value]).digest;

/** The blob `sealMaster` returns (UTF-8 JSON). */
interface MasterBlob {
  format: typeof FORMAT;
  version: 1;
  pcr: number;
  pcrValue: string;
  policyDigest: string;
  privateBytes: string;
  publicBytes: string;
}

async function saltKey(tpm: Tpm, parent: number): Promise<SaltKey> {
  return { handle: parent, public: (await tpm.readPublic(parent)).public };
}

/** Seal `secret` to PCR `pcr`'s current value under `parent` (the SRK). */
export async function sealMasterTpm(tpm: Tpm, parent: number, pcr: number, secret: Buffer): Promise<Buffer> {
  checkMasterSecret(secret);
  const selection = [{ hashAlg: ALG.SHA256, pcrs: [pcr] }];
  const [value] = await readPcrValues(tpm, selection);
  const sealed = await sealToPcrs(tpm, parent, secret, selection, [value!], { saltKey: await saltKey(tpm, parent) });
  const blob: MasterBlob = {
    format: FORMAT, version: 1, pcr, pcrValue: value!.toString('hex'), policyDigest: sealed.policy.toString('hex'),
    privateBytes: sealed.privateBytes.toString('base64'), publicBytes: sealed.publicBytes.toString('base64'),
  };
  return Buffer.from(JSON.stringify(blob));
}

/** Parse a blob and check that the PCR value it states gives the authPolicy its TPM object really carries. */
function parseBlob(bytes: Buffer): MasterBlob {
  let b: MasterBlob;
  try {
    b = JSON.parse(bytes.toString('utf8')) as MasterBlob;
  } catch {
    throw new TeeError('protocol', 'the sealed master secret is not a TPM blob (not JSON)');
  }
  if (b?.format !== FORMAT || b.version !== 1 || !Number.isInteger(b.pcr) || b.pcr < 0 || b.pcr > 23 || !/^[0-9a-f]{64}$/.test(String(b.pcrValue))
    || typeof b.privateBytes !== 'string' || typeof b.publicBytes !== 'string') {
    throw new TeeError('protocol', `the sealed master secret is not a ${FORMAT} v1 blob`);
  }
  let authPolicy: string;
  try {
    authPolicy = readPublic(Reader.of(Buffer.from(b.publicBytes, 'base64').subarray(2))).authPolicy.toString('hex');
  } catch {
    throw new TeeError('protocol', 'the sealed master secret\'s TPM public area does not parse');
  }
  if (authPolicy !== policyOf(b.pcr, Buffer.from(b.pcrValue, 'hex')).toString('hex') || authPolicy !== b.policyDigest) {
    throw new TeeError('protocol', `the sealed master secret states PCR ${b.pcr} = ${b.pcrValue}, which is not its object's authPolicy (edited?)`);
  }
  return b;
}

async function pcrNow(tpm: Tpm, pcr: number): Promise<string> {
  return (await readPcrValues(tpm, [{ hashAlg: ALG.SHA256, pcrs: [pcr] }]))[0]!.toString('hex');
}

const mismatch = (b: MasterBlob, now: string | undefined) =>
  new TeeError('policy-mismatch', `the seal master secret is bound to PCR ${b.pcr} (sha256) = ${b.pcrValue}, it is ${now ?? 'unreadable'} now (the measured runtime changed)`, b.pcr);

/** Unseal; the TPM itself refuses (TPM_RC_POLICY_FAIL → policy-mismatch naming the PCR) when the PCR changed. */
export async function unsealMasterTpm(tpm: Tpm, parent: number, bytes: Buffer): Promise<Buffer> {
  const b = parseBlob(bytes);
  const sealed = {
    privateBytes: Buffer.from(b.privateBytes, 'base64'), publicBytes: Buffer.from(b.publicBytes, 'base64'),
    selection: [{ hashAlg: ALG.SHA256, pcrs: [b.pcr] }], policy: Buffer.from(b.policyDigest, 'hex'),
  };
  try {
    const secret = await unsealWithPcrs(tpm, parent, sealed, { saltKey: await saltKey(tpm, parent) });
    checkMasterSecret(secret);
    return secret;
  } catch (err) {
    if (!(err instanceof TpmError)) throw err;
    if (err.code === 'TPM_RC_POLICY_FAIL') throw mismatch(b, await pcrNow(tpm, b.pcr).catch(() => undefined));
    throw new TeeError('unwrap-failed', `the TPM could not unseal the master secret: ${err.code} (sealed by another TPM, or damaged)`);
  }
}

/** The PCR the blob is bound to still has its value (a PCR read; nothing is released). */
export async function checkMasterTpm(tpm: Tpm, bytes: Buffer): Promise<void> {
  const b = parseBlob(bytes);
  const now = await pcrNow(tpm, b.pcr);
  if (now !== b.pcrValue) throw mismatch(b, now);
}
