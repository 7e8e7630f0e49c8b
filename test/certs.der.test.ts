/**
 * The certificate service issues with its own DER encoder (hsm/certs/der.ts), not @peculiar/x509: for the
 * same request (serial, names, validity, key) the to-be-signed certificate is byte for byte the one
 * @peculiar/x509 (hsm/certs/issue.ts) makes, and the signed certificate verifies under its issuer (openssl).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseConfigText } from '../host/config/load.js';
import { silentLogger } from '../host/log.js';
import { openKeyService, DAEMON_CALLER, type KeyService, type KeyPairType } from '../hsm/keys/index.js';
import { signingKeyFor } from '../hsm/certs/hsm-crypto.js';
import { issueCertificate, type CertRequest } from '../hsm/certs/issue.js';
import { issueCertificateDer, randomSerial, subjectDerOf } from '../hsm/certs/der.js';

let dir: string;
let keys: KeyService;

beforeEach(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'ew-der-'));
  const env = { EDGEWARD_HOME: dir } as NodeJS.ProcessEnv;
  const { config } = parseConfigText('[provisioning]\nsource = "none"\n', 't', env);
  keys = await openKeyService({ config, stateDir: path.join(dir, 'state'), logger: silentLogger() });
});
afterEach(async () => {
  await keys.close();
  rmSync(dir, { recursive: true, force: true });
});

/** The tbsCertificate TLV of a certificate (DER). */
function tbsOf(der: Uint8Array): Buffer {
  const lenAt = (at: number): [number, number] => {
    const first = der[at]!;
    if (first < 0x80) return [first, at + 1];
    let n = 0;
    for (let k = 0; k < (first & 0x7f); k++) n = n * 256 + der[at + 1 + k]!;
    return [n, at + 1 + (first & 0x7f)];
  };
  const [, tbsAt] = lenAt(1);
  const [n, body] = lenAt(tbsAt + 1);
  return Buffer.from(der.subarray(tbsAt, body + n));
}

async function keyPair(id: string, type: KeyPairType = 'ec-p256') {
  const handle = await keys.createKeyPair(DAEMON_CALLER, { id }, type);
  return { key: signingKeyFor(handle, type), spki: await keys.getPublicKey(DAEMON_CALLER, handle) };
}

function verifies(leafPem: string, caPems: string[]): string {
  const ca = path.join(dir, 'ca.pem');
  const leaf = path.join(dir, 'leaf.pem');
  writeFileSync(ca, caPems.join('\n') + '\n');
  writeFileSync(leaf, leafPem + '\n');
  return execFileSync('openssl', ['verify', '-no_check_time', '-partial_chain', '-CAfile', ca, leaf], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

describe('certificate issuance without @peculiar/x509', () => {
  it('root, Edge CA, server and identity certificates: the same to-be-signed bytes as @peculiar/x509, verified by openssl', async () => {
    const root = await keyPair('root');
    const ca = await keyPair('ca', 'ec-p384');
    const t0 = new Date('2026-01-02T03:04:05.678Z');
    const far = new Date('2061-05-06T07:08:09Z'); // GeneralizedTime from 2050
    const rootReq: CertRequest = { subject: 'CN=Edgeward root CA dev\\,1', publicKey: root.spki, notBefore: t0, notAfter: far, kind: 'root-ca', serialNumber: randomSerial() };
    const rootRef = await issueCertificate(keys, rootReq, { selfKey: root.key });
    const rootNew = await issueCertificateDer(keys, rootReq, { selfKey: root.key });
    expect(tbsOf(rootNew.der).equals(tbsOf(Buffer.from(rootRef.rawData)))).toBe(true);

    const caReq: CertRequest = { subject: 'CN=aziot-edge CA dev1', publicKey: ca.spki, notBefore: t0, notAfter: new Date('2026-04-02T03:04:05Z'), kind: 'intermediate-ca', serialNumber: 'ff01' };
    const caRef = await issueCertificate(keys, caReq, { cert: rootRef, key: root.key });
    const caNew = await issueCertificateDer(keys, caReq, { certDer: rootNew.der, key: root.key });
    expect(tbsOf(caNew.der).equals(tbsOf(Buffer.from(caRef.rawData)))).toBe(true);
    expect(caNew.notAfter.toISOString()).toBe('2026-04-02T03:04:05.000Z');
    expect(verifies(caNew.pem, [rootNew.pem])).toContain('OK');

    const leafSpki = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'der' });
    const rsaSpki = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'der' });
    const reqs: CertRequest[] = [
      { subject: 'CN=10.0.0.7', publicKey: leafSpki, notBefore: t0, notAfter: caReq.notAfter, kind: 'server', dnsNames: ['hello.local', 'hello'], ipAddresses: ['10.0.0.7', '::1', 'fe80::1:2'], serialNumber: randomSerial() },
      { subject: 'CN=hello', publicKey: rsaSpki, notBefore: t0, notAfter: caReq.notAfter, kind: 'client', uris: ['azureiot://hub.example/devices/dev1/modules/hello'], serialNumber: randomSerial() },
      { subject: 'CN=\\#x\\=y\\ ', publicKey: leafSpki, notBefore: t0, notAfter: caReq.notAfter, kind: 'server', serialNumber: randomSerial() },
      { subject: 'CN=modulé ünïcode', publicKey: leafSpki, notBefore: t0, notAfter: caReq.notAfter, kind: 'client', serialNumber: randomSerial() },
    ];
    for (const req of reqs) {
      const ref = await issueCertificate(keys, req, { cert: caRef, key: ca.key });
      const mine = await issueCertificateDer(keys, req, { certDer: caNew.der, key: ca.key });
      expect(tbsOf(mine.der).toString('hex'), req.subject).toBe(tbsOf(Buffer.from(ref.rawData)).toString('hex'));
      expect(verifies(mine.pem, [caNew.pem, rootNew.pem]), req.subject).toContain('OK');
      expect(new X509Certificate(mine.der).checkIssued(new X509Certificate(caNew.der))).toBe(true);
    }
  });

  it('an IPv6 address with an IPv4 tail is encoded as its 16 bytes (@peculiar/x509 gets it wrong)', async () => {
    const root = await keyPair('root3');
    const t0 = new Date();
    const c = await issueCertificateDer(keys, { subject: 'CN=h', publicKey: root.spki, notBefore: t0, notAfter: new Date(t0.getTime() + 86_400_000), kind: 'server', ipAddresses: ['::ffff:1.2.3.4', '2001:db8::'] }, { selfKey: root.key });
    expect(new X509Certificate(c.der).subjectAltName).toBe('IP Address:0:0:0:0:0:FFFF:102:304, IP Address:2001:DB8:0:0:0:0:0:0');
  });

  it('the issuer name is copied from the issuer certificate, and a subject that is not one CN is refused', async () => {
    const root = await keyPair('root2');
    const t0 = new Date();
    const rootCert = await issueCertificateDer(keys, { subject: 'CN=r', publicKey: root.spki, notBefore: t0, notAfter: new Date(t0.getTime() + 86_400_000), kind: 'root-ca' }, { selfKey: root.key });
    expect(subjectDerOf(rootCert.der).toString('hex')).toBe('300c310a30080603550403130172');
    for (const subject of ['CN=a, O=b', 'CN=a+O=b', 'O=b'])
      await expect(issueCertificateDer(keys, { subject, publicKey: root.spki, notBefore: t0, notAfter: t0, kind: 'server' }, { selfKey: root.key }), subject).rejects.toThrow(/not a single CN/);
  });
});
