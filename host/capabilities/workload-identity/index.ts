/**
 * Capability `edgeward:workload/identity`: the calling module's own identity.
 *
 * configure — identity, certificate and key services are opened once by the daemon;
 * prepare   — `identityFunctions(deps, instance)` binds the functions to one instance (module, digest,
 *             generation), so the module served is the one the runtime measured and bound;
 * call      — host.ts checks on every call that the instance is still its registration's
 *             (`instance.current()`: generation, digest, signer), then serves;
 * forget    — a removed or replaced module's certificate cache is dropped.
 */
import type { Capability, HostFunction } from '../../runtime/capabilities.js';
import { WorkloadIdentity } from '../../identity/workload.js';
import { identityFunctions, ModuleCertCaches, type WorkloadIdentityDeps } from './host.js';

export const WORKLOAD_IDENTITY_INTERFACE = 'edgeward:workload/identity';
export { identityFunctions, ModuleCertCaches, type WorkloadIdentityDeps, type WorkloadIdentityImports, type WitCertificate } from './host.js';
export { IdentityErrorPayload, type WitIdentityError } from './errors.js';

export function workloadIdentityCapability(deps: WorkloadIdentityDeps): Capability {
  const caches = new ModuleCertCaches();
  const service = new WorkloadIdentity(deps);
  return {
    name: WORKLOAD_IDENTITY_INTERFACE,
    interfaces: [WORKLOAD_IDENTITY_INTERFACE],
    prepare(instance) {
      return { [WORKLOAD_IDENTITY_INTERFACE]: identityFunctions(deps, instance, caches.for(instance), service) as Record<string, HostFunction> };
    },
    forget: (module) => caches.forget(module),
  };
}
