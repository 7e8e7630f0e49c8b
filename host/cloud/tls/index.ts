/** TLS client authentication with the device identity (file or PKCS#11 key): see identity.ts. */
export { clientIdentity, type ClientIdentity, type ClientIdentityOptions } from './identity.js';
export { TlsIdentityError, type TlsIdentityErrorCode } from './errors.js';
export { findPkcs11Engine, PKCS11_ENGINE_CANDIDATES } from './engine.js';
export { x509IdentityFromConfig, x509Source, type X509Source } from './config.js';
