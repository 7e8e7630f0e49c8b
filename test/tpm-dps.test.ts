/**
 * DPS key import on swtpm with vectors made by tpm2-tools the way the DPS service makes them: the credential
 * by `tpm2_makecredential --tcti none` (software only, against the device's EK public and SRK name), the
 * inner-wrapped duplicate of a known HMAC key by `tpm2_duplicate` on a second swtpm (the "service" TPM)
 * towards the device SRK's public area. The device TPM has to accept them for the test to pass.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHmac, randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { Swtpm, tpm2 } from '../hsm/tpm/testing/swtpm.js';
import { Tpm } from '../hsm/tpm/tpm.js';
import { ensureIdentity } from '../hsm/tpm/identity.js';
import { DEFAULT_AUTH_KEY_HANDLE, DpsImportError, authKeyHandle, importDpsAuthKey, marshalAuthKeyBlob, parseAuthKeyBlob, signWithAuthKey } from '../hsm/tpm/dps.js';
import { Reader } from '../hsm/tpm/marshal.js';
import { TpmError } from '../hsm/tpm/rc.js';
import { openTransport } from '../hsm/tpm/transport.js';
import { Tap } from '../hsm/tpm/testing/tap.js';

/** Read tpm2_makecredential's output file: magic 0xBADCC0DE, version 1, TPM2B_ID_OBJECT, TPM2B_ENCRYPTED_SECRET. */
function readCredFile(b: Buffer): { credentialBlob: Buffer; secret: Buffer } {
  const r = new Reader(b);
  expect(r.u32()).toBe(0xbadcc0de);
  expect(r.u32()).toBe(1);
  const credentialBlob = r.b2();
  const secret = r.b2();
  r.end();
  return { credentialBlob, secret };
}

describe('DPS authentication key import (swtpm + tpm2-tools vectors)', () => {
  let device: Swtpm;
  let service: Swtpm;
  let tpm: Tpm;
  let tap: Tap;
  let work: string;

  /** Make a DPS-style blob for `hmacKey` aimed at the device's EK (or `ekPubFile`) and SRK. */
  let lastInner = Buffer.alloc(0);
  async function makeBlob(hmacKey: Buffer, opts: { ekPubFile?: string; nameFile?: string } = {}): Promise<string> {
    const inner = randomBytes(16);
    lastInner = inner;
    await fs.writeFile(path.join(work, 'hk.bin'), hmacKey);
    await fs.writeFile(path.join(work, 'inner.bin'), inner);
    const name = (await fs.readFile(path.join(work, opts.nameFile ?? 'srk.name'))).toString('hex');
    await tpm2(undefined, 'tpm2_makecredential', ['--tcti', 'none', '-u', opts.ekPubFile ?? 'ek.pub', '-s', 'inner.bin', '-n', name, '-o', 'cred.out'], { cwd: work });
    const cred = readCredFile(await fs.readFile(path.join(work, 'cred.out')));
    // The service TPM: a duplicable HMAC key holding hmacKey, duplicated to the device SRK with the inner key.
    const run = (tool: string, args: string[]): Promise<Buffer> => tpm2(service, tool, args, { cwd: work });
    await run('tpm2_import', ['-C', 'prim.ctx', '-G', 'hmac', '-i', 'hk.bin', '-u', 'k.pub', '-r', 'k.priv', '-a', 'sign|userwithauth', '-L', 'dup.policy']);
    await run('tpm2_flushcontext', ['-t']);
    await run('tpm2_load', ['-C', 'prim.ctx', '-u', 'k.pub', '-r', 'k.priv', '-c', 'k.ctx']);
    await run('tpm2_flushcontext', ['-t']);
    await run('tpm2_loadexternal', ['-C', 'o', '-u', 'srk.pub', '-c', 'newparent.ctx']);
    await run('tpm2_flushcontext', ['-t']);
    await run('tpm2_startauthsession', ['--policy-session', '-S', 's.ctx']);
    await run('tpm2_policycommandcode', ['-S', 's.ctx', 'TPM2_CC_Duplicate']);
    await run('tpm2_duplicate', ['-C', 'newparent.ctx', '-c', 'k.ctx', '-G', 'aes', '-i', 'inner.bin', '-p', 'session:s.ctx', '-r', 'dup.priv', '-s', 'dup.seed']);
    await run('tpm2_flushcontext', ['s.ctx']);
    await run('tpm2_flushcontext', ['-t']);
    const dup = await fs.readFile(path.join(work, 'dup.priv'));
    const seed = await fs.readFile(path.join(work, 'dup.seed'));
    const blob = marshalAuthKeyBlob({
      ...cred,
      duplicate: new Reader(dup).b2(),
      inSymSeed: new Reader(seed).b2(),
      publicBytes: await fs.readFile(path.join(work, 'k.pub')),
    });
    return blob.toString('base64');
  }

  beforeAll(async () => {
    [device, service] = await Promise.all([Swtpm.start(), Swtpm.start()]);
    work = device.stateDir;
    tap = new Tap(await openTransport(device.tcti));
    tpm = new Tpm(tap);
    await ensureIdentity(tpm);
    await tpm.close();
    await tpm2(device, 'tpm2_readpublic', ['-c', '0x81000001', '-o', 'srk.pub', '-n', 'srk.name'], { cwd: work });
    await tpm2(device, 'tpm2_readpublic', ['-c', '0x81010001', '-o', 'ek.pub', '-n', 'ek.name'], { cwd: work });
    const svc = (tool: string, args: string[]): Promise<Buffer> => tpm2(service, tool, args, { cwd: work });
    await svc('tpm2_createek', ['-c', '0x81010001', '-G', 'rsa', '-u', 'other-ek.pub']);
    await svc('tpm2_createprimary', ['-Q', '-C', 'o', '-c', 'prim.ctx']);
    await svc('tpm2_flushcontext', ['-t']);
    await svc('tpm2_startauthsession', ['-S', 'trial.ctx']);
    await svc('tpm2_policycommandcode', ['-S', 'trial.ctx', '-L', 'dup.policy', 'TPM2_CC_Duplicate']);
    await svc('tpm2_flushcontext', ['trial.ctx']);
  });
  afterAll(async () => {
    await tpm?.close();
    await Promise.all([device?.stop(), service?.stop()]);
  });

  it('activates, imports and persists the HMAC key; TPM2_HMAC then equals node:crypto HMAC with that key', async () => {
    const key = randomBytes(32);
    const blob = await makeBlob(key);
    tap.wire = [];
    expect(await importDpsAuthKey(tpm, blob)).toBe(DEFAULT_AUTH_KEY_HANDLE);
    // The inner wrapping key came out of ActivateCredential and went into Import only encrypted.
    expect(tap.saw(lastInner)).toBe(false);
    const sr = 'myscope/registrations/8ab8210e\n1700000000';
    const sig = await signWithAuthKey(tpm, Buffer.from(sr));
    expect(sig.toString('hex')).toBe(createHmac('sha256', key).update(sr).digest('hex'));
    // tpm2-tools sees the same persisted key.
    await tpm.close();
    await fs.writeFile(path.join(work, 'sr.txt'), sr);
    const tools = await tpm2(device, 'tpm2_hmac', ['-c', '0x81000100', '-g', 'sha256', 'sr.txt'], { cwd: work });
    expect(tools.toString('hex')).toBe(sig.toString('hex'));
  });

  it('replaces the auth key on a second import (re-provisioning)', async () => {
    const key2 = randomBytes(32);
    await importDpsAuthKey(tpm, await makeBlob(key2));
    const sig = await signWithAuthKey(tpm, Buffer.from('x'));
    expect(sig.equals(createHmac('sha256', key2).update('x').digest())).toBe(true);
  });

  it('rejects a blob made for another EK', async () => {
    const err = await importDpsAuthKey(tpm, await makeBlob(randomBytes(32), { ekPubFile: 'other-ek.pub' })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DpsImportError);
    expect((err as Error).message).toMatch(/^the TPM refused the DPS credential \(TPM_RC_\w+\): it was not made for this device's EK and SRK$/);
    expect((err as Error).cause).toBeInstanceOf(TpmError);
  });

  it('rejects a credential that names another object than the SRK', async () => {
    const err = await importDpsAuthKey(tpm, await makeBlob(randomBytes(32), { nameFile: 'ek.name' })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DpsImportError);
    expect(((err as Error).cause as TpmError).code).toBe('TPM_RC_INTEGRITY');
  });

  it('maps [tpm] auth_key_index to a persistent handle as aziot-tpmd does', () => {
    expect(authKeyHandle()).toBe(0x81000100);
    expect(authKeyHandle('0x00_01_00')).toBe(0x81000100);
    expect(authKeyHandle('0x01_00_05')).toBe(0x81010005);
    expect(authKeyHandle('7')).toBe(0x81000007);
    expect(() => authKeyHandle('0x1_00_00_00')).toThrow(/bad \[tpm\] auth_key_index "0x1_00_00_00"/);
  });

  it('rejects malformed and oversized blobs before touching the TPM', () => {
    expect(() => parseAuthKeyBlob(Buffer.from([0, 5, 1, 2]))).toThrow(/^malformed authenticationKey: truncated TPM data/);
    expect(() => parseAuthKeyBlob(Buffer.alloc(5000))).toThrow(/too large \(5000 bytes, limit 4096\)/);
  });
});
