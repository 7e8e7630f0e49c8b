/**
 * The capability registry: one literal list of what a module can be granted (STYLE: compose explicitly,
 * no auto-discovery). Deny by default: a component import that no granted capability provides fails the
 * deploy with the import's name and the grant it would need.
 *
 * Two kinds of capability:
 * - worker-side: pure per-instance functions (clocks, random, logging) built inside the sandbox worker
 *   from a small `.mjs` module, so a call never leaves the worker;
 * - host-side: `prepare(instance)` runs on the daemon's thread and returns the functions for one
 *   instance; the guest reaches them synchronously through the broker (sandbox.ts). Because the
 *   functions close over `instance`, a capability always knows its caller without asking the guest.
 *   `edgeward:hsm/keys` and `edgeward:workload/identity` plug in here.
 */

/** What a host-side capability learns about the instance it serves. */
export interface InstanceContext {
  /** Module name from the registration. */
  readonly module: string;
  readonly generationId: string;
  /** sha256 of the component bytes, as measured at load (`sha256:<hex>`). */
  readonly digest: string;
  readonly instanceId: number;
  /** Write one line to the module's own log. */
  log(level: string, message: string): void;
}

export type HostFunction = (...args: unknown[]) => unknown;

export interface Capability {
  /** The grant name used in manifests and registrations, e.g. `wasi:clocks`, `edgeward:hsm/keys`. */
  readonly name: string;
  /** Component import names (without `@version`) this grant links. */
  readonly interfaces: readonly string[];
  /** Linked for every module (its own log, its own exit). */
  readonly implicit?: boolean;
  /** Worker-side implementation: path from the package root of an `.mjs` exporting `imports(ctx)`. */
  readonly workerModule?: string;
  /** Host-side implementation for one instance: interface name → function name → function. */
  prepare?(instance: InstanceContext): Record<string, Record<string, HostFunction>>;
}

/** Capabilities every runtime knows. The daemon appends its own (hsm keys, workload identity). */
export const BUILTIN_CAPABILITIES: readonly Capability[] = [
  { name: 'edgeward:module/logging', interfaces: ['edgeward:module/logging'], implicit: true, workerModule: 'host/capabilities/logging/worker.mjs' },
  { name: 'wasi:cli/exit', interfaces: ['wasi:cli/exit'], implicit: true, workerModule: 'host/runtime/cli-exit.worker.mjs' },
  { name: 'wasi:clocks', interfaces: ['wasi:clocks/wall-clock', 'wasi:clocks/monotonic-clock'], workerModule: 'host/capabilities/clocks/worker.mjs' },
  {
    name: 'wasi:cli/stdio',
    interfaces: [
      'wasi:cli/stdout', 'wasi:cli/stderr', 'wasi:cli/stdin', 'wasi:cli/terminal-input', 'wasi:cli/terminal-output',
      'wasi:cli/terminal-stdin', 'wasi:cli/terminal-stdout', 'wasi:cli/terminal-stderr',
      'wasi:io/error', 'wasi:io/poll', 'wasi:io/streams',
      // Linked empty: no preopened directory, so no descriptor can ever be obtained.
      'wasi:filesystem/preopens', 'wasi:filesystem/types',
    ],
    workerModule: 'host/capabilities/stdio/worker.mjs',
  },
  { name: 'wasi:random', interfaces: ['wasi:random/random', 'wasi:random/insecure', 'wasi:random/insecure-seed'], workerModule: 'host/capabilities/random/worker.mjs' },
];

/** `wasi:clocks/wall-clock@0.2.3` → `wasi:clocks/wall-clock`. */
export function unversioned(importName: string): string {
  const at = importName.indexOf('@');
  return at < 0 ? importName : importName.slice(0, at);
}

export type LinkPlan =
  | { ok: true; capabilities: Capability[] }
  | { ok: false; message: string };

/**
 * Decide which capabilities link a component's imports. Fails on an unknown grant name (configure
 * phase: a typo is an error, never a silent deny) and on an import that no granted capability provides.
 */
export function planLinks(module: string, imports: readonly string[], grants: readonly string[], registry: readonly Capability[]): LinkPlan {
  const byName = new Map(registry.map((c) => [c.name, c] as const));
  for (const g of grants) {
    if (!byName.has(g)) return { ok: false, message: `module "${module}": unknown capability "${g}" (known: ${[...byName.keys()].join(', ')})` };
  }
  const linked = registry.filter((c) => c.implicit || grants.includes(c.name));
  const used = new Set<Capability>();
  for (const imp of imports) {
    const iface = unversioned(imp);
    const provider = linked.find((c) => c.interfaces.includes(iface));
    if (provider) {
      used.add(provider);
      continue;
    }
    const would = registry.find((c) => c.interfaces.includes(iface));
    const hint = would ? `grant "${would.name}" is missing` : 'no Edgeward capability provides it';
    return { ok: false, message: `module "${module}" imports "${imp}", which is not granted: ${hint}` };
  }
  return { ok: true, capabilities: [...used] };
}
