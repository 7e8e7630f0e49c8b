/** Shared fixtures for the runtime tests: a temp state dir, test guests written as files, a runtime. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildTestGuest, type ExtraGuest, type WatGuest } from '../../guests/adversarial/components.js';
import { buildReliabilityGuest, isReliabilityGuest, type ReliabilityGuest } from '../../guests/adversarial/reliability.js';
import { ComponentRuntime, type RuntimeOptions } from '../../host/runtime/runtime.js';
import { edgewardCapabilities } from '../../host/capabilities/index.js';
import type { ModuleSpec } from '../../host/runtime/manifest.js';
import { silentLogger } from '../../host/log.js';
import { RuntimeError } from '../../host/runtime/types.js';
import { expect } from 'vitest';

export const TEST_LIMITS = { memory_mib: 16, call_timeout_ms: 2_000, max_value_bytes: 64 * 1024 };

export class Fixture {
  readonly dir = mkdtempSync(path.join(os.tmpdir(), 'edgeward-rt-'));
  readonly runtimes: ComponentRuntime[] = [];

  async guest(name: WatGuest | ExtraGuest | ReliabilityGuest): Promise<string> {
    const file = path.join(this.dir, `${name}.wasm`);
    writeFileSync(file, await (isReliabilityGuest(name) ? buildReliabilityGuest(name) : buildTestGuest(name)));
    return file;
  }

  async runtime(opts: Partial<RuntimeOptions> = {}): Promise<ComponentRuntime> {
    // Edgeward's own capabilities (those that need no daemon service), then the test's.
    const capabilities = [...edgewardCapabilities(), ...(opts.capabilities ?? [])];
    const rt = await ComponentRuntime.open({ stateDir: path.join(this.dir, 'state'), logger: silentLogger(), limits: TEST_LIMITS, ...opts, capabilities });
    this.runtimes.push(rt);
    return rt;
  }

  async cleanup(): Promise<void> {
    await Promise.all(this.runtimes.map((r) => r.close()));
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export function spec(name: string, source: string, over: Partial<ModuleSpec> = {}): ModuleSpec {
  return {
    name,
    source,
    kind: 'module',
    capabilities: [],
    limits: {},
    restartPolicy: 'never',
    desiredStatus: 'running',
    startupOrder: 4294967295,
    env: {},
    settings: {},
    ...over,
  };
}

/** The RuntimeError `p` rejects with (the test fails if it resolves or rejects with something else). */
export async function rejection(p: Promise<unknown>): Promise<RuntimeError> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(RuntimeError);
  return err as RuntimeError;
}

/** Every line of a module's log, as `edgeward logs` prints them. */
export async function moduleLogLines(rt: ComponentRuntime, name: string): Promise<string[]> {
  const lines: string[] = [];
  for await (const l of rt.logs(name, {})) lines.push(l);
  return lines;
}

export async function waitFor<T>(fn: () => T | Promise<T>, ms = 5_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error('waitFor: condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}
