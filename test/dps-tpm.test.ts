/**
 * DPS TPM attestation end to end on swtpm: the identity service reads the EK/SRK from the TPM `[tpm] tcti`
 * names (key backend: file), sends them without authorization, imports the authenticationKey of the 401
 * (made by tpm2-tools against this TPM's EK and SRK), signs the registration SAS with TPM2_HMAC, imports the
 * key of the assigned answer, and signs its device SAS with it. A new key on reprovisioning is re-imported.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createHmac } from 'node:crypto';
import { parseConfigText } from '../host/config/load.js';
import { silentLogger } from '../host/log.js';
import { IdentityService } from '../host/identity/identity.js';
import { StartupError } from '../host/errors.js';
import { openKeyService, type KeyService } from '../hsm/keys/index.js';
import { Swtpm } from '../hsm/tpm/testing/swtpm.js';
import { CloudCa } from './fixtures/cloud/ca.js';
import { DpsFixture, parseSas } from './fixtures/cloud/dps.js';
import { TpmChallenger } from './fixtures/cloud/tpm-challenge.js';
import { tempDir } from './helpers/keys.js';

let ca: CloudCa;
let dps: DpsFixture;
let challenger: TpmChallenger;
let device: Swtpm;
const open: KeyService[] = [];

beforeAll(async () => {
  ca = new CloudCa();
  [challenger, device] = await Promise.all([TpmChallenger.start(), Swtpm.start()]);
  dps = await DpsFixture.start({ ca, tpm: challenger, hub: 'hub-tpm.fixture.test' });
});
afterAll(async () => {
  await dps?.stop();
  await Promise.all([challenger?.stop(), device?.stop()]);
  ca?.cleanup();
});
afterEach(async () => {
  for (const k of open.splice(0)) await k.close();
});

async function tpmDevice(regId: string): Promise<IdentityService> {
  const stateDir = await tempDir('ew-dpstpm-');
  const text = `state_dir = "${stateDir}"\ncloud_timeout_sec = 10\ncloud_retries = 0\n[tpm]\ntcti = "${device.tcti}"\n[provisioning]\nsource = "dps"\nglobal_endpoint = "${dps.endpoint}"\nid_scope = "${dps.idScope}"\n[provisioning.attestation]\nmethod = "tpm"\nregistration_id = "${regId}"\n`;
  const { config } = parseConfigText(text, 'test', { EDGEWARD_HOME: stateDir } as NodeJS.ProcessEnv);
  const keys = await openKeyService({ config, stateDir, logger: silentLogger() });
  open.push(keys);
  return IdentityService.open({ config, keys, logger: silentLogger(), dpsTuning: { ca: ca.caPem, pollMs: 5 } });
}

function verifies(token: string, key: Buffer): boolean {
  const f = parseSas(token)!;
  return createHmac('sha256', key).update(`${f.sr}\n${f.se}`).digest('base64') === decodeURIComponent(f.sig);
}
const of = (regId: string) => dps.requests.filter((q) => q.path.includes(`/registrations/${regId}/`)).map((q) => `${q.method} ${q.status} ${q.auth}`);

describe('DPS TPM attestation (swtpm)', () => {
  it('challenge → import → TPM-signed SAS → assigned; the device SAS is signed by the TPM with the DPS key', async () => {
    dps.enrollTpm('tpm-dev-1');
    const id = await tpmDevice('tpm-dev-1');
    expect(id.device).toMatchObject({ hubHostname: 'hub-tpm.fixture.test', deviceId: 'tpm-dev-1', authType: 'sas' });
    expect(of('tpm-dev-1')).toEqual(['PUT 401 tpm', 'PUT 202 sas', 'GET 200 sas']);
    const first = dps.requests.find((q) => q.path.includes('tpm-dev-1'))!.body as { tpm: { endorsementKey: string; storageRootKey: string } };
    expect(Buffer.from(first.tpm.endorsementKey, 'base64').length).toBeGreaterThan(256);
    const key = dps.tpmKeyOf('tpm-dev-1')!;
    expect(verifies(await id.deviceSasToken('hub-tpm.fixture.test/devices/tpm-dev-1', 60), key)).toBe(true);
    expect(id.provisioningInfo()).toMatchObject({ source: 'dps', auth: 'tpm', registration_id: 'tpm-dev-1' });
  });

  it('a new authenticationKey in the assigned answer is imported (reprovisioning rotates the key)', async () => {
    dps.enrollTpm('tpm-dev-2');
    const id = await tpmDevice('tpm-dev-2');
    const old = dps.tpmKeyOf('tpm-dev-2')!;
    dps.rotateTpmKeyOnAssign = true;
    try {
      await id.reprovision('test');
    } finally {
      dps.rotateTpmKeyOnAssign = false;
    }
    const fresh = dps.tpmKeyOf('tpm-dev-2')!;
    expect(fresh.equals(old)).toBe(false);
    const token = await id.deviceSasToken('hub-tpm.fixture.test/devices/tpm-dev-2', 60);
    expect(verifies(token, fresh)).toBe(true);
    expect(verifies(token, old)).toBe(false);
  });

  it('an enrollment for another EK refuses the device: StartupError with the fix', async () => {
    dps.enrollTpm('tpm-dev-3', { ekPub: (await challenger.otherEk()).toString('base64') });
    const err = await tpmDevice('tpm-dev-3').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StartupError);
    expect((err as Error).message).toBe('DPS provisioning of tpm-dev-3 failed: DPS refused the credentials of tpm-dev-3: 401 (401002): check the registration id and the attestation (key, certificate or TPM) against the DPS enrollment');
    expect(of('tpm-dev-3')).toEqual(['PUT 401 tpm']);
  });
});
