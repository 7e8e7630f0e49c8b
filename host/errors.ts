/** StartupError is defined below both layers (hsm/support/errors.ts): a key store refuses to open with it too. */
export { StartupError } from '../hsm/support/errors.js';
