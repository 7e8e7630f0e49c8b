/**
 * Every capability a module can be granted, in one literal list (STYLE: compose explicitly, no
 * auto-discovery). The runtime gets this list when it opens and knows none of them by name. A new
 * capability is one folder here (index.ts with the Capability; host.ts and/or worker.mjs; errors.ts;
 * tests beside) plus one line below: README "Adding a capability".
 *
 * The order matters where two capabilities link the same interface: a real provider is chosen before a
 * placeholder (planLinks), and a missing grant is named after the first capability that provides it.
 */
import type { Capability } from '../runtime/capabilities.js';
import type { KeyService } from '../../hsm/keys/index.js';
import type { CertService } from '../../hsm/certs/service.js';
import type { IdentityService } from '../identity/identity.js';
import { loggingCapability } from './logging/index.js';
import { exitCapability } from './exit/index.js';
import { filesystemDataCapability } from './filesystem/index.js';
import { clocksCapability } from './clocks/index.js';
import { stdioCapability } from './stdio/index.js';
import { randomCapability } from './random/index.js';
import { httpOutgoingCapability } from './http/index.js';
import { hsmKeysCapability } from './hsm-keys/index.js';
import { workloadIdentityCapability } from './workload-identity/index.js';
import { monitorCapabilities, type MonitorHub } from './monitor/index.js';
import { attestCapabilities, type AttestService } from './attest/index.js';

/** The daemon's services that capabilities serve modules from (opened once by host/daemon/services.ts). */
export interface CapabilityServices {
  readonly keys: KeyService;
  readonly identity: IdentityService;
  readonly certs: CertService;
  /** The runtime as security extensions see it (`edgeward:monitor/*`); absent, those grants are unknown. */
  readonly monitor?: MonitorHub;
  /** Evidence and sealing for confidential modules (`edgeward:attest/*`); absent, those grants are unknown. */
  readonly attest?: AttestService;
}

/**
 * The list. Without `services` (a runtime on its own: tests, benchmarks) the capabilities that need the
 * daemon's services are absent, and granting one is an unknown capability at deploy.
 */
export function edgewardCapabilities(services?: CapabilityServices): Capability[] {
  return [
    loggingCapability,
    exitCapability,
    // Before wasi:cli/stdio, so a module importing wasi:filesystem with no grant is told to ask for this one.
    filesystemDataCapability,
    clocksCapability,
    stdioCapability,
    randomCapability,
    // Also provides wasi:io (the same classes as wasi:cli/stdio), which its request and response bodies need.
    httpOutgoingCapability,
    ...(services ? [hsmKeysCapability(services.keys), workloadIdentityCapability(services)] : []),
    ...(services?.monitor ? monitorCapabilities(services.monitor) : []),
    ...(services?.attest ? attestCapabilities(services.attest) : []),
  ];
}
