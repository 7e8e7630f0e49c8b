/**
 * Findings that security extensions submit, and the modules they quarantined: one JSON file in the state
 * directory (`monitor/findings.json`), rewritten atomically on every change, bounded (the oldest findings
 * go first). `edgeward findings` and `GET /findings` read it through the daemon.
 */
import path from 'node:path';
import { z } from 'zod';
import { ensureSubdir, readStateJson, SerialStateFile } from '../../state/dir.js';

export const SEVERITIES = ['info', 'low', 'medium', 'high', 'critical'] as const;
export type Severity = (typeof SEVERITIES)[number];

/** Most findings kept; past it the oldest are dropped (and counted). */
export const MAX_FINDINGS = 1000;

const findingSchema = z.object({
  id: z.string(),
  time: z.string(),
  /** The security extension (module name) that submitted it; "edgeward" for the daemon's own. */
  source: z.string(),
  ruleId: z.string(),
  severity: z.enum(SEVERITIES),
  summary: z.string(),
  evidence: z.array(z.tuple([z.string(), z.string()])),
  tags: z.array(z.string()),
  subject: z.string().optional(),
}).strict();
export type Finding = z.infer<typeof findingSchema>;

const quarantineSchema = z.object({ by: z.string(), reason: z.string(), time: z.string() }).strict();
export type Quarantine = z.infer<typeof quarantineSchema>;

const fileSchema = z.object({
  version: z.literal(1),
  next: z.number().int().min(1),
  /** Findings dropped to stay under MAX_FINDINGS, since the store was created. */
  dropped: z.number().int().min(0),
  findings: z.array(findingSchema),
  quarantined: z.record(z.string(), quarantineSchema),
}).strict();
type FindingsFile = z.infer<typeof fileSchema>;

export class FindingsStore {
  /** Changes run one after the other, each from the state the previous one left. */
  private chain: Promise<unknown> = Promise.resolve();

  private constructor(private readonly store: SerialStateFile, private data: FindingsFile) {}

  static async open(stateDir: string): Promise<FindingsStore> {
    const dir = await ensureSubdir(stateDir, 'monitor');
    const file = path.join(dir, 'findings.json');
    const raw = await readStateJson<unknown>(file);
    if (raw === undefined) return new FindingsStore(new SerialStateFile(file), { version: 1, next: 1, dropped: 0, findings: [], quarantined: {} });
    const parsed = fileSchema.safeParse(raw);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new Error(`state file ${file} is not a findings store Edgeward wrote (${issue?.path.join('.') || '(top)'}: ${issue?.message}); move it away to start with no findings`);
    }
    const data = parsed.data;
    return new FindingsStore(new SerialStateFile(file), data);
  }

  /** Keep `f` (its id and time assigned here) and persist; resolves to the id once on disk. */
  async add(f: Omit<Finding, 'id' | 'time'>): Promise<string> {
    let id = '';
    await this.change((d) => {
      id = `f-${d.next}`;
      const findings = [...d.findings, { id, time: new Date().toISOString(), ...f }];
      const over = Math.max(0, findings.length - MAX_FINDINGS);
      return { ...d, next: d.next + 1, dropped: d.dropped + over, findings: findings.slice(over) };
    });
    return id;
  }

  list(): { findings: Finding[]; dropped: number } {
    return { findings: [...this.data.findings], dropped: this.data.dropped };
  }

  quarantinedAll(): Record<string, Quarantine> {
    return { ...this.data.quarantined };
  }

  quarantined(module: string): Quarantine | undefined {
    return Object.hasOwn(this.data.quarantined, module) ? this.data.quarantined[module] : undefined;
  }

  async quarantine(module: string, q: Omit<Quarantine, 'time'>): Promise<void> {
    await this.change((d) => ({ ...d, quarantined: { ...d.quarantined, [module]: { ...q, time: new Date().toISOString() } } }));
  }

  /** The module was redeployed or removed: its quarantine mark goes. */
  async release(module: string): Promise<void> {
    if (!this.quarantined(module)) return;
    await this.change((d) => {
      const { [module]: _gone, ...rest } = d.quarantined;
      return { ...d, quarantined: rest };
    });
  }

  /** Apply `fn` after the changes before it; the new state is kept in memory only once it is on disk. */
  private change(fn: (d: FindingsFile) => FindingsFile): Promise<void> {
    const run = this.chain.then(async () => {
      const next = fn(this.data);
      await this.store.write(next);
      this.data = next;
    });
    this.chain = run.catch(() => undefined);
    return run;
  }
}
