/**
 * Loader: bytes in, measured, transpiled once, compiled once.
 *
 * Order matters (DESIGN "Measurement"): the sha256 of the bytes is computed before anything parses
 * them, compared to the pin, and only then handed to jco. Transpiled output is cached on disk under the
 * digest with a sha256 of every file, so a modified cached core module or glue is refused
 * (`integrity-mismatch`) rather than run. Compiled `WebAssembly.Module`s are cached in memory per digest
 * and memory ceiling (V8 offers no portable on-disk cache for them), and posted to each worker.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { promises as fs, type BigIntStats } from 'node:fs';
import path from 'node:path';
import { writeFileAtomic, fsyncDir } from '../state/atomic.js';
import { IntegrityError, RuntimeError } from './errors.js';
import { transpileComponent, type Transpiled } from './transpiler.js';
import { realModuleOf, stubComponent } from './stub-core.js';
import { capCoreModuleMemory, MemoryLimitError, WASM_PAGE_BYTES } from './wasm-memory.js';
import { hardenGlue } from './harden-glue.js';
import type { Phases } from './phases.js';
import { openGlueCodeStore, type GlueCodeStore } from './glue-code-store.js';
import { withWasmFeatures } from './wasm-features.js';
import { decodeComponentTypes } from '../boundary/decode.js';
import type { ComponentType } from '../boundary/types.js';

/** A compiled core module (`WebAssembly.Module`; tsconfig's lib has no WebAssembly types). */
export type CoreModule = { readonly __wasmModule?: never };
const wasm = (globalThis as unknown as { WebAssembly: { compile(bytes: Uint8Array): Promise<CoreModule> } }).WebAssembly;

/** Bumped when the transpile options or the glue rewrite change, so stale cache entries are not reused. */
const CACHE_FORMAT = 'jco-async-v4-checked-lifting';
const GLUE = 'component.mjs';

export type Digest = `sha256:${string}`;

function glueOf(bytes: Uint8Array | undefined): string {
  if (!bytes) throw new RuntimeError('integrity-mismatch', 'transpiled component has no JS glue');
  return Buffer.from(bytes).toString('utf8');
}

/** The files of a transpile that are kept (cache name → bytes): the glue and the core modules. */
function cacheFiles(out: Transpiled): [string, Uint8Array][] {
  const kept: [string, Uint8Array][] = [];
  for (const [name, data] of Object.entries(out.files)) {
    if (name.endsWith('.d.ts')) continue;
    const target = name === 'component.js' ? GLUE : name;
    if (!target.includes('/')) kept.push([target, data]);
  }
  return kept;
}

function preparedOf(digest: Digest, out: Transpiled): Prepared {
  const coreModules = new Map(cacheFiles(out).filter(([n]) => n.endsWith('.wasm')));
  return { digest, glueSource: glueOf(out.files['component.js']), coreModules, imports: out.imports, exports: out.exports };
}

/** The declared types of a component, or undefined where this reader cannot read them (admission says why). */
function typesOf(component: Uint8Array): ComponentType | undefined {
  try {
    return decodeComponentTypes(component);
  } catch {
    return undefined;
  }
}

/** One in-flight or finished computation per key; a failure is forgotten so the next call retries. */
function memo<T>(map: Map<string, Promise<T>>, key: string, make: () => Promise<T>): Promise<T> {
  let p = map.get(key);
  if (!p) {
    p = make();
    map.set(key, p);
    p.catch(() => map.delete(key));
  }
  return p;
}

/** A file's identity: any write to it changes its ctime (statIdentity is compared, never trusted alone for a new file). */
function statIdentity(st: BigIntStats): string {
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
}

/** A file's bytes and its identity, both from one open file (the identity is taken before the read). */
async function readWithStat(file: string): Promise<[Buffer, BigIntStats]> {
  const fh = await fs.open(file, 'r');
  try {
    const st = await fh.stat({ bigint: true });
    return [await fh.readFile(), st];
  } finally {
    await fh.close();
  }
}

export function measure(bytes: Uint8Array): Digest {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

export function isDigest(s: string): s is Digest {
  return /^sha256:[0-9a-f]{64}$/.test(s);
}

/** A component (not a core module): magic `\0asm`, version 0x0d, layer 1 (component model binary.md). */
export function checkComponentHeader(bytes: Uint8Array): void {
  const magic = bytes.length >= 8 && bytes[0] === 0 && bytes[1] === 0x61 && bytes[2] === 0x73 && bytes[3] === 0x6d;
  if (!magic) throw new RuntimeError('invalid', `not a WebAssembly component: bad magic (${bytes.length} bytes read)`);
  if (bytes[4] === 1 && bytes[6] === 0) throw new RuntimeError('invalid', 'a core WebAssembly module, not a component: build it with componentize-js or wasm-tools component new');
  if (bytes[6] !== 1) throw new RuntimeError('invalid', 'not a WebAssembly component: unknown layer');
}

/**
 * Transpile a copy whose big core modules are stubs (stub-core.ts), then put the real core modules back
 * in jco's output by the stubs' exact bytes. Undefined (the caller transpiles the real component) when
 * nothing was stubbed, jco fails on the copy, or a stub does not come back byte for byte.
 */
async function transpileStubbed(component: Uint8Array): Promise<Transpiled | undefined> {
  let stubbed: ReturnType<typeof stubComponent>;
  try {
    stubbed = stubComponent(component);
  } catch {
    return undefined; // malformed: let jco say what is wrong with the real bytes
  }
  if (!stubbed) return undefined;
  const out = await transpileComponent(stubbed.component).catch(() => undefined);
  if (!out) return undefined;
  const files: Record<string, Uint8Array> = {};
  let swapped = 0;
  for (const [name, data] of Object.entries(out.files)) {
    const real = name.endsWith('.wasm') ? realModuleOf(stubbed, data) : undefined;
    if (real) swapped++;
    files[name] = real ?? data;
  }
  if (swapped !== stubbed.swaps.length) return undefined;
  return { ...out, files };
}

/** Transpiled, verified form of one component. */
export interface Prepared {
  digest: Digest;
  /**
   * The verified JS glue, as text. The worker compiles these bytes in memory (glue-script.mjs), never
   * the cache file, so nothing can swap the file between the hash check and the compile.
   */
  glueSource: string;
  /** Core module file name → bytes (verified against the cache index). */
  coreModules: Map<string, Uint8Array>;
  /** Component imports as jco names them (`edgeward:module/logging`, `wasi:clocks/wall-clock@0.2.3`). */
  imports: string[];
  exports: string[];
  codeCache?: GlueCodeStore; // the glue's V8 code cache on disk, where the cache is sealed (glue-code-store.ts)
  /** The component's declared types, decoded once and kept in the sealed index (admission checks them). */
  declared?: ComponentType;
}

interface CacheIndex {
  format: string;
  digest: Digest;
  files: Record<string, string>;
  imports: string[];
  exports: string[];
  /** Where the cache is sealed: the declared types (a cold decode of hello's was 15–40 ms in a new daemon). */
  types?: ComponentType;
}

export interface LoaderStats {
  transpiles: number;
  diskHits: number;
  compiles: number;
}

/** A MAC over the cache index (see Loader). */
export interface CacheSeal {
  mac(data: Uint8Array): Promise<Uint8Array>;
}

const INDEX = 'index.json';
const INDEX_MAC = 'index.mac';

export class Loader {
  readonly stats: LoaderStats = { transpiles: 0, diskHits: 0, compiles: 0 };
  private readonly prepared = new Map<string, Promise<Prepared>>();
  private readonly compiled = new Map<string, Promise<Record<string, CoreModule>>>();
  /** Stored copies measured (or written) by this loader: digest → the file's identity then (storedUnchanged). */
  private readonly measured = new Map<string, string>();

  /**
   * `seal`: a MAC by a key the device keeps (the daemon's HMAC key in the key service). The cache index
   * names the sha256 of every cached file, so sealing the index binds the glue and core modules that will
   * run to this device: someone who can write the state directory cannot swap the glue and fix up the
   * index (the signature check at each start covers the component bytes, not the cache). Without a seal
   * (tests, tools) the index is checked only against itself.
   */
  constructor(private readonly stateDir: string, private readonly seal?: CacheSeal) {}

  private get componentsDir(): string { return path.join(this.stateDir, 'components'); }
  private get cacheDir(): string { return path.join(this.stateDir, 'cache'); }

  /**
   * Keep a content-addressed copy of `bytes`, which the caller measured as `digest` (they are not hashed
   * again). A stored copy that differs from them (same name, changed in place) is replaced: a redeploy is
   * how a module found tampered with (host/measure/integrity.ts) gets its bytes back. Compared byte for
   * byte (memcmp), not hashed.
   */
  async store(bytes: Uint8Array, digest: Digest = measure(bytes)): Promise<Digest> {
    await fs.mkdir(this.componentsDir, { recursive: true, mode: 0o700 });
    const file = this.componentPath(digest);
    const have = await fs.open(file, 'r').catch(() => undefined);
    try {
      const st = have && (await have.stat({ bigint: true }));
      if (st && st.size === BigInt(bytes.length) && Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).equals(await have.readFile())) {
        this.measured.set(digest, statIdentity(st));
        return digest;
      }
    } finally {
      await have?.close();
    }
    await writeFileAtomic(file, bytes, 0o600);
    this.measured.set(digest, statIdentity(await fs.stat(file, { bigint: true })));
    return digest;
  }

  /**
   * Whether the stored copy of `digest` is, by its inode's identity (device, inode, size, mtime and ctime
   * in ns), the very file this loader last measured or wrote as `digest`. Any write to it moves its ctime,
   * which no unprivileged process can set back, so an unchanged identity means unchanged bytes and a start
   * need not read and hash them again; a changed one (or none recorded) means: read and measure.
   */
  async storedUnchanged(digest: Digest): Promise<boolean> {
    const want = this.measured.get(digest);
    if (want === undefined) return false;
    const st = await fs.stat(this.componentPath(digest), { bigint: true }).catch(() => undefined);
    return st !== undefined && statIdentity(st) === want;
  }

  componentPath(digest: Digest): string {
    return path.join(this.componentsDir, `${digest.slice(7)}.wasm`);
  }

  /** Read the stored copy for `expected` and measure it again; a differing digest refuses the load (IntegrityError). */
  async loadStored(module: string, expected: Digest, phases?: Phases): Promise<Uint8Array> {
    const t0 = performance.now();
    const [bytes, st] = await readWithStat(this.componentPath(expected)).catch(() => {
      throw new IntegrityError(`module "${module}": component ${expected} is missing from the store`);
    });
    const t1 = performance.now();
    const actual = measure(bytes);
    phases?.add('read', t1 - t0);
    phases?.add('measure', performance.now() - t1);
    if (actual !== expected) {
      this.measured.delete(expected);
      throw new IntegrityError(`module "${module}": component measured ${actual} but the registration pins ${expected}; not started`, actual);
    }
    this.measured.set(expected, statIdentity(st));
    return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength); // a view, not a copy
  }

  /**
   * Transpile (or take from the verified disk cache) the component measured as `digest`. `disk: false`
   * (confidential modules, whose plaintext must never touch disk): neither read nor write the disk cache;
   * the transpile is kept in memory only, under its own key.
   */
  prepare(digest: Digest, bytes: () => Promise<Uint8Array>, opts: { disk?: boolean } = {}): Promise<Prepared> {
    if (opts.disk === false) return memo(this.prepared, `memory:${digest}`, async () => preparedOf(digest, await this.transpile(digest, await bytes())));
    return memo(this.prepared, digest, () => this.prepareUncached(digest, bytes));
  }

  private async prepareUncached(digest: Digest, bytes: () => Promise<Uint8Array>): Promise<Prepared> {
    const dir = path.join(this.cacheDir, digest.slice(7));
    const fromDisk = await this.readCache(dir, digest);
    if (fromDisk) {
      this.stats.diskHits++;
      return fromDisk;
    }
    const component = await bytes();
    const out = await this.transpile(digest, component);
    const declared = this.seal ? typesOf(component) : undefined;
    const files: Record<string, string> = {};
    const tmp = `${dir}.${process.pid}.${Date.now()}.tmp`;
    await fs.mkdir(tmp, { recursive: true, mode: 0o700 });
    for (const [target, data] of cacheFiles(out)) {
      await fs.writeFile(path.join(tmp, target), data, { mode: 0o600 });
      files[target] = measure(data);
    }
    const index: CacheIndex = { format: CACHE_FORMAT, digest, files, imports: out.imports, exports: out.exports, ...(declared ? { types: declared } : {}) };
    const indexBytes = Buffer.from(JSON.stringify(index));
    await fs.writeFile(path.join(tmp, INDEX), indexBytes, { mode: 0o600 });
    if (this.seal) await fs.writeFile(path.join(tmp, INDEX_MAC), Buffer.from(await this.seal.mac(indexBytes)).toString('hex'), { mode: 0o600 });
    await fs.rm(dir, { recursive: true, force: true });
    await fs.rename(tmp, dir);
    await fsyncDir(this.cacheDir);
    return this.withCodeCache(dir, { ...preparedOf(digest, out), ...(declared ? { declared } : {}) });
  }

  /** Transpile `component` with jco (in its own process, transpiler.ts) and harden the glue's lifting. */
  private async transpile(digest: Digest, component: Uint8Array): Promise<Transpiled> {
    checkComponentHeader(component);
    let out: Transpiled;
    try {
      out = (await transpileStubbed(component)) ?? (await transpileComponent(component));
    } catch (err) {
      throw new RuntimeError('invalid', `component ${digest.slice(0, 19)}… is malformed or truncated: ${(err as Error).message.split('\n')[0]}`);
    }
    this.stats.transpiles++;
    // Lifting that traps like the Canonical ABI (harden-glue.ts); glue of a shape it does not know is refused.
    try {
      out.files['component.js'] = Buffer.from(hardenGlue(glueOf(out.files['component.js'])));
    } catch (err) {
      throw new RuntimeError('invalid', `component ${digest.slice(0, 19)}…: ${(err as Error).message}`);
    }
    return out;
  }

  private async readCache(dir: string, digest: Digest): Promise<Prepared | undefined> {
    let index: CacheIndex;
    let indexBytes: Buffer;
    try {
      indexBytes = await fs.readFile(path.join(dir, INDEX));
      index = JSON.parse(indexBytes.toString('utf8')) as CacheIndex;
    } catch {
      return undefined;
    }
    if (this.seal) {
      // No seal (a cache written before sealing, or the seal file removed): transpile again from the
      // measured component. A seal that does not match: the index was changed here, refuse.
      const stored = await fs.readFile(path.join(dir, INDEX_MAC), 'utf8').catch(() => undefined);
      if (stored === undefined) return undefined;
      const want = Buffer.from(await this.seal.mac(indexBytes));
      const got = Buffer.from(stored.trim(), 'hex');
      if (got.length !== want.length || !timingSafeEqual(got, want)) {
        throw new RuntimeError('integrity-mismatch', `the cache index of component ${digest} is not sealed by this device's key; refusing it (remove ${dir} to rebuild)`);
      }
    }
    if (index.format !== CACHE_FORMAT || index.digest !== digest) return undefined;
    const coreModules = new Map<string, Uint8Array>();
    let glue: Uint8Array | undefined;
    for (const [name, want] of Object.entries(index.files)) {
      const data = new Uint8Array(await fs.readFile(path.join(dir, name)));
      const got = measure(data);
      if (got !== want) {
        throw new RuntimeError('integrity-mismatch', `cached ${name} of component ${digest} measured ${got}, expected ${want}; refusing to run it (remove ${dir} to rebuild)`);
      }
      if (name.endsWith('.wasm')) coreModules.set(name, data);
      if (name === GLUE) glue = data;
    }
    const declared = this.seal && index.types ? { declared: index.types } : {};
    return this.withCodeCache(dir, { digest, glueSource: glueOf(glue), coreModules, imports: index.imports, exports: index.exports, ...declared });
  }

  private async withCodeCache(dir: string, p: Prepared): Promise<Prepared> { // the code cache, where sealed
    return this.seal ? { ...p, codeCache: await openGlueCodeStore(dir, p.digest, p.glueSource, this.seal) } : p;
  }

  /**
   * Drop the in-memory-only transpiles (and their compiled modules) of digests not in `inUse`: a removed
   * confidential module's decrypted code is not kept by the daemon.
   */
  forgetInMemory(inUse: ReadonlySet<string>): void {
    for (const digest of this.measured.keys()) if (!inUse.has(digest)) this.measured.delete(digest);
    for (const key of this.prepared.keys()) {
      const digest = key.startsWith('memory:') ? key.slice('memory:'.length) : undefined;
      if (digest === undefined || inUse.has(digest)) continue;
      this.prepared.delete(key);
      for (const c of this.compiled.keys()) if (c.startsWith(`${digest}/`)) this.compiled.delete(c);
    }
  }

  /** Check the cached transpile of `digest` again (seal and file digests); throws integrity-mismatch. Not cached: fine. */
  async verifyCached(digest: Digest): Promise<void> {
    await this.readCache(path.join(this.cacheDir, digest.slice(7)), digest);
  }

  /** Compile every core module with its memories capped at `memoryMib`. */
  compile(p: Prepared, memoryMib: number): Promise<Record<string, CoreModule>> {
    return memo(this.compiled, `${p.digest}/${memoryMib}`, () => this.compileUncached(p, memoryMib));
  }

  private async compileUncached(p: Prepared, memoryMib: number): Promise<Record<string, CoreModule>> {
    const capPages = Math.floor((memoryMib * 1024 * 1024) / WASM_PAGE_BYTES);
    const capped: Array<[string, Uint8Array]> = [];
    for (const [name, bytes] of p.coreModules) {
      try {
        capped.push([name, capCoreModuleMemory(bytes, capPages).bytes]);
      } catch (err) {
        if (err instanceof MemoryLimitError) throw new RuntimeError('invalid', `component ${p.digest}: ${name}: ${err.message}`);
        throw err;
      }
    }
    // All at once: V8 compiles each on its background threads, and a QuickJS component has 13 core
    // modules; one after another paid each one's hand-off to those threads and back in turn. hello's 13,
    // median of 15, alternated in one process: 18–19 ms one after another, 12–13 ms all at once.
    const compiled = await withWasmFeatures(() => Promise.all(capped.map(([, bytes]) => wasm.compile(bytes))));
    this.stats.compiles++;
    return Object.fromEntries(capped.map(([name], i) => [name, compiled[i]!]));
  }
}
