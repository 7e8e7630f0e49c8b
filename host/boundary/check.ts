/**
 * The deploy-time type check (issue: a typed component boundary). Before anything of a component runs,
 * every interface it imports that Edgeward links, and every interface the host calls in it, is compared
 * with the host's definition: the generated table from wit/ and jco's WASI WIT, or the WIT a capability
 * brings. A difference refuses the component, naming interface, function and the first difference. An
 * interface the host links but has no WIT for is refused too: nothing is linked unchecked.
 */
import { decodeComponentTypes, ComponentTypeError } from './decode.js';
import { checkInterface } from './compare.js';
import { HOST_INTERFACES } from './generated/host-interfaces.js';
import { unversioned, type ComponentType, type InstanceType } from './types.js';

/** Where the host's type of a linked interface comes from besides the generated table (test capabilities). */
export type ExtraInterfaces = Readonly<Record<string, InstanceType>>;

export class BoundaryTypeError extends Error {
  override readonly name = 'BoundaryTypeError';
}

/** The host's definition of an imported interface, or undefined when it has none. */
export function hostInterface(iface: string, extra?: ExtraInterfaces): InstanceType | undefined {
  return HOST_INTERFACES.imports[iface] ?? extra?.[iface];
}

/** Read the component's declared types; a component this reader cannot read is refused. */
export function componentTypes(module: string, bytes: Uint8Array): ComponentType {
  try {
    return decodeComponentTypes(bytes);
  } catch (err) {
    if (err instanceof ComponentTypeError) throw new BoundaryTypeError(`module "${module}": its component types cannot be read: ${err.message}`);
    throw err;
  }
}

/**
 * Check every interface the component imports (the link plan refuses a component with an import no
 * granted capability serves, so each one is linked) and its exports the host calls. Throws
 * BoundaryTypeError with the first difference.
 */
export function checkBoundary(module: string, types: ComponentType, extra?: ExtraInterfaces): void {
  for (const [name, ext] of Object.entries(types.imports)) {
    const iface = unversioned(name);
    if (ext.k !== 'instance') throw new BoundaryTypeError(`module "${module}": import "${name}" is a ${ext.k}, the host provides an interface`);
    const host = hostInterface(iface, extra);
    if (!host) throw new BoundaryTypeError(`module "${module}": the host has no WIT definition of "${iface}" to check the import against; refused`);
    const d = checkInterface(iface, host, ext, 'import');
    if (d) throw new BoundaryTypeError(`module "${module}": import type mismatch: ${d}`);
  }
  for (const [iface, host] of Object.entries(HOST_INTERFACES.exports)) {
    const entry = Object.entries(types.exports).find(([n]) => unversioned(n) === iface);
    if (!entry) continue; // whether it must export it is the world's rule (runtime: lifecycle required)
    const [name, ext] = entry;
    if (ext.k !== 'instance') throw new BoundaryTypeError(`module "${module}": export "${name}" is a ${ext.k}, the host calls an interface`);
    const d = checkInterface(iface, host, ext, 'export');
    if (d) throw new BoundaryTypeError(`module "${module}": export type mismatch: ${d}`);
  }
}
