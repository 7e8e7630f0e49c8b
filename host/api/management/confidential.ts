/**
 * Confidential workloads on the management API, mounted at /confidential (host/daemon/services.ts).
 * `GET /confidential/device-key`: the workload-decryption public key, its key id and the policy it is bound
 * to (for a TPM: the runtime PCR index, value and PolicyPCR digest), for publishers to seal to — the same
 * content `edgeward confidential device-key --out DIR` writes as device-key.pem + policy.json.
 * 503 when no TEE backend is configured or it cannot be opened (the message says why).
 */
import { Hono } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { TeeError, type TeeBackend } from '../../../hsm/tee/port.js';

/** `backend` resolves the daemon's TEE backend, or undefined when confidential workloads are not configured. */
export function confidentialRoutes(backend: () => Promise<TeeBackend | undefined>): Hono {
  const app = new Hono();
  app.get('/device-key', async (c) => {
    let b: TeeBackend | undefined;
    try {
      b = await backend();
    } catch (err) {
      if (err instanceof TeeError) throw new HTTPException(503, { message: `confidential workloads unavailable: ${err.message}` });
      throw err;
    }
    if (!b) throw new HTTPException(503, { message: 'confidential workloads are not configured on this device (no TEE backend)' });
    const info = await b.deviceKey();
    return c.json({ backend: b.name, keyId: info.keyId, publicPem: info.publicPem, policy: info.policy });
  });
  return app;
}
