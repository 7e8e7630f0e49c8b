/**
 * What was deployed, so a daemon restart restores it instead of re-applying its configured deployment
 * over it (a module deployed with `edgeward deploy` used to vanish at the next start, replaced by the
 * embedded default's `hello`). `<state>/runtime/deployment.json` records, for every source a deployment
 * came from (`builtin:default`, a manifest file, the management API), the digest of what was applied, and
 * which source was applied last. At start (startModules):
 * - the embedded default is applied only on a state directory where nothing was ever deployed;
 * - a configured manifest file is applied when it is new or its content changed since it was applied;
 * - otherwise the registered modules (what the last deployment left, plus any change made since through
 *   the API) are started as they are.
 */
import { createHash } from 'node:crypto';
import path from 'node:path';
import { readStateJson, SerialStateFile } from '../state/dir.js';
import type { ModuleSpec } from './manifest.js';
import { codeUnitOrder } from '../../hsm/support/order.js';

/** The source of a deployment made through the management API (or the CLI, which uses it). */
export const API_SOURCE = 'management API';

export interface DeploymentRecord {
  /** The source applied last, and when. */
  last?: { source: string; digest: string; appliedAt: string; modules: string[] };
  /** Every source ever applied → the digest of what it applied then. */
  applied: Record<string, string>;
}

/** sha256 of the specs as applied (sources and settings in a stable JSON form). */
export function deploymentDigest(specs: readonly ModuleSpec[]): string {
  const canonical = (v: unknown): unknown =>
    Array.isArray(v) ? v.map(canonical) : v && typeof v === 'object' ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, canonical((v as Record<string, unknown>)[k])])) : v;
  return `sha256:${createHash('sha256').update(JSON.stringify(canonical([...specs].sort((a, b) => codeUnitOrder(a.name, b.name))))).digest('hex')}`;
}

export class DeploymentRecords {
  private constructor(private readonly file: SerialStateFile, private record: DeploymentRecord) {}

  static async open(stateDir: string): Promise<DeploymentRecords> {
    const file = path.join(stateDir, 'runtime', 'deployment.json');
    const saved = await readStateJson<DeploymentRecord>(file);
    const record = saved && typeof saved === 'object' && saved.applied && typeof saved.applied === 'object' ? saved : { applied: {} };
    return new DeploymentRecords(new SerialStateFile(file), record);
  }

  /** Whether any deployment was ever applied on this state directory. */
  get any(): boolean {
    return this.record.last !== undefined || Object.keys(this.record.applied).length > 0;
  }

  /** The digest `source` had when it was last applied, if ever. */
  appliedDigest(source: string): string | undefined {
    return this.record.applied[source];
  }

  get last(): DeploymentRecord['last'] {
    return this.record.last;
  }

  async applied(source: string, digest: string, modules: string[]): Promise<void> {
    this.record = { last: { source, digest, appliedAt: new Date().toISOString(), modules }, applied: { ...this.record.applied, [source]: digest } };
    await this.file.write(this.record);
  }
}
