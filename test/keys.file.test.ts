/** File backend specifics: 0600 files, atomic writes, temp-file sweep, the loud warning, file:/// URIs. */
import { createPublicKey, generateKeyPairSync, verify as cryptoVerify } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FILE_BACKEND_WARNING } from '../hsm/file/store.js';
import { DAEMON_CALLER, openKeyService } from '../hsm/keys/index.js';
import { makeConfig, tempDir } from './helpers/keys.js';

let stateDir: string;
beforeEach(async () => {
  stateDir = await tempDir('edgeward-keys-filet-');
});
afterEach(async () => {
  await fs.rm(stateDir, { recursive: true, force: true });
});

function capture() {
  const lines: string[] = [];
  const stream = new Writable({ write(c: Buffer, _e, cb) { lines.push(c.toString()); cb(); } });
  return { logger: pino({ level: 'info' }, stream), lines };
}

describe('file backend', () => {
  it('warns at every open that it is not a hardware root of trust', async () => {
    for (let i = 0; i < 2; i++) {
      const { logger, lines } = capture();
      const keys = await openKeyService({ config: makeConfig(stateDir, { backend: 'file' }), stateDir, logger });
      await keys.close();
      const warn = lines.map((l) => JSON.parse(l) as { level: number; msg: string }).find((l) => l.msg === FILE_BACKEND_WARNING);
      expect(warn?.level).toBe(40);
      expect(warn?.msg).toMatch(/NOT a hardware root of trust/);
    }
  });

  it('key files and the handle secret are mode 0600 in a 0700 directory; no temp files remain', async () => {
    const keys = await openKeyService({ config: makeConfig(stateDir, { backend: 'file' }), stateDir, logger: pino({ level: 'silent' }) });
    await keys.createKeyPair(DAEMON_CALLER, { id: 'a' }, 'ec-p256');
    await keys.createSecretKey(DAEMON_CALLER, { id: 'b' }, 'aes-256-gcm');
    await keys.close();
    const dir = path.join(stateDir, 'keys');
    expect((await fs.stat(dir)).mode & 0o777).toBe(0o700);
    const names = await fs.readdir(dir);
    expect(names.sort()).toEqual(['edgeward%2Fedgeward%2Fa.key.json', 'edgeward%2Fedgeward%2Fb.key.json', 'handle-secret.bin']);
    for (const n of names) expect((await fs.stat(path.join(dir, n))).mode & 0o777).toBe(0o600);
  });

  it('temp files a killed writer left are swept at open and never read as keys', async () => {
    const dir = path.join(stateDir, 'keys');
    await fs.mkdir(dir, { recursive: true, mode: 0o700 });
    await fs.writeFile(path.join(dir, '.edgeward%2Fedgeward%2Fx.key.json.123.abc.tmp'), '{"v":1,"lab');
    const keys = await openKeyService({ config: makeConfig(stateDir, { backend: 'file' }), stateDir, logger: pino({ level: 'silent' }) });
    try {
      expect(await fs.readdir(dir)).not.toContain('.edgeward%2Fedgeward%2Fx.key.json.123.abc.tmp');
      expect(await keys.listKeys(DAEMON_CALLER)).toEqual([]);
    } finally {
      await keys.close();
    }
  });

  it('a handle from another state directory (another secret) is invalid here', async () => {
    const other = await tempDir('edgeward-keys-other-');
    const k1 = await openKeyService({ config: makeConfig(other, { backend: 'file' }), stateDir: other, logger: pino({ level: 'silent' }) });
    const k2 = await openKeyService({ config: makeConfig(stateDir, { backend: 'file' }), stateDir, logger: pino({ level: 'silent' }) });
    try {
      const h = await k1.createKeyPair(DAEMON_CALLER, { id: 'same-id' }, 'ec-p256');
      await k2.createKeyPair(DAEMON_CALLER, { id: 'same-id' }, 'ec-p256');
      await expect(k2.sign(DAEMON_CALLER, h, 'ecdsa-sha256', Buffer.from('x'))).rejects.toMatchObject({ tag: 'invalid-handle' });
    } finally {
      await k1.close();
      await k2.close();
      await fs.rm(other, { recursive: true, force: true });
    }
  });

  it('a file:/// key URI (preloaded key) signs; verified against the PEM\'s own public key', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const pem = path.join(stateDir, 'device-id.pem');
    await fs.writeFile(pem, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    const keys = await openKeyService({ config: makeConfig(stateDir, { backend: 'file' }), stateDir, logger: pino({ level: 'silent' }) });
    try {
      const h = await keys.loadKeyByUri(DAEMON_CALLER, pathToFileURL(pem).href);
      const sig = await keys.sign(DAEMON_CALLER, h, 'ecdsa-sha256', Buffer.from('m'));
      expect(cryptoVerify('sha256', Buffer.from('m'), publicKey, sig)).toBe(true);
      expect(createPublicKey({ key: await keys.getPublicKey(DAEMON_CALLER, h), format: 'der', type: 'spki' }).export({ type: 'spki', format: 'pem' }))
        .toBe(publicKey.export({ type: 'spki', format: 'pem' }));
    } finally {
      await keys.close();
    }
  });
});
