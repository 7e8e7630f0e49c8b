/**
 * Capabilities `edgeward:monitor/*`, one per interface so each is a separate grant: inventory, events,
 * measurements, findings, respond. They serve security extensions (kind `security-extension`, signed by a
 * signer of `[security_extensions] trusted_signers`: admission.ts refuses anyone else) from one MonitorHub
 * the daemon attaches to its runtime (host/daemon/services.ts).
 *
 * prepare — the functions for one instance: the caller is the instance (findings' source, respond's
 *           "never itself", the subscription table), never an argument;
 * forget  — a module redeployed or removed loses its quarantine mark.
 */
import type { Capability, HostFunction, InstanceContext } from '../../runtime/capabilities.js';
import { eventsFunctions } from './events.js';
import { findingsFunctions, MAX_SUBMIT_BYTES } from './findings.js';
import { inventoryFunctions } from './inventory.js';
import { measurementsFunctions } from './measurements.js';
import { respondFunctions } from './respond.js';
import type { MonitorHub } from './hub.js';

export { MonitorHub, type MonitorRuntime, type MeasurementSource } from './hub.js';
export { FindingsStore, type Finding } from './findings-store.js';

export const MONITOR_PREFIX = 'edgeward:monitor/';
export const MONITOR_INTERFACES = ['inventory', 'events', 'measurements', 'findings', 'respond'].map((i) => `${MONITOR_PREFIX}${i}`);

/** Whether a grant name is one of `edgeward:monitor/*` (admission keeps them to security extensions). */
export function isMonitorGrant(grant: string): boolean {
  return grant.startsWith(MONITOR_PREFIX);
}

type Functions = (hub: MonitorHub, instance: InstanceContext) => object;

function monitorCapability(iface: string, fns: Functions, hub: MonitorHub, over: Partial<Capability> = {}): Capability {
  return {
    name: iface,
    interfaces: [iface],
    kinds: ['security-extension'],
    prepare: (instance) => ({ [iface]: fns(hub, instance) as Record<string, HostFunction> }),
    ...over,
  };
}

/** The five capabilities over `hub` (listed in host/capabilities/index.ts when the daemon has a hub). */
export function monitorCapabilities(hub: MonitorHub): Capability[] {
  const [inventory, events, measurements, findings, respond] = MONITOR_INTERFACES as [string, string, string, string, string];
  const submitLimit = { bytes: MAX_SUBMIT_BYTES, refusal: { tag: 'limit-exceeded', val: `a finding larger than ${MAX_SUBMIT_BYTES} bytes` } };
  return [
    monitorCapability(inventory, (h) => inventoryFunctions(h), hub),
    monitorCapability(events, (h, i) => eventsFunctions(h, i), hub),
    monitorCapability(measurements, (h) => measurementsFunctions(h), hub),
    monitorCapability(findings, (h, i) => findingsFunctions(h, i), hub, { argumentLimits: { [findings]: { submit: submitLimit } } }),
    monitorCapability(respond, (h, i) => respondFunctions(h, i), hub, { forget: (module) => void hub.findings.release(module).catch(() => undefined) }),
  ];
}
