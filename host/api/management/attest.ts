/**
 * Attestation on the management API: `POST /attest/quote` { nonce: hex } → a TPM quote of the measurement
 * PCRs over the verifier's nonce, with the AK public key and the event log (host/measure), each file
 * base64 under its name as `tpm2_checkquote` takes it (plus ek.pub and ak.name for a credential challenge);
 * `POST /attest/activate` { credential } → { secret }: TPM2_ActivateCredential of a verifier's
 * tpm2_makecredential for the EK and the AK's name. 409 when measurement is off (no TPM configured).
 */
import { Hono } from 'hono';
import { z } from 'zod';
import { badRequest, jsonError } from '../errors.js';
import { readJsonBody } from '../body.js';
import type { Measurement } from '../../measure/service.js';
import { QUOTE_FILES } from '../../measure/quote-files.js';

/** TPM2B_DATA holds at most 64 bytes (qualifyingData of TPM2_Quote). */
const quoteSchema = z.object({ nonce: z.string().regex(/^([0-9a-fA-F]{2}){1,64}$/, '1 to 64 bytes of hex') }).strict();

const activateSchema = z.object({ credential: z.string().max(4096).regex(/^[A-Za-z0-9+/]+=*$/) }).strict();

export function attestRoutes(measurement: Measurement | undefined): Hono {
  const app = new Hono();
  app.post('/quote', async (c) => {
    const r = quoteSchema.safeParse(await readJsonBody(c, { maxBytes: 1024 }));
    if (!r.success) badRequest(`invalid quote request: ${r.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ')}`);
    if (!measurement) return jsonError(c, 409, 'measurement is off (no [tpm] configured, or [measurement] enabled = false): there is nothing to quote');
    const q = await measurement.quote(Buffer.from(r.data.nonce, 'hex'));
    const files = { ...Object.fromEntries(QUOTE_FILES.map((f) => [f, q[f].toString('base64')])), ...Object.fromEntries(Object.entries(q.extra).map(([f, b]) => [f, b.toString('base64')])) };
    return c.json({ files, quoteMs: q.ms, extendMs: measurement.lastExtendMs });
  });
  app.post('/activate', async (c) => {
    const r = activateSchema.safeParse(await readJsonBody(c, { maxBytes: 8192 }));
    if (!r.success) badRequest('invalid activate request: { credential: base64 of a tpm2_makecredential output file }');
    if (!measurement) return jsonError(c, 409, 'measurement is off (no [tpm] configured, or [measurement] enabled = false): there is no AK');
    return c.json({ secret: (await measurement.activateCredential(Buffer.from(r.data.credential, 'base64'))).toString('base64') });
  });
  return app;
}
