import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdirSync, writeFileSync } from 'node:fs';
import { webcrypto } from 'node:crypto';
import path from 'node:path';
import * as x509 from '@peculiar/x509';
import { envFor, runCli, tempHome } from './helpers/cli.js';

const DAY = 86_400_000;

async function selfSigned(notBefore: Date, notAfter: Date): Promise<string> {
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const keys = (await webcrypto.subtle.generateKey(alg, false, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({ name: 'CN=test', notBefore, notAfter, keys, signingAlgorithm: alg }, webcrypto as unknown as Parameters<typeof x509.X509CertificateGenerator.createSelfSigned>[1]);
  return cert.toString('pem');
}

describe('edgeward check: certificates', () => {
  let home: string;
  let cleanup: () => void;
  beforeEach(() => ({ home, cleanup } = tempHome()));
  afterEach(() => cleanup());

  async function certCheck(pem: string) {
    const dir = path.join(home, 'state', 'certs');
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    writeFileSync(path.join(dir, 'mine.pem'), pem, { mode: 0o600 });
    const r = await runCli(['check', '--json'], envFor(home));
    return JSON.parse(r.stdout).checks.find((c: { id: string }) => c.id === 'certificates-expiry');
  }

  it('an expired certificate is an error, one expiring within 7 days a warning, a fresh one ok', async () => {
    const now = Date.now();
    expect(await certCheck(await selfSigned(new Date(now - 10 * DAY), new Date(now - DAY)))).toMatchObject({ result: 'error', message: expect.stringContaining('expired') });
    expect(await certCheck(await selfSigned(new Date(now - DAY), new Date(now + 3 * DAY)))).toMatchObject({ result: 'warning', message: expect.stringContaining('expires') });
    expect(await certCheck(await selfSigned(new Date(now - DAY), new Date(now + 300 * DAY)))).toMatchObject({ result: 'ok' });
    expect(await certCheck('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n')).toMatchObject({ result: 'error', message: expect.stringContaining('cannot be parsed') });
  });
});
