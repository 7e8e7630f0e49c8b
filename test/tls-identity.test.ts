/**
 * TLS client authentication with the device identity (host/cloud/tls): a loopback HTTPS server that
 * demands a client certificate from a private CA; the client presents a certificate whose key is a
 * non-extractable SoftHSM2 key signing the handshake through OpenSSL's pkcs11 engine, or a file key.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import pkcs11js from 'pkcs11js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configSchema } from '../host/config/schema.js';
import { clientIdentity, TlsIdentityError, x509IdentityFromConfig, type ClientIdentity } from '../host/cloud/tls/index.js';
import { DAEMON_CALLER, type KeyService } from '../hsm/keys/index.js';
import { pkcs11Tool, withRawSession } from '../hsm/testing/softhsm.js';
import { fileBackend, makeConfig, pkcs11Backend, type Backend } from './helpers/keys.js';
import { loopbackServerCert, Pki } from './helpers/pki.js';

const KEY_URI = 'pkcs11:token=tls-test;object=tls-identity;type=private';

let pki: Pki;
let server: https.Server;
let serverCa: Buffer;
let backend: Backend;
let keys: KeyService;
const seen: string[] = [];

/** A certificate for `pubPem` (SPKI PEM), issued by the test CA, whatever key made the request. */
function certFor(name: string, cn: string, pubPem: string): string {
  writeFileSync(pki.file(`${name}.forced.pub`), pubPem);
  pki.key(`${name}.req`, 'ec');
  pki.openssl(['req', '-new', '-config', 'cnf', '-key', `${name}.req.key`, '-subj', `/CN=${cn}`, '-out', `${name}.csr`]);
  pki.openssl(['x509', '-req', '-in', `${name}.csr`, '-force_pubkey', `${name}.forced.pub`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial',
    '-days', '1', '-extfile', 'cnf', '-extensions', 'v3_leaf', '-out', `${name}.crt`]);
  return pathToFileURL(pki.file(`${name}.crt`)).href;
}

function get(id: ClientIdentity): Promise<string> {
  const { port } = server.address() as AddressInfo;
  return new Promise((resolve, reject) => {
    https.get({ host: '127.0.0.1', port, path: '/', agent: id.agent, timeout: 5000 }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve(body));
    }).on('error', reject);
  });
}

function config() {
  return makeConfig(backend.stateDir, { backend: 'pkcs11', pkcs11: { library: backend.hsm!.library, token_label: 'tls-test', pin: backend.token!.pin } });
}

beforeAll(async () => {
  pki = new Pki();
  pki.ca('ca', 'Test Device CA');
  const srv = loopbackServerCert(pki.dir);
  serverCa = srv.cert;
  server = https.createServer({ key: srv.key, cert: srv.cert, ca: pki.read('ca.crt'), requestCert: true, rejectUnauthorized: true }, (req, res) => {
    const cn = (req.socket as import('node:tls').TLSSocket).getPeerCertificate().subject.CN;
    seen.push(String(cn));
    res.end(`hello ${String(cn)}`);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  backend = await pkcs11Backend(undefined, 'tls-test');
  await pkcs11Tool(backend.hsm!, ['--token-label', 'tls-test', '--login', '--pin', backend.token!.pin, '--keypairgen', '--key-type', 'EC:prime256v1', '--label', 'tls-identity', '--id', '0a0b']);
  keys = await backend.open();
});

afterAll(async () => {
  await keys?.close();
  await backend?.cleanup();
  await new Promise((r) => server?.close(r));
  pki?.cleanup();
});

async function tokenPublicPem(): Promise<string> {
  const h = await keys.loadKeyByUri(DAEMON_CALLER, KEY_URI);
  const der = await keys.getPublicKey(DAEMON_CALLER, h);
  return `-----BEGIN PUBLIC KEY-----\n${der.toString('base64').replace(/.{64}/g, '$&\n')}\n-----END PUBLIC KEY-----\n`;
}

const CHILD = `
const [engineJs, libraryJs, mode, cert, library, label] = process.argv.slice(1);
const { pkcs11SecureContext } = await import(engineJs);
const { acquireLibrary, findTokenSlot, login } = await import(libraryJs);
const m = acquireLibrary(library);
const { slot } = findTokenSlot(m, { library, token_label: label });
login(m, m.C_OpenSession(slot, 4), process.env.TEST_PIN, label);
const certPem = (await import('node:fs')).readFileSync(cert);
const settle = async () => { for (let i = 0; i < 3; i++) { globalThis.gc(); await new Promise((r) => setTimeout(r, 20)); } };
if (mode === 'anchored') pkcs11SecureContext({ certPem, keyUri: 'pkcs11:token=' + label + ';object=tls-identity', library });
await settle();
let code = 'none';
try { pkcs11SecureContext({ certPem, keyUri: 'pkcs11:token=' + label + ';object=no-such-key', library }); } catch (e) { code = e.code; }
await settle();
try { m.C_OpenSession(slot, 4); console.log('alive ' + code); } catch (e) { console.log('finalised ' + e.message); }
`;

/** Run the engine in a child Node (dist/ is built by the global setup) and return its one-line verdict. */
async function engineChild(mode: 'bare' | 'anchored'): Promise<string> {
  const dist = (p: string) => pathToFileURL(path.join(process.cwd(), 'dist', p)).href;
  // libp11 asks for a PIN (OpenSSL UI: /dev/tty, else stdin) when a key is not found: no terminal (setsid), no stdin.
  const child = spawn(process.execPath, ['--expose-gc', '--input-type=module', '-e', CHILD, dist('host/cloud/tls/engine.js'), dist('hsm/pkcs11/library.js'),
    mode, pki.file('dev.crt'), backend.hsm!.library, 'tls-test'], { env: { ...backend.hsm!.env, TEST_PIN: backend.token!.pin }, timeout: 20_000, detached: true, stdio: ['ignore', 'pipe', 'ignore'] });
  let stdout = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  await once(child, 'close');
  return stdout.trim();
}

describe('TLS client identity', () => {
  it('a non-extractable SoftHSM2 key signs the handshake; the server sees the certificate CN', async () => {
    const attrs = withRawSession(backend.hsm!.library, 'tls-test', false, (m, s) => {
      m.C_FindObjectsInit(s, [{ type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PRIVATE_KEY }, { type: pkcs11js.CKA_LABEL, value: 'tls-identity' }]);
      const [obj] = m.C_FindObjects(s, 1);
      m.C_FindObjectsFinal(s);
      return m.C_GetAttributeValue(s, obj!, [{ type: pkcs11js.CKA_EXTRACTABLE }, { type: pkcs11js.CKA_SENSITIVE }]);
    });
    expect(attrs.map((a) => (a.value as Buffer)[0])).toEqual([0, 1]); // CKA_EXTRACTABLE false, CKA_SENSITIVE true
    const certUri = certFor('dev', 'device-hsm-1', await tokenPublicPem());
    const id = await clientIdentity({ certUri, keyUri: KEY_URI, keys, config: config(), ca: serverCa });
    try {
      expect(id.keyKind).toBe('pkcs11');
      expect(await get(id)).toBe('hello device-hsm-1');
      expect(await get(id)).toBe('hello device-hsm-1');
      expect(id.describe).toContain('device-hsm-1');
      expect(id.describe).not.toContain(backend.token!.pin);
    } finally {
      await id.close();
    }
    // The key service shares the PKCS#11 library with the engine: it must still work.
    const h = await keys.loadKeyByUri(DAEMON_CALLER, KEY_URI);
    expect((await keys.sign(DAEMON_CALLER, h, 'ecdsa-sha256', Buffer.from('x'))).length).toBeGreaterThan(0);
  });

  it('a URI without token= gets the configured token', async () => {
    const certUri = certFor('dev2', 'device-hsm-2', await tokenPublicPem());
    const id = await clientIdentity({ certUri, keyUri: 'pkcs11:object=tls-identity;type=private', keys, config: config(), ca: serverCa });
    try {
      expect(await get(id)).toBe('hello device-hsm-2');
    } finally {
      await id.close();
    }
  });

  it('a certificate that is not the token key’s is refused before any handshake', async () => {
    pki.key('other', 'ec');
    const certUri = certFor('mismatch', 'device-mismatch', pki.read('other.pub'));
    const err = await clientIdentity({ certUri, keyUri: KEY_URI, keys, config: config(), ca: serverCa }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TlsIdentityError);
    expect((err as TlsIdentityError).code).toBe('key-mismatch');
    expect(seen).not.toContain('device-mismatch');
  });

  it('a key the token does not have is key-unavailable, and the key service keeps working', async () => {
    const certUri = certFor('missing', 'device-missing', await tokenPublicPem());
    const err = await clientIdentity({ certUri, keyUri: 'pkcs11:token=tls-test;object=no-such-key', keys, config: config() }).catch((e: unknown) => e);
    expect((err as TlsIdentityError).code).toBe('key-unavailable');
    const h = await keys.loadKeyByUri(DAEMON_CALLER, KEY_URI);
    expect((await keys.getPublicKey(DAEMON_CALLER, h)).length).toBeGreaterThan(0);
  });

  it('the config’s X.509 identity (manual hub authentication and DPS attestation) is the token key’s', async () => {
    const identity_cert = pathToFileURL(pki.file('dev.crt')).href;
    const manual = { source: 'manual', iothub_hostname: 'hub.example', device_id: 'device-hsm-1', authentication: { method: 'x509', identity_cert, identity_pk: KEY_URI } };
    const dps = { source: 'dps', id_scope: '0ne00000000', attestation: { method: 'x509', identity_cert, identity_pk: KEY_URI } };
    for (const provisioning of [manual, dps]) {
      const cfg = configSchema.parse({ ...config(), provisioning });
      const id = await x509IdentityFromConfig(cfg, keys, { ca: serverCa });
      try {
        expect(id?.keyKind).toBe('pkcs11');
        expect(id?.commonName).toBe('device-hsm-1');
        expect(await get(id!)).toBe('hello device-hsm-1');
      } finally {
        await id?.close();
      }
    }
    expect(await x509IdentityFromConfig(config(), keys)).toBeUndefined();
  });

  it('a failed engine load with no engine context alive finalises the shared PKCS#11 library (libp11); after a first context it does not', async () => {
    // A fresh process each (the engine state is process-wide); the key service's login is a raw session logged in.
    const bare = await engineChild('bare');
    expect(bare).toMatch(/^finalised CKR_CRYPTOKI_NOT_INITIALIZED/);
    expect(await engineChild('anchored')).toBe('alive engine-failed');
  });

  it('a file:/// key the config chose is used as a plain software key', async () => {
    pki.key('soft', 'ec');
    const certUri = certFor('soft', 'device-soft', pki.read('soft.pub'));
    const id = await clientIdentity({ certUri, keyUri: pathToFileURL(pki.file('soft.key')).href, ca: serverCa });
    try {
      expect(id.keyKind).toBe('file');
      expect(await get(id)).toBe('hello device-soft');
    } finally {
      await id.close();
    }
    const wrong = await clientIdentity({ certUri, keyUri: pathToFileURL(pki.file('other.key')).href }).catch((e: unknown) => e);
    expect((wrong as TlsIdentityError).code).toBe('key-mismatch');
  });

  it('keys the mechanism cannot use are typed errors, never a software fallback', async () => {
    const certUri = pathToFileURL(pki.file('soft.crt')).href;
    const codeOf = (p: Promise<unknown>) => p.then(() => 'resolved', (e: unknown) => (e instanceof TlsIdentityError ? e.code : String(e)));
    expect(await codeOf(clientIdentity({ certUri, keyUri: 'handle:0x81000001' }))).toBe('unsupported-key');
    expect(await codeOf(clientIdentity({ certUri, keyUri: 'tpm:identity' }))).toBe('unsupported-key');
    // A pkcs11: key without a PKCS#11 key service (here the file backend) is refused, not read some other way.
    const file = await fileBackend();
    const fileKeys = await file.open();
    try {
      const cfg = makeConfig(file.stateDir, { backend: 'file' });
      expect(await codeOf(clientIdentity({ certUri, keyUri: KEY_URI, keys: fileKeys, config: cfg }))).toBe('unsupported-key');
    } finally {
      await fileKeys.close();
      await file.cleanup();
    }
    expect(await codeOf(clientIdentity({ certUri, keyUri: `${KEY_URI}?pin-value=1234`, keys, config: config() }))).toBe('bad-uri');
    expect(await codeOf(clientIdentity({ certUri: 'https://x/cert.pem', keyUri: KEY_URI, keys, config: config() }))).toBe('bad-uri');
  });
});
