/**
 * Which WIT the host serves: every interface a capability links, from wit/ (Edgeward's own) and from the
 * WASI packages jco ships, and the lifecycle the host calls. `hostInterfaceTable()` builds the table that
 * generated/host-interfaces.ts holds (regenerate with `npm run gen:wit`; a test fails when it drifts).
 */
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { edgewardCapabilities } from '../capabilities/index.js';
import { HSM_KEYS_INTERFACE } from '../capabilities/hsm-keys/index.js';
import { WORKLOAD_IDENTITY_INTERFACE } from '../capabilities/workload-identity/index.js';
import { interfacesFromWit, nestPackage, wasiWit } from './reference.js';
import type { InterfaceTable } from './types.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/** The interfaces the host calls in a component. */
export const HOST_CALLED_EXPORTS = ['edgeward:module/lifecycle'];
const OWN_WIT = ['wit/module', 'wit/hsm', 'wit/workload'];

export async function hostInterfaceTable(): Promise<InterfaceTable> {
  const wasi = wasiWit();
  const own = OWN_WIT.flatMap((dir) => readdirSync(path.join(ROOT, dir)).filter((f) => f.endsWith('.wit')).sort()
    .map((f) => readFileSync(path.join(ROOT, dir, f), 'utf8')));
  const versions = new Map<string, string>();
  for (const src of own) {
    const m = /^\s*package\s+([^@;\s]+)@([^;\s]+);/m.exec(src);
    if (m) versions.set(m[1]!, m[2]!);
  }
  const versioned = (iface: string) => {
    const pkg = iface.slice(0, iface.indexOf('/'));
    return `${iface}@${pkg.startsWith('wasi:') ? wasi.version : versions.get(pkg) ?? '0.1.0'}`;
  };
  const served = new Set<string>([...edgewardCapabilities().flatMap((c) => c.interfaces), HSM_KEYS_INTERFACE, WORKLOAD_IDENTITY_INTERFACE]);
  const packages = [wasi.source, ...own.map(nestPackage)].join('\n');
  return interfacesFromWit(packages, [...served].sort().map(versioned), HOST_CALLED_EXPORTS.map(versioned));
}
