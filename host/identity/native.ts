/**
 * Native modules: processes or containers that use an Azure IoT SDK and reach the workload API over HTTP.
 * They have a registration of kind `native` (name, generation id, optional uid for their socket) kept
 * here, atomically, in `<state_dir>/identity/native-modules.json`. Each one gets its own workload socket.
 */
import path from 'node:path';
import { randomInt } from 'node:crypto';
import { z } from 'zod';
import { readStateJson, ensureSubdir, SerialStateFile } from '../state/dir.js';
import { RuntimeError } from '../runtime/types.js';
import { codeUnitOrder } from '../../hsm/support/order.js';

/** Native modules one device may register (every table has a capacity). */
export const MAX_NATIVE_MODULES = 64;
/** Module ids as IoT Hub allows them, `$` for system modules. */
export const NATIVE_NAME_RE = /^\$?[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

const nativeSchema = z.object({
  name: z.string().regex(NATIVE_NAME_RE),
  kind: z.literal('native'),
  generationId: z.string().regex(/^\d{1,32}$/),
  uid: z.number().int().nonnegative().optional(),
  createdAt: z.string(),
});
export type NativeModule = z.infer<typeof nativeSchema>;
const fileSchema = z.object({ version: z.literal(1), modules: z.array(nativeSchema) });

/** An IoT Edge-style generation id: a long decimal string (IoT Hub uses 18 digits). */
function newGenerationId(): string {
  return `${randomInt(100_000_000, 999_999_999)}${randomInt(100_000_000, 999_999_999)}`;
}

export class NativeModules {
  private readonly byName = new Map<string, NativeModule>();
  private readonly store: SerialStateFile;

  private constructor(private readonly file: string) {
    this.store = new SerialStateFile(file);
  }

  static async open(stateDir: string): Promise<NativeModules> {
    const dir = await ensureSubdir(stateDir, 'identity');
    const reg = new NativeModules(path.join(dir, 'native-modules.json'));
    const raw = await readStateJson<unknown>(reg.file);
    if (raw !== undefined) {
      const parsed = fileSchema.safeParse(raw);
      if (!parsed.success) throw new RuntimeError('failed', `${reg.file} is not a valid native module registry: ${parsed.error.issues[0]?.message}`);
      for (const m of parsed.data.modules) reg.byName.set(m.name, m);
    }
    return reg;
  }

  get(name: string): NativeModule | undefined {
    return this.byName.get(name);
  }

  all(): NativeModule[] {
    return [...this.byName.values()].sort((a, b) => codeUnitOrder(a.name, b.name));
  }

  /** Register (or return the existing registration of) a native module. */
  async register(name: string, opts: { uid?: number } = {}): Promise<{ module: NativeModule; created: boolean }> {
    if (!NATIVE_NAME_RE.test(name)) throw new RuntimeError('invalid', `invalid module name "${name.slice(0, 80)}"`);
    const existing = this.byName.get(name);
    if (existing) return { module: existing, created: false };
    if (this.byName.size >= MAX_NATIVE_MODULES) throw new RuntimeError('conflict', `at most ${MAX_NATIVE_MODULES} native modules`);
    const m: NativeModule = { name, kind: 'native', generationId: newGenerationId(), createdAt: new Date().toISOString(), ...(opts.uid !== undefined ? { uid: opts.uid } : {}) };
    this.byName.set(name, m);
    await this.persist();
    return { module: m, created: true };
  }

  /** A new generation id: every credential tied to the old one stops working (IoT Edge: PUT identities). */
  async regenerate(name: string): Promise<NativeModule> {
    const m = this.byName.get(name);
    if (!m) throw new RuntimeError('not-found', `module "${name}" not found`);
    const next = { ...m, generationId: newGenerationId() };
    this.byName.set(name, next);
    await this.persist();
    return next;
  }

  async remove(name: string): Promise<boolean> {
    if (!this.byName.delete(name)) return false;
    await this.persist();
    return true;
  }

  private persist(): Promise<void> {
    return this.store.write({ version: 1, modules: this.all() });
  }
}
