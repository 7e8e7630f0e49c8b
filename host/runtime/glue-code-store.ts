/**
 * A glue's V8 code cache kept beside its transpile in the sealed cache (`<cache>/<digest>/glue.v8cache`):
 * a new daemon's first start of a module gets it, and the rehearsal that makes it (sandbox/glue-cache.ts,
 * 80–146 ms of CPU per distinct glue here) no longer runs at every boot.
 *
 * A code cache is compiled code: V8 checks only its own version and flags, and the source's length. So it
 * is kept only where the transpile cache is sealed, under a MAC by the device's key over the component's
 * digest, the glue text's sha256, V8's `cachedDataVersionTag()` (its version and flags) and the bytes. A
 * file whose MAC does not match (another V8 or other flags, or a change on disk) is not used, and the next
 * rehearsal replaces it. The MAC is written after the data: a crash between the two leaves a mismatch,
 * never a cache used unchecked. Confidential modules keep none (their transpile never touches disk).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import v8 from 'node:v8';
import { writeFileAtomic } from '../state/atomic.js';

const FILE = 'glue.v8cache';
const MAC_FILE = 'glue.v8cache.mac';

/** The code cache on disk for one glue: what was there and verified, and how to keep a new one. */
export interface GlueCodeStore {
  /** The verified cache, if one was kept for this glue, this V8 and these flags. */
  readonly data?: Uint8Array;
  /** Keep `data` (a rehearsed cache of this glue) for the next daemon. */
  save(data: Uint8Array): Promise<void>;
}

/** The store in the cache directory `dir` of `digest`, whose verified glue is `glueSource`. */
export async function openGlueCodeStore(dir: string, digest: string, glueSource: string, seal: { mac(data: Uint8Array): Promise<Uint8Array> }): Promise<GlueCodeStore> {
  const glue = createHash('sha256').update(glueSource).digest('hex');
  const macOf = async (data: Uint8Array): Promise<Buffer> =>
    Buffer.from(await seal.mac(Buffer.concat([Buffer.from(`edgeward-glue-code-cache-v1\n${digest}\n${glue}\n${v8.cachedDataVersionTag()}\n`), data])));
  let data: Uint8Array | undefined;
  const [bytes, stored] = await Promise.all([fs.readFile(path.join(dir, FILE)).catch(() => undefined), fs.readFile(path.join(dir, MAC_FILE), 'utf8').catch(() => undefined)]);
  if (bytes && stored !== undefined) {
    const got = Buffer.from(stored.trim(), 'hex');
    const want = await macOf(bytes);
    if (got.length === want.length && timingSafeEqual(got, want)) data = new Uint8Array(bytes);
  }
  return {
    ...(data ? { data } : {}),
    async save(d) {
      const mac = (await macOf(d)).toString('hex');
      await writeFileAtomic(path.join(dir, FILE), d, 0o600);
      await writeFileAtomic(path.join(dir, MAC_FILE), mac, 0o600);
    },
  };
}
