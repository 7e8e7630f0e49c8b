/**
 * WIT types for capabilities that tests register (`edgeward:test/*`): the runtime type-checks every
 * linked import against the host's definition, so a test capability brings its WIT like any other.
 */
import { TEST_WIT } from '../../guests/adversarial/components.js';
import { interfacesOfPackage } from '../../host/boundary/reference.js';
import type { InstanceType } from '../../host/boundary/types.js';
import type { Capability } from '../../host/runtime/capabilities.js';

let cached: Promise<Record<string, InstanceType>> | undefined;

/** Types of every `edgeward:test/…` interface in TEST_WIT (built once per test file). */
export function testInterfaces(): Promise<Record<string, InstanceType>> {
  cached ??= interfacesOfPackage(`package edgeward:test;\n${Object.values(TEST_WIT).join('\n')}`);
  return cached;
}

/** A host-side test capability `edgeward:test/<iface>` with its WIT types. */
export async function testCapability(iface: keyof typeof TEST_WIT, prepare?: Capability['prepare'], over: Partial<Capability> = {}): Promise<Capability> {
  const name = `edgeward:test/${iface}`;
  const all = await testInterfaces();
  return { name, interfaces: [name], ...(prepare ? { prepare } : {}), types: { [name]: all[name]! }, ...over };
}
