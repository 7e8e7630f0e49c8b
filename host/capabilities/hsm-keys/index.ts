/**
 * Capability `edgeward:hsm/keys`: a module's own keys through the key service.
 *
 * configure — the key service is opened once by the daemon (hsm/keys `openKeyService`);
 * prepare   — `prepareHsmKeys(keys, module)` fixes the caller to `{ kind: 'module', module }` for one
 *             instance, so every call is authorized against that module's namespace by the service;
 * call      — host.ts decodes, checks limits, calls, and encodes errors as the WIT `key-error` variant;
 *             an `access-denied` is reported as a denied call, a key created as `key-created`.
 */
import type { Capability, HostFunction, InstanceContext } from '../../runtime/capabilities.js';
import {
  KeyError, MAX_AAD_BYTES, MAX_DERIVATION_DATA_BYTES, MAX_ENCRYPT_INPUT_BYTES, MAX_HANDLE_LENGTH, MAX_IMPORT_KEY_BYTES,
  MAX_SIGN_INPUT_BYTES, MAX_SIGNATURE_BYTES, MODULE_NAME_PATTERN, type KeyService,
} from '../../../hsm/keys/index.js';
import type { WitKeyError } from './errors.js';
import { hostFunctions, type HsmKeysImports, type KeyEventReports } from './host.js';

export {
  MAX_AAD_BYTES, MAX_DERIVATION_DATA_BYTES, MAX_ENCRYPT_INPUT_BYTES, MAX_HANDLE_LENGTH, MAX_IMPORT_KEY_BYTES, MAX_KEY_ID_LENGTH,
  MAX_KEYS_PER_MODULE, MAX_RANDOM_BYTES, MAX_SIGN_INPUT_BYTES, MAX_SIGNATURE_BYTES,
} from '../../../hsm/keys/index.js';
export { KeyErrorPayload, type WitKeyError } from './errors.js';
export type { HsmKeysImports } from './host.js';

/** The WIT interface this capability implements. */
export const HSM_KEYS_INTERFACE = 'edgeward:hsm/keys';

/** The import object for one module instance. */
export function prepareHsmKeys(keyService: KeyService, moduleName: string, reports?: KeyEventReports): HsmKeysImports {
  if (!MODULE_NAME_PATTERN.test(moduleName)) throw new KeyError('invalid-argument', `invalid module name "${moduleName}"`);
  return hostFunctions(keyService, Object.freeze({ kind: 'module', module: moduleName }), reports);
}

/** Room for a function's handle, algorithm and other small arguments, as the broker estimates them. */
const ARGUMENT_SLACK = 3 * MAX_HANDLE_LENGTH + 4096;

/** What each function may receive at most: its data limits plus slack; refused in the worker past it. */
const ARGUMENT_LIMITS: Record<string, number> = {
  sign: MAX_SIGN_INPUT_BYTES,
  verify: MAX_SIGN_INPUT_BYTES + MAX_SIGNATURE_BYTES,
  encrypt: MAX_ENCRYPT_INPUT_BYTES + MAX_AAD_BYTES,
  decrypt: MAX_ENCRYPT_INPUT_BYTES + MAX_AAD_BYTES + 64,
  importSecretKey: MAX_IMPORT_KEY_BYTES,
  deriveKey: MAX_DERIVATION_DATA_BYTES,
};

/** The capability over the daemon's key service (listed in host/capabilities/index.ts). */
export function hsmKeysCapability(keyService: KeyService): Capability {
  const limits = Object.fromEntries(Object.entries(ARGUMENT_LIMITS).map(([fn, data]) => {
    const bytes = data + ARGUMENT_SLACK;
    return [fn, { bytes, refusal: { tag: 'limit-exceeded', val: `arguments of ${fn} larger than ${bytes} bytes` } satisfies WitKeyError }];
  }));
  return {
    name: HSM_KEYS_INTERFACE,
    interfaces: [HSM_KEYS_INTERFACE],
    argumentLimits: { [HSM_KEYS_INTERFACE]: limits },
    prepare(instance: InstanceContext) {
      const reports = { ...(instance.denied ? { denied: instance.denied } : {}), ...(instance.keyCreated ? { keyCreated: instance.keyCreated } : {}) };
      const fns = prepareHsmKeys(keyService, instance.module, reports) as Record<string, HostFunction>;
      return { [HSM_KEYS_INTERFACE]: fns };
    },
  };
}
