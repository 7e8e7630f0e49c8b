/**
 * The certificate service over the file key backend, opened from a parsed config file (so it lives here,
 * beside the other cross-package tests: hsm/ does not import host/), its certificates verified with openssl.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseConfigText } from '../host/config/load.js';
import { silentLogger } from '../host/log.js';
import { openKeyService, DAEMON_CALLER, type KeyService } from '../hsm/keys/index.js';
import { CertService } from '../hsm/certs/service.js';
import { parsePemCerts } from '../hsm/certs/issue.js';

const DAY = 86_400_000;

function openssl(args: string[]): string {
  return execFileSync('openssl', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function freshSpki(): { spki: Buffer } {
  const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { spki: publicKey.export({ type: 'spki', format: 'der' }) };
}

let dir: string;
let keys: KeyService;
let clock: Date;
const env = () => ({ EDGEWARD_HOME: dir }) as NodeJS.ProcessEnv;
const open = (toml = '[provisioning]\nsource = "none"\n') =>
  CertService.open({ config: parseConfigText(toml, 't', env()).config, stateDir: path.join(dir, 'state'), keys, logger: silentLogger(), deviceId: 'dev1', hubHostname: 'hub.example', now: () => clock });

/** A fresh state directory, clock and key service per test. */
function useFreshState(): void {
  beforeEach(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'ew-certs-'));
    clock = new Date();
    const { config } = parseConfigText('[provisioning]\nsource = "none"\n', 't', env());
    keys = await openKeyService({ config, stateDir: path.join(dir, 'state'), logger: silentLogger() });
  });
  afterEach(async () => {
    await keys.close();
    rmSync(dir, { recursive: true, force: true });
  });
}

function write(name: string, text: string): string {
  const f = path.join(dir, name);
  writeFileSync(f, text);
  return f;
}

describe('certificate service: the Edge CA (file key backend, verified with openssl)', () => {
  useFreshState();

  it('quickstart Edge CA: root + Edge CA in the trust bundle, keys in the key service', async () => {
    const certs = await open();
    const bundle = certs.trustBundle();
    expect(parsePemCerts(bundle)).toHaveLength(2);
    const edge = write('edge.pem', certs.edgeCa.toString('pem'));
    expect(openssl(['verify', '-CAfile', write('bundle.pem', bundle), edge])).toContain(': OK');
    const text = openssl(['x509', '-in', edge, '-noout', '-text']);
    expect(text).toMatch(/CA:TRUE, pathlen:0/);
    expect(text).toMatch(/Certificate Sign/);
    expect(certs.edgeCa.subject).toBe('CN=aziot-edge CA dev1');
    expect(certs.edgeCa.notAfter.getTime() - clock.getTime()).toBeGreaterThan(89 * DAY);
    const ids = (await keys.listKeys(DAEMON_CALLER)).map((k) => k.id).sort();
    expect(ids).toEqual(['edge-ca-root.1', 'edge-ca.1']);
    // Persisted: a second open loads the same CA instead of issuing a new one.
    const again = await open();
    expect(again.edgeCa.serialNumber).toBe(certs.edgeCa.serialNumber);
  });

  it('the Edge CA renews at the threshold (80%), not before; old keys are retired', async () => {
    const certs = await open();
    const first = certs.edgeCa;
    let renewed = 0;
    certs.onRenewed(() => renewed++);
    clock = new Date(first.notBefore.getTime() + 0.79 * (first.notAfter.getTime() - first.notBefore.getTime()));
    expect(await certs.renewIfDue()).toBe(false);
    clock = new Date(first.notBefore.getTime() + 0.81 * (first.notAfter.getTime() - first.notBefore.getTime()));
    expect(certs.renewalDue()!.getTime()).toBeLessThan(clock.getTime());
    expect(await certs.renewIfDue()).toBe(true);
    expect(renewed).toBe(1);
    expect(certs.edgeCa.serialNumber).not.toBe(first.serialNumber);
    expect(certs.edgeCa.notAfter.getTime()).toBeGreaterThan(first.notAfter.getTime());
    expect((await keys.listKeys(DAEMON_CALLER)).map((k) => k.id).sort()).toEqual(['edge-ca-root.2', 'edge-ca.2']);
    const leaf = await certs.issueServerCertificate('m', 'm.local', freshSpki().spki);
    const bundle = write('bundle2.pem', certs.trustBundle());
    // The fake clock is weeks ahead: verify at that time.
    expect(openssl(['verify', '-attime', String(Math.floor(clock.getTime() / 1000)), '-CAfile', bundle, write('leaf2.pem', leaf.chainPem.split(/(?<=-----END CERTIFICATE-----\n)/)[0]!)])).toContain(': OK');
    // The persisted state is the renewed one.
    expect(readFileSync(path.join(dir, 'state', 'certs', 'edge-ca.pem'), 'utf8')).toBe(certs.edgeCa.toString('pem') + '\n');
  });

  it('a preloaded Edge CA from files is used, and trust_bundle_cert is appended', async () => {
    const key = path.join(dir, 'ca.key.pem');
    const cert = path.join(dir, 'ca.pem');
    openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert, '-days', '30', '-subj', '/CN=Contoso Edge CA', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,digitalSignature']);
    const extra = path.join(dir, 'extra.pem');
    openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', path.join(dir, 'x.key'), '-out', extra, '-days', '5', '-subj', '/CN=Extra Root']);
    const certs = await open(`trust_bundle_cert = "file://${extra}"\n[provisioning]\nsource = "none"\n[edge_ca]\ncert = "file://${cert}"\npk = "file://${key}"\n`);
    expect(certs.edgeCa.subject).toBe('CN=Contoso Edge CA');
    expect(certs.renewalDue()).toBeUndefined();
    expect(certs.trustBundle()).toContain(readFileSync(extra, 'utf8').trim());
    const leaf = await certs.issueServerCertificate('m', 'm.local', freshSpki().spki);
    expect(openssl(['verify', '-CAfile', cert, write('leaf.pem', leaf.chainPem.split(/(?<=-----END CERTIFICATE-----\n)/)[0]!)])).toContain(': OK');
    // A key that does not belong to the certificate is refused at start.
    const other = path.join(dir, 'other.key.pem');
    openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', other]);
    await expect(open(`[provisioning]\nsource = "none"\n[edge_ca]\ncert = "file://${cert}"\npk = "file://${other}"\n`)).rejects.toThrow(/does not match the public key/);
  });
});

describe('certificate service: module certificates (file key backend, verified with openssl)', () => {
  useFreshState();

  it('server and identity certificates verify against the trust bundle with the requested names', async () => {
    const certs = await open();
    const bundle = write('bundle.pem', certs.trustBundle());
    const server = await certs.issueServerCertificate('$edgeHub', 'gw.example.com', freshSpki().spki, ['10.0.0.7']);
    const leaf = write('server.pem', server.chainPem.split(/(?<=-----END CERTIFICATE-----\n)/)[0]!);
    expect(openssl(['verify', '-CAfile', bundle, '-purpose', 'sslserver', leaf])).toContain(': OK');
    const sans = openssl(['x509', '-in', leaf, '-noout', '-ext', 'subjectAltName']);
    expect(sans).toContain('DNS:gw.example.com');
    expect(sans).toContain('DNS:edgeHub');
    expect(sans).toContain('IP Address:10.0.0.7');
    expect(openssl(['x509', '-in', leaf, '-noout', '-subject'])).toMatch(/CN\s*=\s*gw\.example\.com/);
    const days = (server.notAfter.getTime() - clock.getTime()) / DAY;
    expect(days).toBeGreaterThan(29.9);
    expect(days).toBeLessThanOrEqual(30);

    const identity = await certs.issueIdentityCertificate('sensor', freshSpki().spki);
    const idLeaf = write('id.pem', identity.chainPem.split(/(?<=-----END CERTIFICATE-----\n)/)[0]!);
    expect(openssl(['verify', '-CAfile', bundle, '-purpose', 'sslclient', idLeaf])).toContain(': OK');
    expect(openssl(['x509', '-in', idLeaf, '-noout', '-ext', 'subjectAltName'])).toContain('URI:azureiot://hub.example/devices/dev1/modules/sensor');
  });

  it('module certificates never outlive the Edge CA', async () => {
    const certs = await open();
    clock = new Date(clock.getTime() + 70 * DAY); // 30-day leaf would end after the 90-day CA
    const server = await certs.issueServerCertificate('m', 'm.local', freshSpki().spki);
    expect(server.notAfter.getTime()).toBe(certs.edgeCa.notAfter.getTime());
  });
});
