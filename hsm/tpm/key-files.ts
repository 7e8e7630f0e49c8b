/**
 * The TPM key backend's store of wrapped blobs: one JSON file per label, `<dir>/<sha256(label)>.json`,
 * holding the key's TPM2B_PUBLIC and its TPM2B_PRIVATE (encrypted and integrity-protected by the SRK,
 * useless off this TPM). Writes are atomic; the backend is the files' only writer, so a file once read is
 * cached.
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { writeFileAtomic, removeFileDurable } from '../support/atomic.js';
import type { PcrSelection } from './types.js';
import { codeUnitOrder } from '../support/order.js';

export type TpmKeyType = 'ec-p256' | 'rsa-2048' | 'hmac-sha256';

/** Labels are short printable strings (`edgeward/<namespace>/<id>`). */
export const MAX_LABEL_LENGTH = 256;

export interface KeyFile {
  version: 1;
  label: string;
  kind: TpmKeyType | 'sealed';
  /** base64 TPM2B_PUBLIC. */
  public: string;
  /** base64 TPM2B_PRIVATE. */
  private: string;
  selection?: PcrSelection[];
  policy?: string;
}

export class TpmKeyError extends Error {
  constructor(
    readonly kind: 'not-found' | 'already-exists' | 'invalid-argument' | 'wrong-type',
    message: string,
  ) {
    super(message);
    this.name = 'TpmKeyError';
  }
}

export class KeyFiles {
  /** Key files already read. */
  private readonly cache = new Map<string, KeyFile>();

  constructor(readonly dir: string) {}

  private pathOf(label: string): string {
    if (label.length === 0 || label.length > MAX_LABEL_LENGTH || /[\x00-\x1f]/.test(label)) {
      throw new TpmKeyError('invalid-argument', `key label must be 1..${MAX_LABEL_LENGTH} printable characters`);
    }
    return path.join(this.dir, `${createHash('sha256').update(label).digest('hex')}.json`);
  }

  /** The label's key file, or undefined. */
  async read(label: string): Promise<KeyFile | undefined> {
    const cached = this.cache.get(label);
    if (cached) return cached;
    try {
      const f = JSON.parse(await fs.readFile(this.pathOf(label), 'utf8')) as KeyFile;
      if (f.label !== label) return undefined;
      this.cache.set(label, f);
      return f;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  /** The label's key file, which must exist and be one of `kinds`. */
  async must(label: string, kinds: KeyFile['kind'][]): Promise<KeyFile> {
    const f = await this.read(label);
    if (!f) throw new TpmKeyError('not-found', `no TPM key "${label}"`);
    if (!kinds.includes(f.kind)) throw new TpmKeyError('wrong-type', `TPM key "${label}" is ${f.kind}, not ${kinds.join(' or ')}`);
    return f;
  }

  /** Refuse a label that is taken. */
  async mustBeFree(label: string): Promise<void> {
    if (await this.read(label)) throw new TpmKeyError('already-exists', `TPM key "${label}" already exists`);
  }

  /** Write a new key file (atomically: a key whose file never reached its name was never created). */
  async write(f: KeyFile): Promise<void> {
    await this.mustBeFree(f.label);
    await writeFileAtomic(this.pathOf(f.label), JSON.stringify(f));
    this.cache.set(f.label, f);
  }

  async remove(label: string): Promise<void> {
    this.cache.delete(label);
    await removeFileDurable(this.pathOf(label));
  }

  /** Labels starting with `prefix`, sorted. */
  async list(prefix = ''): Promise<{ label: string; type: KeyFile['kind'] }[]> {
    const out: { label: string; type: KeyFile['kind'] }[] = [];
    for (const name of await fs.readdir(this.dir)) {
      if (!/^[0-9a-f]{64}\.json$/.test(name)) continue;
      const f = JSON.parse(await fs.readFile(path.join(this.dir, name), 'utf8')) as KeyFile;
      if (f.label.startsWith(prefix)) out.push({ label: f.label, type: f.kind });
    }
    return out.sort((a, b) => codeUnitOrder(a.label, b.label));
  }
}
