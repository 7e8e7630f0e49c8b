/**
 * DPS shared access signatures as aziot-identityd makes them: `sr` = percent-encoded lower-cased
 * `{idScope}/registrations/{registrationId}`, `se` = now + 30 s, `sig` = HMAC-SHA256(key, sr + "\n" + se)
 * computed by a signer that keeps the key (the key service, or the TPM), `skn=registration`.
 */
export type HmacSigner = (data: Buffer) => Promise<Buffer>;

/** aziot's DPS SAS lifetime. */
export const DPS_SAS_TTL_SECONDS = 30;

/** Percent-encoding of a SAS field (RFC 3986 unreserved kept; everything else encoded). */
export function sasEncode(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

export async function dpsSasToken(sign: HmacSigner, idScope: string, registrationId: string, now = Date.now()): Promise<string> {
  const sr = sasEncode(`${idScope}/registrations/${registrationId}`.toLowerCase());
  const se = Math.floor(now / 1000) + DPS_SAS_TTL_SECONDS;
  const sig = await sign(Buffer.from(`${sr}\n${se}`, 'utf8'));
  return `SharedAccessSignature sr=${sr}&sig=${sasEncode(sig.toString('base64'))}&se=${se}&skn=registration`;
}
