/**
 * PKCS#11 mechanisms for the service's algorithms. ECDSA and RSA take the digest the service computed, so a
 * token needs only the plain mechanisms (CKM_ECDSA, CKM_RSA_PKCS, CKM_RSA_PKCS_PSS); SoftHSM2 2.6, for one,
 * has no CKM_ECDSA_SHA256.
 */
import pkcs11js from 'pkcs11js';
import type * as P from 'pkcs11js';
import { KeyError, type SignAlgorithm } from '../keys/types.js';
import { SHA256_DIGEST_INFO } from './templates.js';

const p = pkcs11js;

export function signSpec(algorithm: SignAlgorithm, message: Buffer, digest?: Buffer): { mechanism: P.Mechanism; input: Buffer; out: number } {
  const d = (): Buffer => {
    if (!digest) throw new KeyError('internal', 'internal error');
    return digest;
  };
  switch (algorithm) {
    case 'ecdsa-sha256':
    case 'ecdsa-sha384':
      return { mechanism: { mechanism: p.CKM_ECDSA }, input: d(), out: 132 };
    case 'rsa-pkcs1-sha256':
      return { mechanism: { mechanism: p.CKM_RSA_PKCS }, input: Buffer.concat([SHA256_DIGEST_INFO, d()]), out: 512 };
    case 'rsa-pss-sha256':
      return {
        mechanism: { mechanism: p.CKM_RSA_PKCS_PSS, parameter: { type: p.CK_PARAMS_RSA_PSS, hashAlg: p.CKM_SHA256, mgf: p.CKG_MGF1_SHA256, saltLen: 32 } as P.RsaPSS },
        input: d(),
        out: 512,
      };
    case 'hmac-sha256':
      return { mechanism: { mechanism: p.CKM_SHA256_HMAC }, input: message, out: 32 };
    default: {
      const never: never = algorithm;
      throw new KeyError('unsupported', `unknown algorithm ${String(never)}`);
    }
  }
}

export function gcm(iv: Buffer, aad: Buffer): P.Mechanism {
  return { mechanism: p.CKM_AES_GCM, parameter: { type: p.CK_PARAMS_AES_GCM, iv, ivBits: iv.length * 8, aad, tagBits: 128 } as P.GcmParams };
}

export function oaep(algorithm: 'rsa-oaep-sha256' | 'rsa-oaep-sha1'): P.Mechanism {
  const sha1 = algorithm === 'rsa-oaep-sha1';
  // CKZ_DATA_SPECIFIED = 1 (PKCS#11 v2.40 §2.1.8) with an empty label.
  const parameter = { type: p.CK_PARAMS_RSA_OAEP, hashAlg: sha1 ? p.CKM_SHA_1 : p.CKM_SHA256, mgf: sha1 ? p.CKG_MGF1_SHA1 : p.CKG_MGF1_SHA256, source: 1 };
  return { mechanism: p.CKM_RSA_PKCS_OAEP, parameter: parameter as P.RsaOAEP };
}
