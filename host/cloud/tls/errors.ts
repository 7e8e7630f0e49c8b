/**
 * The one error type of the TLS client identity: a `code` a caller can branch on and a message that says
 * what to fix. Messages name files, URIs and key types, never a PIN or key material.
 */
export type TlsIdentityErrorCode =
  | 'bad-uri' // the cert or key URI is malformed or of a scheme that is not accepted
  | 'unsupported-key' // a key URI this mechanism cannot use (no software fallback is ever taken)
  | 'cert-unreadable' // the identity certificate file cannot be read or parsed
  | 'key-unavailable' // the key service does not have the key (not found, HSM down, access denied)
  | 'key-mismatch' // the certificate's public key is not the key's
  | 'engine-missing' // libengine-pkcs11-openssl is not installed
  | 'engine-failed'; // OpenSSL's pkcs11 engine could not load the key

export class TlsIdentityError extends Error {
  constructor(
    readonly code: TlsIdentityErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'TlsIdentityError';
  }
}
