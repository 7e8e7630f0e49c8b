/**
 * The workload API, compatible with IoT Edge (edgelet-http-workload): what native modules call over their
 * own Unix socket. Which module is calling is decided by which socket accepted the connection (`bound`),
 * never by the path: a path naming another module, a module that does not exist, or a stale generation id
 * all get the same `403 {"message":"forbidden"}`, so the answer reveals nothing (scenario A1).
 */
import { Hono, type Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { generateKeyPair } from 'node:crypto';
import { promisify } from 'node:util';
import { apiVersion } from '../middleware/api-version.js';
import { errorHandler, badRequest } from '../errors.js';
import { bodyText } from '../body.js';
import { WORKLOAD_API_VERSIONS } from '../versions.js';
import type { Logger } from '../../log.js';
import type { IdentityService } from '../../identity/identity.js';
import type { CertService, IssuedCertificate } from '../../../hsm/certs/service.js';
import { DAEMON_CALLER, type KeyService } from '../../../hsm/keys/index.js';

/** Largest request body: a sign request for a SAS string is a few hundred bytes. */
export const MAX_WORKLOAD_BODY_BYTES = 64 * 1024;
/** Largest `data`/`plaintext` (decoded) the API signs or encrypts. */
export const MAX_WORKLOAD_DATA_BYTES = 16 * 1024;
/** Longest common name (RFC 5280 ub-common-name). */
export const MAX_COMMON_NAME = 64;
/** The daemon-namespace key behind encrypt/decrypt (IoT Edge: `iotedge_master_encryption_id`). */
export const WORKLOAD_ENCRYPTION_KEY_ID = 'workload-encryption';
/** Ciphertext format version: 0x03 || iv(12) || ct || tag(16). IoT Edge's v2 is 0x02 || ct || tag. */
const CIPHERTEXT_V3 = 0x03;

const generateKeyPairAsync = promisify(generateKeyPair);

export interface WorkloadDeps {
  identity: IdentityService;
  certs: CertService;
  keys: KeyService;
  logger: Logger;
  /** Current generation id of a registered native module, or undefined. */
  generationOf(module: string): string | undefined;
}

/** The module a socket belongs to; undefined for the shared socket, which serves only public routes. */
export type BoundModule = string | undefined;

const FORBIDDEN = { message: 'forbidden' };

function sameModule(pathName: string, bound: string): boolean {
  return pathName === bound || pathName.replace(/^\$/, '') === bound.replace(/^\$/, '');
}

export function workloadApp(deps: WorkloadDeps, bound: BoundModule): Hono {
  const app = new Hono();
  app.onError(errorHandler(deps.logger));
  app.notFound((c) => c.json({ message: 'not found' }, 404));
  app.use('*', bodyLimit({ maxSize: MAX_WORKLOAD_BODY_BYTES, onError: (c) => c.json({ message: 'request body too large' }, 413) }));
  app.use('*', apiVersion({ versions: WORKLOAD_API_VERSIONS }));

  /** The caller may act only as its own socket's module, with its current generation. */
  const authorize = (c: Context, withGenid: boolean): string | Response => {
    const name = c.req.param('name') ?? '';
    if (bound === undefined || !sameModule(name, bound)) return c.json(FORBIDDEN, 403);
    if (withGenid) {
      const current = deps.generationOf(bound);
      if (current === undefined || c.req.param('genid') !== current) return c.json(FORBIDDEN, 403);
    } else if (deps.generationOf(bound) === undefined) return c.json(FORBIDDEN, 403);
    return bound;
  };

  app.get('/trust-bundle', (c) => c.json({ certificate: deps.certs.trustBundle() }));
  app.get('/manifest-trust-bundle', (c) => c.json({ certificate: deps.certs.manifestTrustBundle() }));

  app.post('/modules/:name/genid/:genid/sign', async (c) => {
    const who = authorize(c, true);
    if (typeof who !== 'string') return who;
    const body = await jsonBody(c);
    const data = base64Field(body, 'data');
    const digest = await deps.identity.signForModule(who, data);
    return c.json({ digest: digest.toString('base64') });
  });

  app.post('/modules/:name/genid/:genid/encrypt', async (c) => {
    const who = authorize(c, true);
    if (typeof who !== 'string') return who;
    const body = await jsonBody(c);
    const plaintext = base64Field(body, 'plaintext');
    const iv = base64Field(body, 'initializationVector');
    const key = await encryptionKey(deps.keys);
    const r = await deps.keys.encrypt(DAEMON_CALLER, key, 'aes-256-gcm', plaintext, aad(who, c.req.param('genid'), iv));
    return c.json({ ciphertext: Buffer.concat([Buffer.from([CIPHERTEXT_V3]), r.iv, r.ciphertext]).toString('base64') });
  });

  app.post('/modules/:name/genid/:genid/decrypt', async (c) => {
    const who = authorize(c, true);
    if (typeof who !== 'string') return who;
    const body = await jsonBody(c);
    const ct = base64Field(body, 'ciphertext');
    const iv = base64Field(body, 'initializationVector');
    if (ct.length < 1 + 12 + 16 || ct[0] !== CIPHERTEXT_V3) badRequest('invalid parameter: ciphertext (not produced by this device)');
    const key = await encryptionKey(deps.keys);
    try {
      const pt = await deps.keys.decrypt(DAEMON_CALLER, key, 'aes-256-gcm', ct.subarray(1, 13), ct.subarray(13), aad(who, c.req.param('genid'), iv));
      return c.json({ plaintext: pt.toString('base64') });
    } catch (err) {
      if ((err as { tag?: string }).tag === 'decrypt-failed') badRequest('invalid parameter: ciphertext (authentication failed)');
      throw err;
    }
  });

  app.post('/modules/:name/certificate/identity', async (c) => {
    const who = authorize(c, false);
    if (typeof who !== 'string') return who;
    const { publicKey, privateKey } = await freshKeyPair();
    return c.json(certificateResponse(await deps.certs.issueIdentityCertificate(who, publicKey), privateKey), 201);
  });

  app.post('/modules/:name/genid/:genid/certificate/server', async (c) => {
    const who = authorize(c, true);
    if (typeof who !== 'string') return who;
    const body = await jsonBody(c);
    const cn = body.commonName;
    if (typeof cn !== 'string' || cn.length === 0) badRequest('missing parameter: commonName');
    if (cn.length > MAX_COMMON_NAME || !/^[A-Za-z0-9.:_-]+$/.test(cn)) badRequest('invalid parameter: commonName (a host name or IP address of at most 64 characters)');
    const { publicKey, privateKey } = await freshKeyPair();
    return c.json(certificateResponse(await deps.certs.issueServerCertificate(who, cn, publicKey), privateKey), 201);
  });

  return app;
}

async function jsonBody(c: Context): Promise<Record<string, unknown>> {
  const text = await bodyText(c);
  if (!text) badRequest('missing parameter: request body');
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    badRequest('invalid parameter: request body is not valid JSON');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) badRequest('invalid parameter: request body must be a JSON object');
  return v as Record<string, unknown>;
}

const BASE64_RE = /^[A-Za-z0-9+/]*={0,2}$/;

function base64Field(body: Record<string, unknown>, name: string): Buffer {
  const v = body[name];
  if (v === undefined) badRequest(`missing parameter: ${name}`);
  if (typeof v !== 'string' || v.length % 4 !== 0 || !BASE64_RE.test(v)) badRequest(`invalid parameter: ${name} (expected base64)`);
  const bytes = Buffer.from(v, 'base64');
  if (bytes.length > MAX_WORKLOAD_DATA_BYTES) badRequest(`invalid parameter: ${name} (larger than ${MAX_WORKLOAD_DATA_BYTES} bytes)`);
  return bytes;
}

/** AAD binds a ciphertext to the module, its generation and the caller's IV (IoT Edge: name + genid). */
function aad(module: string, genid: string, iv: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`${module}${genid}`, 'utf8'), Buffer.from([0]), iv]);
}

/** One create-or-load of the encryption key per key service, shared by every socket's app. */
const encryptionKeys = new WeakMap<KeyService, Promise<string>>();
function encryptionKey(keys: KeyService): Promise<string> {
  let h = encryptionKeys.get(keys);
  if (!h) {
    h = keys.createSecretKey(DAEMON_CALLER, { id: WORKLOAD_ENCRYPTION_KEY_ID }, 'aes-256-gcm');
    h.catch(() => encryptionKeys.delete(keys));
    encryptionKeys.set(keys, h);
  }
  return h;
}

/** A fresh key pair per request, as aziot-edged does (the HTTP API must hand the private key over). */
async function freshKeyPair(): Promise<{ publicKey: Buffer; privateKey: string }> {
  const { publicKey, privateKey } = await generateKeyPairAsync('rsa', { modulusLength: 2048 });
  return { publicKey: publicKey.export({ type: 'spki', format: 'der' }), privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string };
}

/** IoT Edge's CertificateResponse as the implementation returns it: PEM text, not base64. */
function certificateResponse(cert: IssuedCertificate, privateKeyPem: string): Record<string, unknown> {
  return { privateKey: { type: 'key', bytes: privateKeyPem }, certificate: cert.chainPem, expiration: cert.notAfter.toISOString().replace(/\.\d{3}Z$/, '+00:00') };
}
