/**
 * The X.509 identity the config names, for the cloud clients: `[provisioning.attestation] method = "x509"`
 * (DPS) or `[provisioning.authentication] method = "x509"` (manual hub connection), each with
 * `identity_cert` and `identity_pk`. Other configs have no X.509 identity (`undefined`).
 */
import type { Config } from '../../config/schema.js';
import type { KeyService } from '../../../hsm/keys/index.js';
import type { ClientIdentity, ClientIdentityOptions } from './identity.js';

export interface X509Source {
  readonly certUri: string;
  readonly keyUri: string;
  readonly origin: 'dps' | 'manual';
}

/** Where the config puts the device's X.509 identity, if it uses one. */
export function x509Source(config: Pick<Config, 'provisioning'>): X509Source | undefined {
  const p = config.provisioning as Record<string, unknown> & { source: string };
  if (p.source === 'dps') {
    const a = p.attestation as { method: string; identity_cert?: string; identity_pk?: string };
    if (a.method === 'x509' && a.identity_cert !== undefined && a.identity_pk !== undefined) return { certUri: a.identity_cert, keyUri: a.identity_pk, origin: 'dps' };
  }
  if (p.source === 'manual' && typeof p.authentication === 'object' && p.authentication !== null) {
    const a = p.authentication as { method: string; identity_cert?: string; identity_pk?: string };
    if (a.method === 'x509' && a.identity_cert !== undefined && a.identity_pk !== undefined) return { certUri: a.identity_cert, keyUri: a.identity_pk, origin: 'manual' };
  }
  return undefined;
}

/** The TLS client identity of the config's X.509 provisioning, or `undefined` when it uses none. */
export async function x509IdentityFromConfig(
  config: Pick<Config, 'provisioning' | 'keys'>,
  keys: KeyService,
  opts: Pick<ClientIdentityOptions, 'ca' | 'agentOptions' | 'enginePath'> = {},
): Promise<ClientIdentity | undefined> {
  const src = x509Source(config);
  if (src === undefined) return undefined;
  // identity.ts (https, tls, the PKCS#11 engine) is loaded only for an X.509 device.
  const { clientIdentity } = await import('./identity.js');
  return clientIdentity({ certUri: src.certUri, keyUri: src.keyUri, keys, config, ...opts });
}
