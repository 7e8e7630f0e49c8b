/**
 * `edgeward:monitor/inventory`: the modules as the runtime reports them (name, kind, digest, signer,
 * grants, state, restarts) and the daemon's version; a snapshot, then the modules changed since a cursor.
 */
import type { ModuleDetails } from '../../runtime/types.js';
import { EDGEWARD_VERSION } from '../../version.js';
import type * as Wit from './generated/interfaces/edgeward-monitor-inventory.js';
import { guestCount, MonitorErrorPayload } from './errors.js';
import type { MonitorHub } from './hub.js';

/** Most modules one `changes` call names. */
export const MAX_CHANGES_PER_CALL = 256;

const KINDS: readonly Wit.ModuleKind[] = ['module', 'security-extension', 'confidential'];

/** A module's WIT state: quarantined (and not running again since), back-off, or the runtime's status. */
function stateOf(d: ModuleDetails, hub: MonitorHub): Wit.ModuleState {
  const status = d.status.runtimeStatus.status;
  if (status !== 'running' && hub.findings.quarantined(d.name)) return 'quarantined';
  if (d.edgeward?.['nextRestartAt']) return 'backoff';
  switch (status) {
    case 'running':
    case 'stopped':
    case 'failed':
    case 'unknown':
      return status;
    case 'dead':
      return 'failed';
  }
}

export function moduleInfo(d: ModuleDetails, hub: MonitorHub): Wit.ModuleInfo {
  const e = d.edgeward ?? {};
  const kind = KINDS.find((k) => k === e['kind']) ?? 'module';
  const subject = typeof e['signerSubject'] === 'string' ? e['signerSubject'] : undefined;
  return {
    name: d.name,
    kind,
    digest: d.config.settings.imageHash ?? '',
    signer: String(e['signer'] ?? 'unsigned'),
    ...(subject ? { signerSubject: subject } : {}),
    grants: Array.isArray(e['capabilities']) ? (e['capabilities'] as string[]) : [],
    state: stateOf(d, hub),
    restarts: Number(e['restartCount'] ?? 0),
    generationId: String(e['generationId'] ?? ''),
    source: d.config.settings.image,
  };
}

export function inventoryFunctions(hub: MonitorHub) {
  const daemon = (): Wit.DaemonInfo => ({ version: EDGEWARD_VERSION, uptimeSeconds: BigInt(hub.uptimeSeconds()) });
  return {
    daemon: async () => daemon(),
    async snapshot(): Promise<Wit.InventorySnapshot> {
      const cursor = hub.cursor;
      const modules = (await hub.rt().list()).map((d) => moduleInfo(d, hub));
      return { cursor: BigInt(cursor), daemon: daemon(), modules };
    },
    async changes(since: unknown, max: unknown): Promise<Wit.ChangeSet> {
      const from = guestCount(since, 'since');
      const n = Math.min(guestCount(max, 'max'), MAX_CHANGES_PER_CALL);
      const found = hub.changesSince(from, n);
      if (!found) throw new MonitorErrorPayload({ tag: 'cursor-expired' } satisfies Wit.InventoryError);
      const byName = new Map((await hub.rt().list()).map((d) => [d.name, d] as const));
      const changed = found.modules.map((module): Wit.Change => {
        const d = byName.get(module);
        return d ? { module, info: moduleInfo(d, hub) } : { module };
      });
      return { cursor: BigInt(found.cursor), changed };
    },
  };
}
