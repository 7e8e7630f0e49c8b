/**
 * Attestation on the management API: `POST /attest/quote` { nonce: hex } → a TPM quote of the measurement
 * PCRs over the verifier's nonce, with the AK public key and the event log (host/measure), each file
 * base64 under its name as `tpm2_checkquote` takes it. 409 when measurement is off (no TPM configured).
 */
import { Hono } from 'hono';
import { z } from 'zod';
import { badRequest, jsonError } from '../errors.js';
import { readJsonBody } from '../body.js';
import type { Measurement } from '../../measure/service.js';
import { QUOTE_FILES } from '../../measure/quote-files.js';

/** TPM2B_DATA holds at most 64 bytes (qualifyingData of TPM2_Quote). */
const quoteSchema = z.object({ nonce: z.string().regex(/^([0-9a-fA-F]{2}){1,64}$/, '1 to 64 bytes of hex') }).strict();

export function attestRoutes(measurement: Measurement | undefined): Hono {
  const app = new Hono();
  app.post('/quote', async (c) => {
    const r = quoteSchema.safeParse(await readJsonBody(c, { maxBytes: 1024 }));
    if (!r.success) badRequest(`invalid quote request: ${r.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ')}`);
    if (!measurement) return jsonError(c, 409, 'measurement is off (no [tpm] configured, or [measurement] enabled = false): there is nothing to quote');
    const q = await measurement.quote(Buffer.from(r.data.nonce, 'hex'));
    return c.json({ files: Object.fromEntries(QUOTE_FILES.map((f) => [f, q[f].toString('base64')])), quoteMs: q.ms, extendMs: measurement.lastExtendMs });
  });
  return app;
}
