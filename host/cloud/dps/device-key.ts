/**
 * The device's HMAC keys in the key service (`device-id`, `dps-group-key`) and their import. Apart from
 * attestation.ts so a manual SAS device imports its key without loading DPS, TLS or the TPM stack.
 */
import { createHmac } from 'node:crypto';
import type { Logger } from '../../log.js';
import { DAEMON_CALLER, KeyError, type KeyService } from '../../../hsm/keys/index.js';
import { DpsError } from './errors.js';

export const DEVICE_KEY_ID = 'device-id';
export const GROUP_KEY_ID = 'dps-group-key';

/**
 * Import an HMAC key under `id` in the daemon namespace. If one is there, keep it when it is the same key
 * (compared by HMAC over a fixed probe, so the key is never read back) and replace it when the config changed.
 */
export async function importKeyOnce(keys: KeyService, id: string, key: Buffer, log: Logger): Promise<string> {
  if (key.length === 0) throw new DpsError('config', `the ${id} key is empty`, 'give the base64 key');
  try {
    return await keys.importSecretKey(DAEMON_CALLER, { id }, 'hmac-sha256', key);
  } catch (err) {
    if (!(err instanceof KeyError) || err.tag !== 'already-exists') throw err;
  }
  const existing = await keys.loadKey(DAEMON_CALLER, { id });
  const probe = Buffer.from('edgeward device key probe');
  const same = (await keys.sign(DAEMON_CALLER, existing, 'hmac-sha256', probe)).equals(createHmac('sha256', key).update(probe).digest());
  if (same) return existing;
  log.warn({ keyId: id }, 'key changed in the config; replacing the stored key');
  await keys.deleteKey(DAEMON_CALLER, existing);
  return keys.importSecretKey(DAEMON_CALLER, { id }, 'hmac-sha256', key);
}
