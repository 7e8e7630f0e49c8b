/**
 * The provisioning backup, as aziot-identityd keeps one in its homedir: the last DPS result (hub, device
 * id, substatus, attestation kind, time) and a digest of the provisioning config it came from, in
 * `<state_dir>/provisioning.json`, written atomically (temp file, fsync, rename). A backup whose digest does
 * not match the current config is not valid: the device registers again.
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../../state/atomic.js';
import type { DpsConfig, AttestationKind } from './attestation.js';

export const BACKUP_FILE = 'provisioning.json';
const VERSION = 1;

export interface ProvisioningBackup {
  version: 1;
  source: 'dps';
  hubHostname: string;
  deviceId: string;
  registrationId: string;
  substatus: string;
  auth: AttestationKind;
  /** When DPS assigned the device (ISO 8601). */
  provisionedAt: string;
  /** sha256 of the provisioning config (canonical JSON) plus the payload file's content. */
  configDigest: string;
  payload?: unknown;
}

/** Digest of what the provisioning depends on; key values enter only hashed. */
export function provisioningDigest(p: DpsConfig, payloadText?: string): string {
  return createHash('sha256').update(canonical(p)).update('\0').update(payloadText ?? '').digest('hex');
}

function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object') return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`).join(',')}}`;
  return JSON.stringify(v);
}

export async function readBackup(stateDir: string): Promise<ProvisioningBackup | undefined> {
  const text = await fs.readFile(path.join(stateDir, BACKUP_FILE), 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  });
  if (text === undefined) return undefined;
  try {
    const b = JSON.parse(text) as ProvisioningBackup;
    if (b.version !== VERSION || typeof b.hubHostname !== 'string' || typeof b.deviceId !== 'string' || typeof b.configDigest !== 'string') return undefined;
    return b;
  } catch {
    return undefined; // a torn file cannot happen (atomic writes); a hand-edited one is just not valid
  }
}

export async function writeBackup(stateDir: string, b: ProvisioningBackup): Promise<void> {
  await fs.mkdir(stateDir, { recursive: true });
  await writeFileAtomic(path.join(stateDir, BACKUP_FILE), JSON.stringify(b, null, 2) + '\n', 0o600);
}
