import { createHmac, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { openFileKeyStore } from '../file/store.js';
import { createAuthorizer } from './authz.js';
import { HandleCodec } from './handles.js';
import { createKeyService } from './service.js';
import { DAEMON_CALLER, type KeyService, type KeyStore } from './types.js';

const silent = pino({ level: 'silent' });
const hmac = (key: Buffer, data: string | Buffer) => createHmac('sha256', key).update(data).digest();

/** A file key store that counts the HMACs it computes (derivations go through `sign` on this backend). */
async function countingService(dir: string): Promise<{ keys: KeyService; hmacs: () => number }> {
  const store = await openFileKeyStore(dir, silent);
  let n = 0;
  const counted: KeyStore = Object.assign(Object.create(store) as KeyStore, {
    sign: (...args: Parameters<KeyStore['sign']>) => (n++, store.sign(...args)),
  });
  return { keys: createKeyService({ store: counted, handles: new HandleCodec(randomBytes(32)), authorize: createAuthorizer([]), logger: silent }), hmacs: () => n };
}

describe('derived keys (module SAS keys): the derived secret is remembered, and forgotten with its base key', () => {
  let dir: string | undefined;
  afterEach(() => dir && rmSync(dir, { recursive: true, force: true }));

  it('signs with a derived key derive once; a replaced base key is never signed with again', async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'ew-derived-'));
    const { keys, hmacs } = await countingService(dir);
    const first = randomBytes(32);
    const base = await keys.importSecretKey(DAEMON_CALLER, { id: 'master' }, 'hmac-sha256', first);
    const moduleKey = await keys.deriveKey(DAEMON_CALLER, base, Buffer.from('sensor'));
    for (let i = 0; i < 5; i++) expect(await keys.sign(DAEMON_CALLER, moduleKey, 'hmac-sha256', Buffer.from(`m${i}`))).toEqual(hmac(hmac(first, 'sensor'), `m${i}`));
    expect(hmacs()).toBe(1);

    // The base key replaced under the same id (as importKeyOnce does when the config's device key changes).
    await keys.deleteKey(DAEMON_CALLER, base);
    const second = randomBytes(32);
    await keys.importSecretKey(DAEMON_CALLER, { id: 'master' }, 'hmac-sha256', second);
    expect(await keys.sign(DAEMON_CALLER, moduleKey, 'hmac-sha256', Buffer.from('m'))).toEqual(hmac(hmac(second, 'sensor'), 'm'));
    await keys.close();
  });

  it('a deleted base key: its derived keys stop signing', async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'ew-derived-'));
    const { keys } = await countingService(dir);
    const base = await keys.importSecretKey(DAEMON_CALLER, { id: 'master' }, 'hmac-sha256', randomBytes(32));
    const moduleKey = await keys.deriveKey(DAEMON_CALLER, base, Buffer.from('sensor'));
    await keys.sign(DAEMON_CALLER, moduleKey, 'hmac-sha256', Buffer.from('m'));
    await keys.deleteKey(DAEMON_CALLER, base);
    await expect(keys.sign(DAEMON_CALLER, moduleKey, 'hmac-sha256', Buffer.from('m'))).rejects.toMatchObject({ tag: 'not-found' });
    await keys.close();
  });
});
