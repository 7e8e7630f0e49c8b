/**
 * Parameter areas of the commands whose bytes are checked against tpm2-tools (`--cphash`), and the first-
 * parameter transform used by session parameter encryption.
 */
import { ALG, RH, ST } from './constants.js';
import { TpmMarshalError, Writer } from './marshal.js';
import { marshalPublic, marshalSensitiveCreate, type HashScheme, type TpmtPublic } from './types.js';

/** Replace the content of the first TPM2B parameter with `fn(content)` (parameter encryption, Part 1 §21.1). */
export function withFirstParam(params: Buffer, fn: ((b: Buffer) => Buffer) | undefined): Buffer {
  if (!fn) return params;
  if (params.length < 2) throw new TpmMarshalError('parameter encryption needs a command or response whose first parameter is a TPM2B');
  const size = params.readUInt16BE(0);
  if (2 + size > params.length) throw new TpmMarshalError('first parameter overruns the parameter area');
  return Buffer.concat([params.subarray(0, 2), fn(params.subarray(2, 2 + size)), params.subarray(2 + size)]);
}

/** Parameters of TPM2_Create and TPM2_CreatePrimary: inSensitive, inPublic, outsideInfo (empty), creationPCR (none). */
export function createParams(template: TpmtPublic, opts: { userAuth?: Uint8Array; data?: Uint8Array } = {}): Buffer {
  return new Writer()
    .bytes(marshalSensitiveCreate(opts.userAuth ?? Buffer.alloc(0), opts.data))
    .sized((w) => marshalPublic(template, w))
    .b2(Buffer.alloc(0))
    .u32(0)
    .finish();
}

/** Parameters of TPM2_Sign: digest, inScheme, and a NULL TPMT_TK_HASHCHECK (allowed for unrestricted keys). */
export function signParams(digest: Buffer, scheme: HashScheme): Buffer {
  const w = new Writer().b2(digest);
  if (scheme === null) w.u16(ALG.NULL);
  else w.u16(scheme.scheme).u16(scheme.hashAlg);
  return w.u16(ST.HASHCHECK).u32(RH.NULL).b2(Buffer.alloc(0)).finish();
}

/** Parameters of TPM2_HMAC: buffer, hashAlg. */
export function hmacParams(data: Uint8Array, hashAlg: number): Buffer {
  return new Writer().b2(data).u16(hashAlg).finish();
}
