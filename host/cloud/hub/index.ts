/** IoT Hub module identities: the REST client and the reconciler that keeps the hub equal to the local modules. */
export { HubClient, HUB_API_VERSION, encodePathSegment, type HubClientOptions, type HubModule } from './client.js';
export { HubError, type HubErrorKind } from './errors.js';
export { ModuleIdentityReconciler, MANAGED_BY, HUB_SYSTEM_MODULES, type ModuleIdentitySource, type ReconcilerOptions, type HubIdentityStatus } from './reconciler.js';
export { followRuntimeEvents } from './events.js';
