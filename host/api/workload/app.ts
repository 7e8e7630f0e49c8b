/**
 * The workload API, compatible with IoT Edge (edgelet-http-workload): what native modules call over their
 * own Unix socket. Which module is calling is decided by which socket accepted the connection (`bound`),
 * never by the path: a path naming another module, a module that does not exist, or a stale generation id
 * all get the same `403 {"message":"forbidden"}`, so the answer reveals nothing (scenario A1).
 */
import { Hono, type Context } from 'hono';
import { bodyLimit } from '../middleware/body-limit.js';
import { apiVersion } from '../middleware/api-version.js';
import { moduleCaller } from '../middleware/module-caller.js';
import { observeStatus } from '../middleware/observe-status.js';
import { errorHandler, badRequest } from '../errors.js';
import { bodyText } from '../body.js';
import { WORKLOAD_API_VERSIONS } from '../versions.js';
import type { Logger } from '../../log.js';
import type { IssuedCertificate } from '../../../hsm/certs/service.js';
import { MAX_WORKLOAD_DATA_BYTES, WorkloadIdentity, WorkloadIdentityError, type WorkloadIdentityDeps } from '../../identity/workload.js';

export { MAX_WORKLOAD_DATA_BYTES, WORKLOAD_ENCRYPTION_KEY_ID, MAX_COMMON_NAME_LENGTH as MAX_COMMON_NAME } from '../../identity/workload.js';

/** Largest request body: a sign request for a SAS string is a few hundred bytes. */
export const MAX_WORKLOAD_BODY_BYTES = 64 * 1024;

export interface WorkloadDeps extends Omit<WorkloadIdentityDeps, 'now'> {
  logger: Logger;
  /** Current generation id of a registered native module, or undefined. */
  generationOf(module: string): string | undefined;
  /** Told every response's status (metrics, host/metrics): the socket's module, undefined for the shared one. */
  onResponse?: (module: BoundModule, status: number) => void;
}

/** The module a socket belongs to; undefined for the shared socket, which serves only public routes. */
export type BoundModule = string | undefined;

export function workloadApp(deps: WorkloadDeps, bound: BoundModule): Hono {
  const app = new Hono();
  const workload = new WorkloadIdentity(deps);
  app.onError(errorHandler(deps.logger));
  app.notFound((c) => c.json({ message: 'not found' }, 404));
  if (deps.onResponse) app.use('*', observeStatus((status) => deps.onResponse!(bound, status)));
  app.use('*', bodyLimit({ maxSize: MAX_WORKLOAD_BODY_BYTES, onError: (c) => c.json({ message: 'request body too large' }, 413) }));
  app.use('*', apiVersion({ versions: WORKLOAD_API_VERSIONS }));
  // Per route, not per prefix: an unknown route under /modules stays a 404.
  const registered = { bound, generationOf: (m: string) => deps.generationOf(m) };
  const caller = moduleCaller(registered);
  const callerAtGeneration = moduleCaller({ ...registered, withGenid: true });

  app.get('/trust-bundle', (c) => c.json({ certificate: workload.trustBundle() }));
  app.get('/manifest-trust-bundle', (c) => c.json({ certificate: workload.manifestTrustBundle() }));

  app.post('/modules/:name/genid/:genid/sign', callerAtGeneration, async (c) => {
    const data = base64Field(await jsonBody(c), 'data');
    const digest = await workload.sign(c.get('module'), data);
    return c.json({ digest: digest.toString('base64') });
  });

  app.post('/modules/:name/genid/:genid/encrypt', callerAtGeneration, async (c) => {
    const body = await jsonBody(c);
    const plaintext = base64Field(body, 'plaintext');
    const iv = base64Field(body, 'initializationVector');
    const ciphertext = await workload.encrypt(c.get('module'), c.req.param('genid'), plaintext, iv);
    return c.json({ ciphertext: ciphertext.toString('base64') });
  });

  app.post('/modules/:name/genid/:genid/decrypt', callerAtGeneration, async (c) => {
    const body = await jsonBody(c);
    const ct = base64Field(body, 'ciphertext');
    const iv = base64Field(body, 'initializationVector');
    const pt = await invalidParameter('ciphertext', () => workload.decrypt(c.get('module'), c.req.param('genid'), ct, iv));
    return c.json({ plaintext: pt.toString('base64') });
  });

  app.post('/modules/:name/certificate/identity', caller, async (c) => {
    const { cert, privateKeyPem } = await workload.identityCertificateWithNewKey(c.get('module'));
    return c.json(certificateResponse(cert, privateKeyPem), 201);
  });

  app.post('/modules/:name/genid/:genid/certificate/server', callerAtGeneration, async (c) => {
    const cn = (await jsonBody(c)).commonName;
    if (typeof cn !== 'string' || cn.length === 0) badRequest('missing parameter: commonName');
    const { cert, privateKeyPem } = await invalidParameter('commonName', () => workload.serverCertificateWithNewKey(c.get('module'), cn),
      'a host name or IP address of at most 64 characters');
    return c.json(certificateResponse(cert, privateKeyPem), 201);
  });

  return app;
}

/**
 * The service's refusal as IoT Edge words it: 400 `invalid parameter: <name> (<why>)`, with the service's
 * reason unless the route has its own wording.
 */
async function invalidParameter<T>(name: string, fn: () => Promise<T>, why?: string): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof WorkloadIdentityError) badRequest(`invalid parameter: ${name} (${why ?? err.message})`);
    throw err;
  }
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

/** IoT Edge's CertificateResponse as the implementation returns it: PEM text, not base64. */
function certificateResponse(cert: IssuedCertificate, privateKeyPem: string): Record<string, unknown> {
  return { privateKey: { type: 'key', bytes: privateKeyPem }, certificate: cert.chainPem, expiration: cert.notAfter.toISOString().replace(/\.\d{3}Z$/, '+00:00') };
}
