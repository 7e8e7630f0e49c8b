/**
 * PKCS#11 object templates and attribute decoding. Private and secret keys are created on the token
 * (CKA_TOKEN), private to the logged-in user (CKA_PRIVATE), CKA_SENSITIVE=true and CKA_EXTRACTABLE=false,
 * so the key value can never be read out (PKCS#11 v2.40 §4.9 table 25).
 */
import { createPublicKey } from 'node:crypto';
import pkcs11js from 'pkcs11js';
import type * as P from 'pkcs11js';
import type { KeyPairType, KeyType, SecretKeyType } from '../keys/types.js';

// Node's ESM loader sees only `default` of this CommonJS module; the CK* constants hang off it.
const p = pkcs11js;

/** DER OIDs for CKA_EC_PARAMS (RFC 5480 §2.1.1.1). */
const P256_OID = Buffer.from('06082a8648ce3d030107', 'hex');
const P384_OID = Buffer.from('06052b81040022', 'hex');

/** Attributes a person sees in `pkcs11-tool --list-objects`, shared by both halves of a pair. */
function common(label: string, id: Buffer): P.Template {
  return [
    { type: p.CKA_TOKEN, value: true },
    { type: p.CKA_LABEL, value: label },
    { type: p.CKA_ID, value: id },
  ];
}

const SECRET_KEEPING: P.Template = [
  { type: p.CKA_PRIVATE, value: true },
  { type: p.CKA_SENSITIVE, value: true },
  { type: p.CKA_EXTRACTABLE, value: false },
];

export interface PairTemplates {
  readonly mechanism: P.Mechanism;
  readonly publicKey: P.Template;
  readonly privateKey: P.Template;
}

export function keyPairTemplates(type: KeyPairType, label: string, id: Buffer): PairTemplates {
  const ec = type === 'ec-p256' || type === 'ec-p384';
  const pubSpecific: P.Template = ec
    ? [{ type: p.CKA_EC_PARAMS, value: type === 'ec-p256' ? P256_OID : P384_OID }, { type: p.CKA_VERIFY, value: true }]
    : [
        { type: p.CKA_MODULUS_BITS, value: type === 'rsa-2048' ? 2048 : 3072 },
        { type: p.CKA_PUBLIC_EXPONENT, value: Buffer.from([1, 0, 1]) },
        { type: p.CKA_VERIFY, value: true },
        { type: p.CKA_ENCRYPT, value: true },
      ];
  const privSpecific: P.Template = ec ? [{ type: p.CKA_SIGN, value: true }] : [{ type: p.CKA_SIGN, value: true }, { type: p.CKA_DECRYPT, value: true }];
  return {
    mechanism: { mechanism: ec ? p.CKM_EC_KEY_PAIR_GEN : p.CKM_RSA_PKCS_KEY_PAIR_GEN },
    publicKey: [{ type: p.CKA_CLASS, value: p.CKO_PUBLIC_KEY }, ...common(label, id), { type: p.CKA_PRIVATE, value: false }, ...pubSpecific],
    privateKey: [{ type: p.CKA_CLASS, value: p.CKO_PRIVATE_KEY }, ...common(label, id), ...SECRET_KEEPING, ...privSpecific],
  };
}

export function secretKeyTemplate(type: SecretKeyType, label: string, id: Buffer, value?: Buffer): { mechanism: P.Mechanism; template: P.Template } {
  const aes = type === 'aes-256-gcm';
  const usage: P.Template = aes
    ? [{ type: p.CKA_ENCRYPT, value: true }, { type: p.CKA_DECRYPT, value: true }]
    : [{ type: p.CKA_SIGN, value: true }, { type: p.CKA_VERIFY, value: true }];
  const template: P.Template = [
    { type: p.CKA_CLASS, value: p.CKO_SECRET_KEY },
    { type: p.CKA_KEY_TYPE, value: aes ? p.CKK_AES : p.CKK_GENERIC_SECRET },
    ...common(label, id),
    ...SECRET_KEEPING,
    ...usage,
    ...(value ? [{ type: p.CKA_VALUE, value }] : [{ type: p.CKA_VALUE_LEN, value: 32 }]),
  ];
  return { mechanism: { mechanism: aes ? p.CKM_AES_KEY_GEN : p.CKM_GENERIC_SECRET_KEY_GEN }, template };
}

/** Key type of a complete object set, from CKA_KEY_TYPE and the public key's size attributes. */
export function keyTypeOf(module: P.PKCS11, session: Buffer, obj: Buffer, publicKey?: Buffer): KeyType | undefined {
  const [kt] = module.C_GetAttributeValue(session, obj, [{ type: p.CKA_KEY_TYPE }]);
  const keyType = (kt?.value as Buffer | undefined)?.readUIntLE(0, 4);
  if (keyType === p.CKK_AES) return 'aes-256-gcm';
  if (keyType === p.CKK_GENERIC_SECRET || keyType === p.CKK_SHA256_HMAC) return 'hmac-sha256';
  if (!publicKey) return undefined;
  if (keyType === p.CKK_EC) {
    const [params] = module.C_GetAttributeValue(session, publicKey, [{ type: p.CKA_EC_PARAMS }]);
    const oid = params?.value as Buffer;
    return oid.equals(P256_OID) ? 'ec-p256' : oid.equals(P384_OID) ? 'ec-p384' : undefined;
  }
  if (keyType === p.CKK_RSA) {
    const [mod] = module.C_GetAttributeValue(session, publicKey, [{ type: p.CKA_MODULUS }]);
    const bits = (mod?.value as Buffer).length * 8;
    return bits === 2048 ? 'rsa-2048' : bits === 3072 ? 'rsa-3072' : undefined;
  }
  return undefined;
}

/** SPKI DER of a public key object (EC: CKA_EC_POINT; RSA: modulus and exponent), via a JWK. */
export function publicKeySpki(module: P.PKCS11, session: Buffer, publicKey: Buffer, type: KeyType): Buffer {
  if (type === 'ec-p256' || type === 'ec-p384') {
    const [pt] = module.C_GetAttributeValue(session, publicKey, [{ type: p.CKA_EC_POINT }]);
    const point = unwrapEcPoint(pt?.value as Buffer, type === 'ec-p256' ? 32 : 48);
    const n = (point.length - 1) / 2;
    const jwk = { kty: 'EC', crv: type === 'ec-p256' ? 'P-256' : 'P-384', x: b64u(point.subarray(1, 1 + n)), y: b64u(point.subarray(1 + n)) };
    return createPublicKey({ key: jwk, format: 'jwk' }).export({ type: 'spki', format: 'der' });
  }
  const [mod, exp] = module.C_GetAttributeValue(session, publicKey, [{ type: p.CKA_MODULUS }, { type: p.CKA_PUBLIC_EXPONENT }]);
  const jwk = { kty: 'RSA', n: b64u(mod?.value as Buffer), e: b64u(exp?.value as Buffer) };
  return createPublicKey({ key: jwk, format: 'jwk' }).export({ type: 'spki', format: 'der' });
}

/**
 * CKA_EC_POINT is a DER OCTET STRING around the uncompressed point (PKCS#11 v2.40 §2.3.3); some libraries
 * return the bare point. Accept both.
 */
function unwrapEcPoint(v: Buffer, fieldBytes: number): Buffer {
  const raw = 1 + 2 * fieldBytes;
  if (v.length === raw && v[0] === 0x04) return v;
  if (v[0] === 0x04 && v[1] === raw && v.length === raw + 2) return v.subarray(2);
  if (v[0] === 0x04 && v[1] === 0x81 && v[2] === raw && v.length === raw + 3) return v.subarray(3);
  throw new Error('unrecognised CKA_EC_POINT encoding');
}

function b64u(b: Buffer): string {
  return b.toString('base64url');
}

/** DigestInfo prefix for SHA-256 (RFC 8017 §9.2 note 1), for CKM_RSA_PKCS over a digest. */
export const SHA256_DIGEST_INFO = Buffer.from('3031300d060960864801650304020105000420', 'hex');
