/**
 * DPS key import on swtpm with vectors made by tpm2-tools the way the DPS service makes them
 * (test/fixtures/cloud/tpm-challenge.ts: `tpm2_makecredential --tcti none` against the device's EK public and
 * SRK name, `tpm2_duplicate` of a known HMAC key on a second swtpm towards the device SRK). The device TPM
 * has to accept them for the test to pass.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHmac, randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { Swtpm, tpm2 } from '../hsm/tpm/testing/swtpm.js';
import { Tpm } from '../hsm/tpm/tpm.js';
import { ensureIdentity } from '../hsm/tpm/identity.js';
import { DEFAULT_AUTH_KEY_HANDLE, DpsImportError, authKeyHandle, importDpsAuthKey, parseAuthKeyBlob, signWithAuthKey } from '../hsm/tpm/dps.js';
import { TpmChallenger, nameOfTpm2bPublic } from './fixtures/cloud/tpm-challenge.js';
import { TpmError } from '../hsm/tpm/rc.js';
import { openTransport } from '../hsm/tpm/transport.js';
import { Tap } from '../hsm/tpm/testing/tap.js';

describe('DPS authentication key import (swtpm + tpm2-tools vectors)', () => {
  let device: Swtpm;
  let challenger: TpmChallenger;
  let tpm: Tpm;
  let tap: Tap;
  let work: string;
  let target: { ekPub: Buffer; srkPub: Buffer };
  let otherEk: Buffer;
  let ekName: Buffer;

  /** A DPS-style blob for `hmacKey` aimed at the device's EK (or another EK) and SRK (or another name). */
  function makeBlob(hmacKey: Buffer, opts: { ekPub?: Buffer; name?: Buffer } = {}): Promise<string> {
    return challenger.makeBlob(hmacKey, { ekPub: opts.ekPub ?? target.ekPub, srkPub: target.srkPub, name: opts.name });
  }

  beforeAll(async () => {
    [device, challenger] = await Promise.all([Swtpm.start(), TpmChallenger.start()]);
    work = device.stateDir;
    tap = new Tap(await openTransport(device.tcti));
    tpm = new Tpm(tap);
    const id = await ensureIdentity(tpm);
    target = { ekPub: Buffer.from(id.endorsementKey, 'base64'), srkPub: Buffer.from(id.storageRootKey, 'base64') };
    await tpm.close();
    ekName = nameOfTpm2bPublic(target.ekPub);
    otherEk = await challenger.otherEk();
  });
  afterAll(async () => {
    await tpm?.close();
    await Promise.all([device?.stop(), challenger?.stop()]);
  });

  it('activates, imports and persists the HMAC key; TPM2_HMAC then equals node:crypto HMAC with that key', async () => {
    const key = randomBytes(32);
    const blob = await makeBlob(key);
    tap.wire = [];
    expect(await importDpsAuthKey(tpm, blob)).toBe(DEFAULT_AUTH_KEY_HANDLE);
    // The inner wrapping key came out of ActivateCredential and went into Import only encrypted.
    expect(tap.saw(challenger.lastInner)).toBe(false);
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
    const err = await importDpsAuthKey(tpm, await makeBlob(randomBytes(32), { ekPub: otherEk })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DpsImportError);
    expect((err as Error).message).toMatch(/^the TPM refused the DPS credential \(TPM_RC_\w+\): it was not made for this device's EK and SRK$/);
    expect((err as Error).cause).toBeInstanceOf(TpmError);
  });

  it('rejects a credential that names another object than the SRK', async () => {
    const err = await importDpsAuthKey(tpm, await makeBlob(randomBytes(32), { name: ekName })).catch((e: unknown) => e);
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
