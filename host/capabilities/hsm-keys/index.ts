/**
 * Capability `edgeward:hsm/keys`: a module's own keys through the key service.
 *
 * configure — the key service is opened once by the daemon (hsm/keys `openKeyService`);
 * prepare   — `prepareHsmKeys(keys, module)` fixes the caller to `{ kind: 'module', module }` for one
 *             instance, so every call is authorized against that module's namespace by the service;
 * call      — host.ts decodes, checks limits, calls, and encodes errors as the WIT `key-error` variant.
 */
import type { Capability, InstanceContext } from '../../runtime/capabilities.js';
import { KeyError, MODULE_NAME_PATTERN, type KeyService } from '../../../hsm/keys/index.js';
import { hostFunctions, type HsmKeysImports } from './host.js';

export {
  MAX_AAD_BYTES, MAX_DERIVATION_DATA_BYTES, MAX_ENCRYPT_INPUT_BYTES, MAX_HANDLE_LENGTH, MAX_IMPORT_KEY_BYTES, MAX_KEY_ID_LENGTH,
  MAX_KEYS_PER_MODULE, MAX_RANDOM_BYTES, MAX_SIGN_INPUT_BYTES, MAX_SIGNATURE_BYTES,
} from '../../../hsm/keys/index.js';
export { KeyErrorPayload, type WitKeyError } from './errors.js';
export type { HsmKeysImports, WitCiphertext, WitKeyInfo } from './host.js';

/** The WIT interface this capability implements. */
export const HSM_KEYS_INTERFACE = 'edgeward:hsm/keys';

/** The import object for one module instance. */
export function prepareHsmKeys(keyService: KeyService, moduleName: string): HsmKeysImports {
  if (!MODULE_NAME_PATTERN.test(moduleName)) throw new KeyError('invalid-argument', `invalid module name "${moduleName}"`);
  return hostFunctions(keyService, Object.freeze({ kind: 'module', module: moduleName }));
}

/** The capability entry the daemon appends to the runtime's list (see host/runtime/capabilities.ts). */
export function hsmKeysCapability(keyService: KeyService): Capability {
  return {
    name: HSM_KEYS_INTERFACE,
    interfaces: [HSM_KEYS_INTERFACE],
    prepare(instance: InstanceContext) {
      const fns = prepareHsmKeys(keyService, instance.module) as unknown as Record<string, (...args: unknown[]) => unknown>;
      return { [HSM_KEYS_INTERFACE]: fns };
    },
  };
}
