/**
 * Deployer: reconcile the registered modules to a deployment (IoT Edge agent's plan, reference §7):
 * remove what the manifest no longer has, then per startupOrder group (equal values concurrently)
 * create what is new, update what changed (digest or any setting), and bring the rest to its desired
 * status. One module's failure is reported and does not stop the others.
 */
import { measure } from './loader.js';
import { readSource } from './source.js';
import type { ModuleSpec } from './manifest.js';
import type { Registration } from './registry.js';
import { loadSignature } from './signature.js';
import type { DeployResult } from './types.js';
import { codeUnitOrder } from '../../hsm/support/order.js';

/** What the deployer needs of the runtime (runtime.ts `ComponentRuntime` is one). */
export interface DeployTarget {
  registrations(): Registration[];
  registration(name: string): Registration | undefined;
  create(spec: ModuleSpec): Promise<unknown>;
  update(spec: ModuleSpec): Promise<unknown>;
  remove(name: string): Promise<void>;
  /**
   * Start without clearing the back-off (runtime.ts `resume`). `measured`: the component bytes the
   * deployment's source just read, measured as `digest`, so the start need not read and hash its copy.
   */
  resume(name: string, measured?: { digest: string; bytes: Uint8Array }): Promise<void>;
  stop(name: string): Promise<void>;
  /** Running, or waiting out a back-off before its next start. */
  isActive(name: string): boolean;
}

export async function reconcile(rt: DeployTarget, specs: ModuleSpec[]): Promise<DeployResult> {
  const result: DeployResult = { created: [], updated: [], removed: [], unchanged: [], failed: [] };
  const wanted = new Set(specs.map((s) => s.name));
  for (const r of rt.registrations()) {
    if (wanted.has(r.name)) continue;
    try {
      await rt.remove(r.name);
      result.removed.push(r.name);
    } catch (err) {
      result.failed.push({ module: r.name, message: (err as Error).message });
    }
  }
  const order = [...new Set(specs.map((s) => s.startupOrder))].sort((a, b) => a - b);
  for (const o of order) {
    await Promise.all(specs.filter((s) => s.startupOrder === o).map((spec) => apply(rt, spec, result)));
  }
  return result;
}

async function apply(rt: DeployTarget, spec: ModuleSpec, result: DeployResult): Promise<void> {
  try {
    const old = rt.registration(spec.name);
    if (!old) {
      await rt.create(spec);
      result.created.push(spec.name);
    } else {
      const measured = await unchanged(old, spec);
      if (!measured) {
        await rt.update(spec);
        result.updated.push(spec.name);
        return;
      }
      // resume, not start: reapplying a deployment (as at every daemon start) keeps the back-off counts.
      if (spec.desiredStatus === 'running' && !rt.isActive(spec.name)) await rt.resume(spec.name, measured);
      if (spec.desiredStatus === 'stopped' && old.desiredStatus !== 'stopped') await rt.stop(spec.name);
      result.unchanged.push(spec.name);
    }
  } catch (err) {
    result.failed.push({ module: spec.name, message: (err as Error).message });
  }
}

/**
 * A module changed when its bytes (measured now), its signature (as read now) or any of its settings
 * differ from the registration. The signer identity is not compared: update() verifies it again.
 */
/** The source's bytes and their digest when `spec` is what `old` registered; undefined when it changed. */
async function unchanged(old: Registration, spec: ModuleSpec): Promise<{ digest: string; bytes: Uint8Array } | undefined> {
  const bytes = await readSource(spec.source, spec.digest);
  const digest = measure(bytes);
  if (digest !== old.digest) return undefined;
  const signature = spec.signature ? await loadSignature(spec.signature) : undefined;
  const { generationId: _g, digest: _d, signer: _s, signerSubject: _ss, plaintextDigest: _pd, ...was } = old;
  const { digest: _pin, ...now } = { ...spec, signature };
  return JSON.stringify(sortKeys(was)) === JSON.stringify(sortKeys(now)) ? { digest, bytes } : undefined;
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === 'object') {
    return Object.fromEntries(Object.entries(v).filter(([, x]) => x !== undefined).sort(([a], [b]) => codeUnitOrder(a, b)).map(([k, x]) => [k, sortKeys(x)]));
  }
  return v;
}
