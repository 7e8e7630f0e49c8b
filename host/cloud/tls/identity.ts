/**
 * The device's TLS client identity for the cloud connections (DPS X.509 attestation, manual X.509 hub
 * authentication): an `https.Agent` that presents the identity certificate and signs the handshake with
 * its key — a `file:///` key the config chose (plain Node TLS), or a `pkcs11:` key used in the token
 * through OpenSSL's pkcs11 engine (engine.ts). A key this cannot use is a typed error; there is never a
 * software fallback.
 */
import { createPrivateKey, type KeyObject } from 'node:crypto';
import { promises as fs } from 'node:fs';
import https from 'node:https';
import tls from 'node:tls';
import type { KeysConfig } from '../../config/schema.js';
import { DAEMON_CALLER, KeyError, parsePkcs11Uri, type KeyService, type Pkcs11Uri } from '../../../hsm/keys/index.js';
import { assertSameKey, commonNameOf, describeCert, filePath, readIdentityCert, schemeOf, spkiOf, type IdentityCert } from './cert.js';
import { pkcs11SecureContext } from './engine.js';
import { TlsIdentityError } from './errors.js';

export interface ClientIdentityOptions {
  /** `file:///…` PEM: the identity certificate, optionally followed by its chain. */
  readonly certUri: string;
  /** `file:///…` PEM private key, or `pkcs11:…` (RFC 7512, no PIN) of a key in the key service's token. */
  readonly keyUri: string;
  /** The daemon's key service; required for a `pkcs11:` key (it holds the token login). */
  readonly keys?: KeyService;
  /** The config's `[keys]` (the PKCS#11 library and token of the key service). */
  readonly config?: { readonly keys?: KeysConfig };
  /** Server trust (PEM). Default: Node's roots plus NODE_EXTRA_CA_CERTS. */
  readonly ca?: string | Buffer | Array<string | Buffer>;
  /** Extra agent options (keepAlive, maxSockets…); TLS material given here is ignored. */
  readonly agentOptions?: https.AgentOptions;
  /** Path of libp11's `pkcs11.so` if not in a standard place. */
  readonly enginePath?: string;
}

export interface ClientIdentity {
  /** Use for every request that must authenticate as the device (`https.request({ agent })`). */
  readonly agent: https.Agent;
  /** The same TLS material for `tls.connect({ secureContext })` or an undici connector. */
  readonly secureContext: tls.SecureContext;
  /** Secret-free: the certificate subject, issuer, expiry and how the key is used. */
  readonly describe: string;
  readonly keyKind: 'file' | 'pkcs11';
  /** The identity certificate's subject CN (DPS registration id and hub device id by default). */
  readonly commonName: string | undefined;
  /** Close the agent's sockets. */
  close(): Promise<void>;
}

export async function clientIdentity(o: ClientIdentityOptions): Promise<ClientIdentity> {
  const cert = await readIdentityCert(o.certUri);
  const ca = o.ca === undefined ? {} : { ca: o.ca };
  let secureContext: tls.SecureContext;
  let how: string;
  let keyKind: ClientIdentity['keyKind'];
  if (o.keyUri.startsWith('file:///')) {
    const key = await readFileKey(o.keyUri);
    assertSameKey(cert, spkiOf(key), `the key ${o.keyUri}`);
    secureContext = tls.createSecureContext({ cert: cert.pem, key: key.export({ type: 'pkcs8', format: 'pem' }), ...ca });
    how = `software key ${o.keyUri}`;
    keyKind = 'file';
  } else if (o.keyUri.startsWith('pkcs11:')) {
    secureContext = await tokenContext(o, cert);
    how = `PKCS#11 key ${o.keyUri} through OpenSSL's pkcs11 engine (the key stays in the token)`;
    keyKind = 'pkcs11';
  } else {
    throw new TlsIdentityError('unsupported-key', `a TLS client key "${schemeOf(o.keyUri)}…" cannot be used: give identity_pk as a pkcs11: URI of a key in the [keys.pkcs11] token, or a file:/// PEM key (TPM keys are not supported for TLS client authentication yet)`);
  }
  const agent = new https.Agent({ keepAlive: true, ...o.agentOptions, secureContext });
  return {
    agent,
    secureContext,
    keyKind,
    commonName: commonNameOf(cert),
    describe: `TLS client certificate ${describeCert(cert)}, ${how}`,
    close: async () => agent.destroy(),
  };
}

async function readFileKey(keyUri: string): Promise<KeyObject> {
  const file = filePath(keyUri, 'the identity key');
  let pem: Buffer;
  try {
    pem = await fs.readFile(file);
  } catch (err) {
    throw new TlsIdentityError('key-unavailable', `cannot read the identity key ${file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  try {
    return createPrivateKey(pem);
  } catch {
    throw new TlsIdentityError('key-unavailable', `the identity key ${file} is not an unencrypted PEM private key`);
  }
}

/** Check the token key through the key service, then hand its URI to the engine. */
async function tokenContext(o: ClientIdentityOptions, cert: IdentityCert): Promise<tls.SecureContext> {
  const p11 = o.config?.keys?.pkcs11;
  if (o.keys === undefined || o.keys.backend !== 'pkcs11' || o.config?.keys?.backend !== 'pkcs11' || p11 === undefined) {
    throw new TlsIdentityError('unsupported-key', 'a pkcs11: identity key is used through the key service: set [keys] backend = "pkcs11" and [keys.pkcs11] (library, token, pin) for the token that holds it');
  }
  let parsed: Pkcs11Uri;
  try {
    parsed = parsePkcs11Uri(o.keyUri);
  } catch (err) {
    throw new TlsIdentityError('bad-uri', `identity key: ${(err as Error).message}`);
  }
  try {
    const handle = await o.keys.loadKeyByUri(DAEMON_CALLER, o.keyUri);
    assertSameKey(cert, await o.keys.getPublicKey(DAEMON_CALLER, handle), `the key ${o.keyUri}`);
  } catch (err) {
    if (err instanceof TlsIdentityError) throw err;
    const why = err instanceof KeyError ? `${err.tag}: ${err.message}` : (err as Error).message;
    throw new TlsIdentityError('key-unavailable', `the key service cannot use the identity key ${o.keyUri} (${why}): check the URI names a private key in the [keys.pkcs11] token`, { cause: err });
  }
  return pkcs11SecureContext({ certPem: cert.pem, keyUri: engineUri(o.keyUri, parsed, p11.token_label), library: p11.library, ca: o.ca, enginePath: o.enginePath });
}

/** The URI for libp11: the configured token label added when the URI selects no token, so no other token is searched. */
function engineUri(uri: string, parsed: Pkcs11Uri, tokenLabel: string | undefined): string {
  if (parsed.token !== undefined || parsed.serial !== undefined || tokenLabel === undefined) return uri;
  const rest = uri.slice('pkcs11:'.length);
  return `pkcs11:token=${encodeURIComponent(tokenLabel)}${rest === '' || rest.startsWith('?') ? '' : ';'}${rest}`;
}
