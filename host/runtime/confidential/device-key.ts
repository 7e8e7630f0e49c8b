/**
 * A device-key directory: what `edgeward confidential device-key --out DIR` writes and what
 * `edgeward confidential seal --device-key DIR` reads. `device-key.pem` is the workload-decryption public key
 * (SPKI PEM, RSA-2048); `policy.json` is `{ version: 1, backend, keyId, policy }`, the policy the key is
 * bound to (for a TPM: the PCR index, its value and the PolicyPCR digest).
 *
 * The publisher should check the policy (and, once `edgeward attest` exists, a quote over it) before trusting
 * it: the directory is not signed by the device.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../../../hsm/support/atomic.js';
import { keyIdOf, type DeviceKeyInfo } from '../../../hsm/tee/port.js';
import { PackageError, policySchema, type KeyPolicy } from './format.js';

export const DEVICE_KEY_FILE = 'device-key.pem';
export const POLICY_FILE = 'policy.json';

export interface DeviceKeyDir {
  publicKey: KeyObject;
  keyId: string;
  policy?: KeyPolicy;
}

async function readSmall(file: string, max: number): Promise<string | undefined> {
  const st = await fs.stat(file).catch(() => undefined);
  if (!st) return undefined;
  if (!st.isFile() || st.size > max) throw new PackageError('malformed', `${file}: not a regular file of at most ${max} bytes`);
  return fs.readFile(file, 'utf8');
}

/** Read a device-key directory; the policy file is optional, the key is not. */
export async function readDeviceKeyDir(dir: string): Promise<DeviceKeyDir> {
  const pem = await readSmall(path.join(dir, DEVICE_KEY_FILE), 16 * 1024);
  if (pem === undefined) throw new PackageError('malformed', `${dir}: no ${DEVICE_KEY_FILE} (export it on the device with \`edgeward confidential device-key --out DIR\`)`);
  let publicKey: KeyObject;
  try {
    publicKey = createPublicKey(pem);
  } catch {
    throw new PackageError('malformed', `${path.join(dir, DEVICE_KEY_FILE)}: not a PEM public key`);
  }
  const keyId = keyIdOf(publicKey);
  const text = await readSmall(path.join(dir, POLICY_FILE), 64 * 1024);
  if (text === undefined) return { publicKey, keyId };
  let doc: { keyId?: unknown; policy?: unknown };
  try {
    doc = JSON.parse(text) as typeof doc;
  } catch {
    throw new PackageError('malformed', `${path.join(dir, POLICY_FILE)}: not JSON`);
  }
  if (doc.keyId !== keyId) throw new PackageError('malformed', `${path.join(dir, POLICY_FILE)} describes key ${String(doc.keyId)}, ${DEVICE_KEY_FILE} is ${keyId}`);
  const policy = policySchema.safeParse(doc.policy);
  if (!policy.success) throw new PackageError('malformed', `${path.join(dir, POLICY_FILE)}: policy: ${policy.error.issues[0]?.message ?? 'invalid'}`);
  return { publicKey, keyId, policy: policy.data };
}

/** Write a device-key directory (public material only; mode 0644). */
export async function writeDeviceKeyDir(dir: string, backend: string, info: DeviceKeyInfo): Promise<void> {
  await fs.mkdir(dir, { recursive: true });
  await writeFileAtomic(path.join(dir, DEVICE_KEY_FILE), info.publicPem, 0o644);
  await writeFileAtomic(path.join(dir, POLICY_FILE), JSON.stringify({ version: 1, backend, keyId: info.keyId, policy: info.policy }, null, 2) + '\n', 0o644);
}
