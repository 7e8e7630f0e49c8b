/**
 * Entry point of the key service: picks the backend from `[keys]` (file, pkcs11, or tpm over `[tpm] tcti`),
 * opens the handle secret and builds the authorizer from `[[principal]]`. Startup problems the user must fix
 * (wrong PIN, missing library or token, TPM unreachable or not permitted) are `StartupError`s with exit code 2.
 */
import path from 'node:path';
import type { KeyServiceConfig } from '../support/options.js';
import { StartupError } from '../support/errors.js';
import type { Logger } from '../support/log.js';
import { openFileKeyStore } from '../file/store.js';
import { createAuthorizer } from './authz.js';
import { HandleCodec } from './handles.js';
import { createKeyService } from './service.js';
import type { KeyService, KeyStore } from './types.js';

export * from './types.js';
export { keyLabel } from './service.js';
export { parsePkcs11Uri, type Pkcs11Uri } from './uri.js';

export interface OpenKeyServiceOptions {
  readonly config: KeyServiceConfig;
  readonly stateDir: string;
  readonly logger: Logger;
}

/** Where the service keeps its state: key files (file backend) and the handle secret. */
export function keysStateDir(stateDir: string): string {
  return path.join(stateDir, 'keys');
}

/** The TPM backend's wrapped key blobs: a directory of their own, so no other backend's files are read as blobs. */
export function tpmKeysDir(stateDir: string): string {
  return path.join(keysStateDir(stateDir), 'tpm');
}

/**
 * A key service over a store opened elsewhere — the TPM backend (hsm/tpm) adapts to `KeyStore` and comes
 * in here, so handles, namespaces and `[[principal]]` grants work the same on every backend.
 */
export async function keyServiceOverStore(store: KeyStore, opts: OpenKeyServiceOptions): Promise<KeyService> {
  const dir = keysStateDir(opts.stateDir);
  const handles = await HandleCodec.open(path.join(dir, 'handle-secret.bin'));
  return createKeyService({ store, handles, authorize: createAuthorizer(opts.config.principal), logger: opts.logger.child({ component: 'keys' }) });
}

/** Open the configured key service. Call `close()` on shutdown. */
export async function openKeyService(opts: OpenKeyServiceOptions): Promise<KeyService> {
  const { config, stateDir, logger } = opts;
  const log = logger.child({ component: 'keys' });
  const store = await openStore(config, stateDir, log);
  try {
    return await keyServiceOverStore(store, opts);
  } catch (err) {
    await store.close();
    throw err;
  }
}

async function openStore(config: KeyServiceConfig, stateDir: string, log: Logger): Promise<KeyStore> {
  const keys = config.keys;
  const dir = keysStateDir(stateDir);
  switch (keys.backend) {
    case 'file':
      return openFileKeyStore(dir, log);
    case 'pkcs11':
      if (!keys.pkcs11) throw new StartupError('[keys] backend = "pkcs11" needs a [keys.pkcs11] table');
      // Backends are loaded only when configured: pkcs11js is a native addon, the TPM stack is large.
      return (await import('../pkcs11/store.js')).openPkcs11KeyStore(keys.pkcs11, log);
    case 'tpm':
      // [tpm] is optional: its tcti defaults to the kernel resource manager, as in the schema.
      return (await import('../tpm/keystore.js')).openTpmKeyStore({ tcti: config.tpm?.tcti ?? 'device:/dev/tpmrm0', dir: tpmKeysDir(stateDir), hierarchyAuth: config.tpm?.hierarchy_authorization });
    default: {
      const never: never = keys.backend;
      throw new StartupError(`unknown keys backend ${String(never)}`);
    }
  }
}
