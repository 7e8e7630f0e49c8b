/**
 * The config as the roots of trust see it: hsm/ defines its own option types (hsm/support/options.ts) and
 * never imports host/. These compile-time checks keep the schema's types assignable to them, so the
 * daemon passes its config as it is.
 */
import type { CertsConfig, KeyServiceConfig, Pkcs11Options, PrincipalOptions, TpmOptions } from '../../hsm/support/options.js';
import type { Config, Pkcs11Config, PrincipalConfig, TpmConfig } from './schema.js';

type Assignable<T extends U, U> = [T, U];

export type HsmOptionChecks = [
  Assignable<Config, KeyServiceConfig>,
  Assignable<Config, CertsConfig>,
  Assignable<Pkcs11Config, Pkcs11Options>,
  Assignable<TpmConfig, TpmOptions>,
  Assignable<PrincipalConfig, PrincipalOptions>,
];
