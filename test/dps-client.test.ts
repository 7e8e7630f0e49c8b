/**
 * The DPS client and provisioning policy against the local DPS fixture (which verifies every credential):
 * symmetric key (individual and group-derived in the key service), X.509 with a file key, the backup and
 * auto_reprovisioning_mode, reprovisioning with each substatus, and the typed errors with their fix.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createHmac, randomBytes } from 'node:crypto';
import { promises as fs, statSync } from 'node:fs';
import path from 'node:path';
import { parseConfigText } from '../host/config/load.js';
import { silentLogger } from '../host/log.js';
import { IdentityService, IdentityError } from '../host/identity/identity.js';
import { StartupError } from '../host/errors.js';
import { BACKUP_FILE, readBackup } from '../host/cloud/dps/index.js';
import { openKeyService, type KeyService } from '../hsm/keys/index.js';
import { CloudCa } from './fixtures/cloud/ca.js';
import { DpsFixture, SUBSTATUSES, parseSas } from './fixtures/cloud/dps.js';
import { tempDir } from './helpers/keys.js';

let ca: CloudCa;
let dps: DpsFixture;
const open: KeyService[] = [];

beforeAll(async () => {
  ca = new CloudCa();
  dps = await DpsFixture.start({ ca });
});
afterAll(async () => {
  await dps?.stop();
  ca?.cleanup();
});
afterEach(async () => {
  for (const k of open.splice(0)) await k.close();
});

/** Open the identity service on `stateDir` with this provisioning (TOML after `[provisioning]`'s source). */
async function device(stateDir: string, attestation: string, opts: { top?: string; fixture?: DpsFixture; extra?: string } = {}): Promise<IdentityService> {
  const f = opts.fixture ?? dps;
  const text = `${opts.top ?? ''}state_dir = "${stateDir}"\ncloud_timeout_sec = 2\ncloud_retries = 0\n[provisioning]\nsource = "dps"\nglobal_endpoint = "${f.endpoint}"\nid_scope = "${f.idScope}"\n${opts.extra ?? ''}[provisioning.attestation]\n${attestation}`;
  const { config } = parseConfigText(text, 'test', { EDGEWARD_HOME: stateDir } as NodeJS.ProcessEnv);
  const keys = await openKeyService({ config, stateDir, logger: silentLogger() });
  open.push(keys);
  return IdentityService.open({ config, keys, logger: silentLogger(), dpsTuning: { ca: ca.caPem, pollMs: 5 } });
}

function sym(regId: string, key: Buffer, field = 'symmetric_key'): string {
  return `method = "symmetric_key"\nregistration_id = "${regId}"\n${field} = { value = "${key.toString('base64')}" }\n`;
}

/** The HMAC of a SAS token, recomputed with `key`. */
function verifies(token: string, key: Buffer): boolean {
  const f = parseSas(token)!;
  return createHmac('sha256', key).update(`${f.sr}\n${f.se}`).digest('base64') === decodeURIComponent(f.sig);
}

const of = (regId: string) => dps.requests.filter((q) => q.path.includes(`/registrations/${regId}/`));

describe('DPS symmetric key', () => {
  it('individual enrollment: registers (aziot SAS: lower-cased, percent-encoded sr, skn=registration), writes the backup, signs device SAS with the key', async () => {
    const key = randomBytes(32);
    dps.enrollSymmetric('Dev-Sym-1', key, { hub: 'hub-a.fixture.test' });
    dps.assigningPolls = 2;
    const dir = await tempDir('ew-dps-');
    const id = await device(dir, sym('Dev-Sym-1', key));
    dps.assigningPolls = 0;
    expect(id.device).toMatchObject({ hubHostname: 'hub-a.fixture.test', deviceId: 'Dev-Sym-1', authType: 'sas' });
    expect(of('Dev-Sym-1').map((q) => `${q.method} ${q.status} ${q.auth} ${q.apiVersion}`)).toEqual(['PUT 202 sas 2021-06-01', 'GET 202 sas 2021-06-01', 'GET 202 sas 2021-06-01', 'GET 200 sas 2021-06-01']);
    expect(of('Dev-Sym-1')[0]!.sr).toBe(`${dps.idScope.toLowerCase()}%2Fregistrations%2Fdev-sym-1`);
    const token = await id.deviceSasToken('hub-a.fixture.test/devices/Dev-Sym-1', 60);
    expect(verifies(token, key)).toBe(true);
    const b = await readBackup(dir);
    expect(b).toMatchObject({ source: 'dps', hubHostname: 'hub-a.fixture.test', deviceId: 'Dev-Sym-1', substatus: 'initialAssignment', auth: 'symmetric_key', registrationId: 'Dev-Sym-1' });
    expect(statSync(path.join(dir, BACKUP_FILE)).mode & 0o777).toBe(0o600);
    expect(await fs.readFile(path.join(dir, BACKUP_FILE), 'utf8')).not.toContain(key.toString('base64'));
    expect(id.provisioningInfo()).toMatchObject({ source: 'dps', auth: 'symmetric_key', endpoint: dps.endpoint, scope_id: dps.idScope, registration_id: 'Dev-Sym-1', hub: 'hub-a.fixture.test', state: 'provisioned' });
  });

  it('group enrollment: the device key is derived from the group key inside the key service', async () => {
    const group = randomBytes(64);
    dps.enrollGroup('line3', group, { hub: 'hub-g.fixture.test' });
    const id = await device(await tempDir('ew-dps-'), sym('gw-17', group, 'enrollment_group_key'));
    expect(id.device.hubHostname).toBe('hub-g.fixture.test');
    const derived = createHmac('sha256', group).update('gw-17').digest();
    expect(verifies(await id.deviceSasToken('hub-g.fixture.test/devices/gw-17', 60), derived)).toBe(true);
    expect(verifies(await id.deviceSasToken('hub-g.fixture.test/devices/gw-17', 60), group)).toBe(false);
  });

  it('moduleSasKeys: primary is the key that signs the module\'s workload SAS tokens', async () => {
    const key = randomBytes(32);
    dps.enrollSymmetric('dev-mod', key);
    const id = await device(await tempDir('ew-dps-'), sym('dev-mod', key));
    const { primary, secondary } = await id.moduleSasKeys('filter');
    expect(primary.length).toBe(32);
    expect(secondary.equals(primary)).toBe(false);
    expect(verifies(await id.sasToken('filter', id.moduleAudience('filter'), 60), primary)).toBe(true);
    expect(verifies(await id.sasToken('other', id.moduleAudience('other'), 60), primary)).toBe(false);
  });

  it('a wrong key: StartupError naming the refusal and the fix, no backup', async () => {
    dps.enrollSymmetric('dev-wrong', randomBytes(32));
    const dir = await tempDir('ew-dps-');
    const err = await device(dir, sym('dev-wrong', randomBytes(32))).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StartupError);
    expect((err as Error).message).toBe('DPS provisioning of dev-wrong failed: DPS refused the credentials of dev-wrong: 401 (401002): check the registration id and the attestation (key, certificate or TPM) against the DPS enrollment');
    expect(await readBackup(dir)).toBeUndefined();
  });

  it('a disabled enrollment and a failed assignment are typed errors with their fix', async () => {
    const key = randomBytes(32);
    dps.enrollSymmetric('dev-off', key, { disabled: true });
    const e1 = await device(await tempDir('ew-dps-'), sym('dev-off', key)).catch((e: unknown) => e);
    expect((e1 as Error).message).toMatch(/the enrollment for dev-off is disabled: enable the enrollment \(or its group\) in the Device Provisioning Service$/);
    dps.setDisabled('dev-off', false);
    dps.failAssignment('dev-off', 400207, 'Custom allocation failed');
    const e2 = await device(await tempDir('ew-dps-'), sym('dev-off', key)).catch((e: unknown) => e);
    expect((e2 as Error).message).toContain('DPS registration of dev-off failed (400207 Custom allocation failed): see the DPS error code');
  });
});

describe('DPS backup and auto_reprovisioning_mode', () => {
  it('Dynamic: a valid backup is used at start without DPS; with DPS down the device still starts; AlwaysOnStartup re-registers', async () => {
    const own = await DpsFixture.start({ ca, port: 0 });
    const key = randomBytes(32);
    own.enrollSymmetric('dev-bk', key, { hub: 'hub-b.fixture.test' });
    const dir = await tempDir('ew-dps-');
    await device(dir, sym('dev-bk', key), { fixture: own });
    expect(own.requests.length).toBe(2);
    await device(dir, sym('dev-bk', key), { fixture: own });
    expect(own.requests.length).toBe(2); // Dynamic: from the backup
    await device(dir, sym('dev-bk', key), { fixture: own, top: 'auto_reprovisioning_mode = "AlwaysOnStartup"\n' });
    expect(own.requests.length).toBe(4);
    await own.stop();
    const offline = await device(dir, sym('dev-bk', key), { fixture: own });
    expect(offline.device.hubHostname).toBe('hub-b.fixture.test');
    const always = await device(dir, sym('dev-bk', key), { fixture: own, top: 'auto_reprovisioning_mode = "AlwaysOnStartup"\n' });
    expect(always.provisioningInfo()).toMatchObject({ state: 'from-backup', lastError: { kind: 'network' } });
  });

  it('a changed provisioning config invalidates the backup (registers again); without backup and DPS, a StartupError', async () => {
    const key = randomBytes(32);
    dps.enrollSymmetric('dev-cfg', key);
    const dir = await tempDir('ew-dps-');
    await device(dir, sym('dev-cfg', key));
    expect(of('dev-cfg').length).toBe(2);
    const payload = path.join(dir, 'payload.json');
    await fs.writeFile(payload, '{"line":3}');
    const id = await device(dir, sym('dev-cfg', key), { extra: `payload = { uri = "file://${payload}" }\n` });
    expect(of('dev-cfg').length).toBe(4);
    expect(of('dev-cfg')[2]!.body).toEqual({ registrationId: 'dev-cfg', payload: { line: 3 } });
    expect(id.provisioningInfo()).toMatchObject({ payload: { echo: { line: 3 } } });
    const down = await DpsFixture.start({ ca });
    await down.stop();
    const err = await device(await tempDir('ew-dps-'), sym('dev-cfg', key), { fixture: down }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StartupError);
    expect((err as Error).message).toMatch(/^DPS provisioning of dev-cfg failed: DPS 127\.0\.0\.1:\d+ refused the connection: .*: check the network, DNS and trust of global_endpoint/);
  });

  it('reprovision: each substatus updates the device identity, the backup and tells listeners', async () => {
    const key = randomBytes(32);
    dps.enrollSymmetric('dev-move', key, { hub: 'hub-1.fixture.test' });
    const dir = await tempDir('ew-dps-');
    const id = await device(dir, sym('dev-move', key));
    const heard: string[] = [];
    id.onReprovisioned((c) => heard.push(`${c.previous.hubHostname}->${id.device.hubHostname} ${c.substatus}`));
    const hubs = ['hub-2.fixture.test', 'hub-3.fixture.test', 'hub-4.fixture.test', 'hub-1.fixture.test'];
    for (const [i, sub] of SUBSTATUSES.entries()) {
      dps.reassign('dev-move', hubs[i]!, sub);
      const d = await id.reprovision('test');
      expect(d.hubHostname).toBe(hubs[i]);
      expect((await readBackup(dir))?.substatus).toBe(sub);
    }
    expect(heard).toEqual(['hub-1.fixture.test->hub-2.fixture.test initialAssignment', 'hub-2.fixture.test->hub-3.fixture.test deviceDataMigrated', 'hub-3.fixture.test->hub-4.fixture.test deviceDataReset', 'hub-4.fixture.test->hub-1.fixture.test reprovisionedToInitialAssignment']);
  });
});

describe('DPS X.509 with a file key', () => {
  it('registers with the TLS client certificate; the device has no SAS key', async () => {
    const groupCa = ca.enrollmentCa('x-fleet');
    dps.enrollX509Ca('x-fleet', groupCa.cert, { hub: 'hub-x.fixture.test' });
    const dev = ca.device('x-dev', 'x-dev-1', 'x-fleet');
    const id = await device(await tempDir('ew-dps-'), `method = "x509"\nidentity_cert = "file://${dev.certFile}"\nidentity_pk = "file://${dev.keyFile}"\n`);
    expect(id.device).toMatchObject({ hubHostname: 'hub-x.fixture.test', deviceId: 'x-dev-1', authType: 'x509' });
    expect(of('x-dev-1').every((q) => q.auth === 'x509')).toBe(true);
    const err = await id.deviceSasToken('hub-x.fixture.test/devices/x-dev-1', 60).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IdentityError);
    expect((err as IdentityError).code).toBe('x509-device');
  });

  it('a pkcs11: identity_pk with a key service that is not that token is refused (no software fallback)', async () => {
    const dev = ca.device('x-dev2', 'x-dev-2', 'x-fleet');
    const err = await device(await tempDir('ew-dps-'), `method = "x509"\nidentity_cert = "file://${dev.certFile}"\nidentity_pk = "pkcs11:token=t;object=device-id"\n`).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StartupError);
    expect((err as Error).message).toMatch(/^provisioning\.attestation: .*pkcs11/);
    expect((err as Error).message).toMatch(/\[keys\] backend = "pkcs11"/);
  });
});

describe('DPS preflight (what config apply, check and the daemon refuse up front)', () => {
  it('names a pkcs11: X.509 key, a missing identity certificate and a payload that is not JSON', async () => {
    const { preflightProblems } = await import('../host/daemon/preflight.js');
    const dir = await tempDir('ew-dps-');
    const payload = path.join(dir, 'payload.json');
    await fs.writeFile(payload, 'not json');
    const cfg = (att: string) => parseConfigText(`state_dir = "${dir}"\n[provisioning]\nsource = "dps"\nid_scope = "0ne00X"\npayload = { uri = "file://${payload}" }\n[provisioning.attestation]\n${att}`, 't', { EDGEWARD_HOME: dir } as NodeJS.ProcessEnv).config;
    const missing = path.join(dir, 'nope.pem');
    expect(await preflightProblems(cfg(`method = "x509"\nidentity_cert = "file://${missing}"\nidentity_pk = "pkcs11:object=id"\n`))).toEqual([
      { path: 'provisioning.attestation.identity_pk', message: expect.stringMatching(/^a pkcs11: identity_pk is used where it is, in the key service's token .*set \[keys\] backend = "pkcs11"/) },
      { path: 'provisioning.payload', message: `${payload} is not JSON: fix the DPS payload file` },
      { path: 'provisioning.attestation.identity_cert', message: `cannot read ${missing} (ENOENT): put the file there or fix the URI` },
    ]);
  });

  it('symmetric_key and enrollment_group_key: exactly one', () => {
    const text = (att: string) => `[provisioning]\nsource = "dps"\nid_scope = "0ne00X"\n[provisioning.attestation]\nmethod = "symmetric_key"\nregistration_id = "r"\n${att}`;
    expect(() => parseConfigText(text(''), 't', { EDGEWARD_HOME: '/tmp/x' } as NodeJS.ProcessEnv)).toThrow(/give symmetric_key \(the device key\) or enrollment_group_key \(the group key\), exactly one/);
    expect(() => parseConfigText(text('symmetric_key = { value = "AA==" }\nenrollment_group_key = { value = "AA==" }\n'), 't', { EDGEWARD_HOME: '/tmp/x' } as NodeJS.ProcessEnv)).toThrow(/exactly one/);
  });
});
