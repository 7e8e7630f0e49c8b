/**
 * The supervisor's per-module counters (restart count, crash count, last exit, last error), kept in
 * `<state>/runtime/supervisor.json` beside the registry so `edgeward list` tells the same story after
 * a daemon restart. Written whole and atomically (SerialStateFile) whenever a counter changes.
 *
 * The file is bookkeeping, not a root of trust: a missing one means zeros, and a corrupt or unreadable
 * one is reported and replaced at the next write; neither blocks a start.
 */
import path from 'node:path';
import { z } from 'zod';
import { readStateJson, SerialStateFile } from '../state/dir.js';
import type { ModuleState } from './details.js';

/** Longest last-error message kept (the live state may hold a longer one). */
export const MAX_PERSISTED_ERROR = 1024;

const countersSchema = z
  .object({
    restartCount: z.number().int().min(0),
    crashCount: z.number().int().min(0),
    exit: z.object({ time: z.iso.datetime(), code: z.number().int() }).strict().optional(),
    lastError: z.string().max(MAX_PERSISTED_ERROR).optional(),
  })
  .strict();
export type PersistedCounters = z.infer<typeof countersSchema>;

const fileSchema = z.object({ version: z.literal(1), modules: z.record(z.string().max(64), countersSchema) }).strict();

export interface LoadedCounters {
  counters: Map<string, PersistedCounters>;
  /** Why the file could not be used (it was ignored), if so. */
  problem?: string;
}

export class CounterStore {
  private readonly store: SerialStateFile;

  constructor(stateDir: string) {
    this.store = new SerialStateFile(path.join(stateDir, 'runtime', 'supervisor.json'));
  }

  get file(): string {
    return this.store.file;
  }

  /** Read the saved counters; never throws (a bad file is reported in `problem` and ignored). */
  async load(): Promise<LoadedCounters> {
    try {
      const raw = await readStateJson<unknown>(this.file);
      if (raw === undefined) return { counters: new Map() };
      const r = fileSchema.safeParse(raw);
      if (!r.success) return { counters: new Map(), problem: `${this.file}: ${r.error.issues[0]?.path.join('.') || '(root)'}: ${r.error.issues[0]?.message}` };
      return { counters: new Map(Object.entries(r.data.modules)) };
    } catch (err) {
      return { counters: new Map(), problem: (err as Error).message };
    }
  }

  /** Save the counters of every module in `states` (one whole-file write; the last one wins). */
  save(states: ReadonlyMap<string, ModuleState>): Promise<void> {
    const modules: Record<string, PersistedCounters> = {};
    for (const [name, s] of states) modules[name] = toPersisted(s);
    return this.store.write({ version: 1, modules });
  }
}

export function toPersisted(s: ModuleState): PersistedCounters {
  return {
    restartCount: s.restartCount,
    crashCount: s.crashCount,
    ...(s.exit ? { exit: { time: s.exit.time.toISOString(), code: s.exit.code } } : {}),
    ...(s.lastError ? { lastError: s.lastError.slice(0, MAX_PERSISTED_ERROR) } : {}),
  };
}

/** A stopped module's state from what was saved (zeros when nothing was). */
export function fromPersisted(p: PersistedCounters | undefined): ModuleState {
  return {
    status: 'stopped',
    restartCount: p?.restartCount ?? 0,
    crashCount: p?.crashCount ?? 0,
    ...(p?.exit ? { exit: { time: new Date(p.exit.time), code: p.exit.code } } : {}),
    ...(p?.lastError ? { lastError: p.lastError } : {}),
  };
}
