/**
 * The memory budget `edgeward system status` shows (issue 14): the daemon process's own figures, and each
 * running module's share — its linear memories and its worker's V8 heap, asked of its worker (instance.ts
 * `memory`) with a bound, so a worker busy in a guest call never holds the status up (its figures are
 * then unknown: `busy`) — and the compiled component it shares with every module of the same digest,
 * counted once.
 *
 * The daemon's RSS is the whole process, sandbox worker threads included: the modules' shares are parts
 * of it, not additions to it.
 */
import { promises as fs } from 'node:fs';
import type { MemoryBudget, ModuleMemory } from '../status.js';
import type { WorkerMemory } from './sandbox/messages.js';
import { codeUnitOrder } from '../../hsm/support/order.js';

/** How long a worker has to answer: a worker between calls answers in well under a millisecond. */
export const MEMORY_PROBE_TIMEOUT_MS = 200;

/** What the budget asks of one running instance (sandbox/instance.ts `Instance`). */
export interface MemoryProbe {
  readonly alive: boolean;
  memory(timeoutMs: number): Promise<WorkerMemory | undefined>;
}

/** Where the budget reads its figures (the runtime's supervisor, registry and loader). */
export interface MemorySources {
  /** Running instances by module. */
  instances: ReadonlyMap<string, MemoryProbe>;
  /** The digest a module's component is stored under (its registration). */
  digestOf(name: string): string | undefined;
  /** The stored component's path for a digest (loader.ts `componentPath`). */
  componentPath(digest: string): string;
}

/** Something that reports a memory budget: the component runtime (runtime.ts `memoryBudget`). */
export interface MemoryBudgetSource {
  memoryBudget(): Promise<MemoryBudget>;
}

/** Whether `x` reports a memory budget (the management API's runtime may be another ModuleRuntime). */
export function hasMemoryBudget(x: object): x is MemoryBudgetSource {
  return typeof (x as Partial<MemoryBudgetSource>).memoryBudget === 'function';
}

/** The daemon's figures and every running module's share; takes at most about `timeoutMs`. */
export async function collectMemoryBudget(src: MemorySources, timeoutMs = MEMORY_PROBE_TIMEOUT_MS): Promise<MemoryBudget> {
  const running = [...src.instances].filter(([, inst]) => inst.alive).sort(([a], [b]) => codeUnitOrder(a, b));
  // All workers are asked at once: the call costs one bound, not one per module.
  const answers = await Promise.all(running.map(([, inst]) => inst.memory(timeoutMs).catch(() => undefined)));
  const code = await sharedCode(running.map(([name]) => [name, src.digestOf(name) ?? 'unknown']), src.componentPath);
  const modules = running.map(([name], i) => moduleShare(name, src.digestOf(name) ?? 'unknown', answers[i], code));
  const mem = process.memoryUsage();
  return {
    daemon: { rss: mem.rss, heapUsed: mem.heapUsed, heapTotal: mem.heapTotal, external: mem.external, arrayBuffers: mem.arrayBuffers },
    modules,
    code,
    probeTimeoutMs: timeoutMs,
  };
}

/** Component bytes per digest, once each, with the modules that run it. */
async function sharedCode(named: [string, string][], componentPath: (digest: string) => string): Promise<MemoryBudget['code']> {
  const byDigest = new Map<string, string[]>();
  for (const [name, digest] of named) byDigest.set(digest, [...(byDigest.get(digest) ?? []), name]);
  return Promise.all(
    [...byDigest].map(async ([digest, modules]) => {
      const st = digest === 'unknown' ? undefined : await fs.stat(componentPath(digest)).catch(() => undefined);
      return { digest, bytes: st?.size ?? 0, modules: modules.sort() };
    }),
  );
}

function moduleShare(name: string, digest: string, w: WorkerMemory | undefined, code: MemoryBudget['code']): ModuleMemory {
  const shared = code.find((c) => c.digest === digest);
  return {
    name,
    digest,
    state: w ? 'ok' : 'busy',
    linearBytes: w?.linear ?? null,
    heapUsedBytes: w?.heapUsed ?? null,
    heapTotalBytes: w?.heapTotal ?? null,
    heapLimitBytes: w?.heapLimit ?? null,
    externalBytes: w?.external ?? null,
    codeBytes: shared?.bytes ?? 0,
    codeSharedBy: shared?.modules.length ?? 1,
  };
}
