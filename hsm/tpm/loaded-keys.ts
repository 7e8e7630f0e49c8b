/**
 * The transient TPM contexts a key backend holds: a small LRU of loaded keys (transient handles) and the
 * long-lived SRK-salted session that carries secrets. A TPM without a resource manager has few object and
 * session slots (swtpm: 3 objects), so this is also where a command short of a slot gets one: by flushing
 * our least recently used key, or objects left behind by another client.
 */
import { ALG, HT, SE } from './constants.js';
import { TpmError } from './rc.js';
import { SRK_HANDLE } from './identity.js';
import type { SaltKey } from './seal.js';
import type { Session } from './session.js';
import { TpmResetError } from './channel.js';
import type { LoadedObject, Tpm } from './tpm.js';

/** Transient handles kept loaded; swtpm and most TPMs without a resource manager have 3 object slots. */
export const DEFAULT_LOADED_KEYS = 2;

/** Bounds the flush-and-retry of a command the TPM refused for want of an object or session slot. */
const MAX_RECLAIMS = 8;

const isOutOfSlots = (err: unknown): boolean =>
  err instanceof TpmError && (err.code === 'TPM_RC_OBJECT_MEMORY' || err.code === 'TPM_RC_SESSION_MEMORY' || err.code === 'TPM_RC_OBJECT_HANDLES' || err.code === 'TPM_RC_SESSION_HANDLES');

/** A loaded key and the TPM epoch it was loaded in (a reset since then took it away). */
interface Loaded extends LoadedObject {
  readonly epoch: number;
}

/** What loading a key needs: its label (the cache key) and its wrapped blob (base64, as in its key file). */
export interface WrappedKey {
  label: string;
  public: string;
  private: string;
}

export class LoadedKeys {
  private readonly loaded = new Map<string, Loaded>();
  /** Most transient objects held at once, ours and temporary ones (reliability H8). */
  private highWater = 0;
  private secretSession: (Session & { epoch?: number }) | undefined;

  constructor(
    private readonly tpm: Tpm,
    private maxLoaded: number,
    /** Salts the secret session, so that secrets cross the bus encrypted. */
    private readonly saltKey: SaltKey,
  ) {}

  /** Loaded keys, and the most ever held at once. */
  stats(): { loaded: number; highWater: number; maxLoaded: number } {
    return { loaded: this.loaded.size, highWater: this.highWater, maxLoaded: this.maxLoaded };
  }

  /** Forget (without flushing: they are gone) handles loaded before the TPM's last reset. */
  dropLost(): void {
    const epoch = this.tpm.epoch;
    for (const [label, obj] of this.loaded) if (obj.epoch !== epoch) this.loaded.delete(label);
    if (this.secretSession && this.secretSession.epoch !== epoch) this.secretSession = undefined;
  }

  /** Note `extra` temporary objects in use on top of the cache, for the high-water mark. */
  noteInUse(extra: number): void {
    this.highWater = Math.max(this.highWater, this.loaded.size + extra);
  }

  /**
   * Run a command that needs a free object or session slot. If the TPM has none (TPM_RC_OBJECT_MEMORY and
   * kin: a TPM with fewer slots than `maxLoaded`, or objects left by a client before a reconnection), flush
   * our least recently used key — never one in `keep` — and shrink the cache to what fits, or else flush
   * transient objects and sessions that are not ours (as at open: without a resource manager the key store
   * is the TPM's only user), and try again.
   */
  async withSlot<T>(keep: ReadonlySet<string>, fn: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await fn();
      } catch (err) {
        if (!isOutOfSlots(err) || attempt >= MAX_RECLAIMS) throw err;
        this.dropLost();
        const objects = (err as TpmError).code === 'TPM_RC_OBJECT_MEMORY' || (err as TpmError).code === 'TPM_RC_OBJECT_HANDLES';
        const victim = objects ? [...this.loaded.keys()].find((l) => !keep.has(l)) : undefined;
        if (victim !== undefined) {
          // The TPM held our `size` objects and not one more: cache no more than it holds.
          this.maxLoaded = Math.max(1, Math.min(this.maxLoaded, this.loaded.size));
          await this.evict(victim);
        } else if (!(await this.flushForeign())) throw err;
      }
    }
  }

  /** Flush transient objects and sessions this backend does not hold. True when something was flushed. */
  private async flushForeign(): Promise<boolean> {
    const ours = new Set<number>([...this.loaded.values()].map((o) => o.handle));
    if (this.secretSession) ours.add(this.secretSession.handle);
    let flushed = false;
    for (const range of [HT.TRANSIENT, HT.HMAC_SESSION, HT.POLICY_SESSION]) {
      for (const h of await this.tpm.getHandles((range << 24) >>> 0)) {
        if (ours.has(h)) continue;
        await this.tpm.flushContext(h).catch(() => undefined);
        flushed = true;
      }
    }
    return flushed;
  }

  /** Flush one cached key; a handle a reset already took away is just forgotten. */
  async evict(label: string): Promise<void> {
    const obj = this.loaded.get(label);
    if (!obj) return;
    this.loaded.delete(label);
    if (obj.epoch !== this.tpm.epoch) return;
    await this.tpm.flushContext(obj.handle).catch((err: unknown) => {
      if (!(err instanceof TpmResetError)) throw err;
    });
  }

  /** Flush cached handles, least recently used first and never `keep`, until at most `maxLoaded - n` remain. */
  async makeRoom(n: number, keep?: string): Promise<void> {
    this.dropLost();
    while (this.loaded.size > Math.max(keep === undefined ? 0 : 1, this.maxLoaded - n)) {
      const victim = [...this.loaded.keys()].find((l) => l !== keep);
      if (victim === undefined) return;
      await this.evict(victim);
    }
  }

  /** Load (or reuse) the key's transient handle; the least recently used one is flushed past `maxLoaded`. */
  async load(key: WrappedKey): Promise<LoadedObject> {
    this.dropLost();
    const hit = this.loaded.get(key.label);
    if (hit) {
      this.loaded.delete(key.label);
      this.loaded.set(key.label, hit);
      return hit;
    }
    await this.makeRoom(1);
    const obj = await this.withSlot(new Set(), () => this.tpm.load(SRK_HANDLE, Buffer.from(key.private, 'base64'), Buffer.from(key.public, 'base64')));
    this.loaded.set(key.label, { ...obj, epoch: this.tpm.epoch });
    this.noteInUse(0);
    return obj;
  }

  /**
   * Run `fn` in the long-lived salted session: salting costs an RSA decryption in the TPM, too slow per
   * operation on a discrete TPM. A failed command drops the session (the TPM may have lost it in a restart,
   * or its nonces may be out of step); the next call salts a new one.
   */
  async withSecretSession<T>(fn: (s: Session) => Promise<T>): Promise<T> {
    this.dropLost();
    if (!this.secretSession) {
      const fresh = await this.withSlot(new Set(this.loaded.keys()), () => this.tpm.startAuthSession(SE.HMAC, ALG.SHA256, { saltKey: this.saltKey }));
      this.secretSession = Object.assign(fresh, { epoch: this.tpm.epoch });
    }
    const s = this.secretSession;
    try {
      return await fn(s);
    } catch (err) {
      this.secretSession = undefined;
      await this.tpm.flushContext(s.handle).catch(() => undefined);
      throw err;
    }
  }

  /** Flush every loaded key and the secret session. */
  async flushAll(): Promise<void> {
    this.dropLost();
    for (const obj of this.loaded.values()) await this.tpm.flushContext(obj.handle).catch(() => undefined);
    this.loaded.clear();
    if (this.secretSession) await this.tpm.flushContext(this.secretSession.handle).catch(() => undefined);
    this.secretSession = undefined;
  }
}
