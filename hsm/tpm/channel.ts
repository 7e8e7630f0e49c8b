/**
 * How one TPM 2.0 command reaches the TPM and its answer comes back (Part 1 §18): `TpmChannel` frames a
 * command (header, handles, authorization area, parameters), serialises commands (one in flight; sessions'
 * nonces roll in order), retries the warnings the spec allows to retry, decodes response codes into
 * `TpmError`, checks response HMACs, and refuses commands naming a handle a TPM reset took away. The
 * commands themselves (Part 3) are `Tpm`'s methods (tpm.ts).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { CC, HT, ST, commandName } from './constants.js';
import { Reader, Writer } from './marshal.js';
import { TpmError, isRetryable } from './rc.js';
import { withFirstParam } from './params.js';
import { cpHash, rpHash, type Authorization } from './session.js';
import type { TpmTransport } from './transport/base.js';
import { handleName, readPublic, type TpmtPublic } from './types.js';

const MAX_RETRIES = 20;
const RC_INITIALIZE = 0x100;

/** A handle with, when known, its Name (needed for HMAC-session cpHash). */
export type Entity = number | { handle: number; name: Buffer };

export interface PublicInfo {
  public: TpmtPublic;
  /** TPM2B_PUBLIC exactly as the TPM returned it. */
  publicBytes: Buffer;
  name: Buffer;
}

/** One command's handles, sessions and parameter area, and how many handles its response carries. */
export interface Call {
  handles?: Entity[];
  auths?: Authorization[];
  params?: Buffer;
  rspHandles?: number;
}

/** A decoded response: its handles, and a reader over its (decrypted) parameter area. */
export interface Answer {
  handles: number[];
  r: Reader;
}

/**
 * A command named a transient object or session that the TPM lost in a reset (TPM_RC_INITIALIZE answered and
 * TPM2_Startup sent, or the connection replaced: a restarted simulator, a reopened /dev/tpmrm0). It is refused
 * before it reaches the TPM, where the same handle number may by now name another object: whoever held the
 * handle reloads its object (from its wrapped blob) and retries.
 */
export class TpmResetError extends Error {
  constructor(
    readonly command: number,
    readonly handle: number,
  ) {
    super(`${commandName(command)} refused: handle 0x${handle.toString(16)} was lost when the TPM was reset or reconnected; reload it and retry`);
    this.name = 'TpmResetError';
  }
}

/** The response code of a response (a response too short for its header is malformed, never a RangeError). */
function responseCode(rsp: Buffer): number {
  const r = new Reader(rsp);
  r.u16();
  r.u32();
  return r.u32();
}

/** Transient objects and sessions: the handles a TPM reset invalidates. */
function isContextHandle(h: number): boolean {
  const ht = h >>> 24;
  return ht === HT.TRANSIENT || ht === HT.HMAC_SESSION || ht === HT.POLICY_SESSION;
}

const handleOf = (e: Entity): number => (typeof e === 'number' ? e : e.handle);

/** TPM2_Startup(CLEAR) as raw bytes: sent in the middle of another command, so not through `call`. */
const STARTUP_CLEAR = (): Buffer => new Writer().u16(ST.NO_SESSIONS).u32(12).u32(CC.Startup).u16(0).finish();

export class TpmChannel {
  private queue: Promise<unknown> = Promise.resolve();
  private resets = 0;
  /** Transport generation of the last answered command (undefined before the first). */
  private seenGeneration: number | undefined;
  /** Context handles this Tpm got from the TPM since the last reset, and those a reset took away. */
  private readonly live = new Set<number>();
  private readonly lost = new Set<number>();

  constructor(readonly transport: TpmTransport) {}

  close(): Promise<void> {
    return this.transport.close();
  }

  /** Resets (or reconnections) seen so far: a handle obtained in an earlier epoch is gone. */
  get epoch(): number {
    return this.resets;
  }

  /** Run `fn` with exclusive use of the TPM (several commands sharing a session in order). */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Serialised command. */
  protected cmd(cc: number, c: Call = {}): Promise<Answer> {
    return this.exclusive(() => this.call(cc, c));
  }

  /** One command, unserialised: the caller holds `exclusive` (or is `cmd`). */
  protected async call(cc: number, c: Call = {}): Promise<Answer> {
    const auths = c.auths ?? [];
    const params = c.params ?? Buffer.alloc(0);
    const rawHandles = (c.handles ?? []).map(handleOf);
    this.noteReconnection();
    const refuseLost = (): void => this.refuseLost(cc, rawHandles, auths, params);
    refuseLost();
    const command = await this.frame(cc, c.handles ?? [], auths, params);
    const rsp = await this.transmitRetrying(cc, command, refuseLost);
    return this.unframe(cc, rsp, auths, c.rspHandles ?? 0, (created) => this.track(cc, rawHandles, params, created));
  }

  /** TPM2_ReadPublic, unserialised (also how `call` learns a loaded object's Name). */
  protected async readPublicRaw(handle: number): Promise<PublicInfo> {
    const { r } = await this.call(CC.ReadPublic, { handles: [handle] });
    const publicBytes = r.b2();
    const name = r.b2();
    r.b2(); // qualifiedName
    const pub = readPublic(Reader.of(publicBytes));
    const w = new Writer().b2(publicBytes).finish();
    return { public: pub, publicBytes: w, name };
  }

  /** The connection was or is about to be replaced: assume the TPM behind it kept nothing of ours. */
  private noteReconnection(): void {
    const t = this.transport;
    if (this.seenGeneration === undefined || t.generation === undefined) return;
    if (t.generation === this.seenGeneration && t.connected !== false) return;
    this.noteReset();
    this.seenGeneration = undefined;
  }

  private noteReset(): void {
    this.resets++;
    for (const h of this.live) this.lost.add(h);
    this.live.clear();
  }

  /** Throw `TpmResetError` if the command names a context handle a reset took away. */
  private refuseLost(cc: number, handles: number[], auths: Authorization[], params: Buffer): void {
    if (this.lost.size === 0) return;
    const named = [...handles, ...auths.map((a) => a.sessionHandle)];
    if (cc === CC.FlushContext && params.length >= 4) named.push(params.readUInt32BE(0));
    for (const h of named) if (this.lost.has(h)) throw new TpmResetError(cc, h);
  }

  /** Track context handles: created by a response, gone after a flush or a completed sequence. */
  private track(cc: number, handles: number[], params: Buffer, created: number[]): void {
    for (const h of created) {
      if (!isContextHandle(h)) continue;
      this.live.add(h);
      this.lost.delete(h);
    }
    if (cc === CC.FlushContext && params.length >= 4) this.live.delete(params.readUInt32BE(0));
    if (cc === CC.SequenceComplete && handles[0] !== undefined) this.live.delete(handles[0]);
  }

  private async nameOf(e: Entity): Promise<Buffer> {
    if (typeof e !== 'number') return e.name;
    const ht = e >>> 24;
    if (ht === HT.TRANSIENT || ht === HT.PERSISTENT) return (await this.readPublicRaw(e)).name;
    return handleName(e);
  }

  /** The command bytes: header, handles, authorization area (cpHash over the encrypted parameters), parameters. */
  private async frame(cc: number, handles: Entity[], auths: Authorization[], rawParams: Buffer): Promise<Buffer> {
    const params = withFirstParam(rawParams, auths.find((a) => a.encryptCommand)?.encryptCommand);
    const w = new Writer().u16(auths.length > 0 ? ST.SESSIONS : ST.NO_SESSIONS).u32(0).u32(cc);
    for (const h of handles) w.u32(handleOf(h));
    if (auths.length > 0) {
      const needNames = auths.some((a) => a.hashAlg !== undefined);
      const names: Buffer[] = [];
      // One at a time: each may be a TPM2_ReadPublic, and the TPM takes one command at a time.
      if (needNames) for (const h of handles) names.push(await this.nameOf(h));
      const area = new Writer();
      for (const a of auths) area.bytes(a.commandAuth(a.hashAlg === undefined ? Buffer.alloc(0) : cpHash(a.hashAlg, cc, names, params)));
      w.b2u32(area.finish());
    }
    const command = w.bytes(params).finish();
    command.writeUInt32BE(command.length, 2);
    return command;
  }

  /**
   * Send the command until it succeeds: a TPM that was not started gets TPM2_Startup once (after which
   * `refuseLost` runs again: the startup flushed every context), retryable warnings back off; any other
   * response code is a `TpmError`.
   */
  private async transmitRetrying(cc: number, command: Buffer, refuseLost: () => void): Promise<Buffer> {
    let started = false;
    for (let attempt = 0; ; attempt++) {
      const rsp = await this.transport.transmit(command);
      this.seenGeneration = this.transport.generation;
      const rc = responseCode(rsp);
      if (rc === 0) return rsp;
      if (rc === RC_INITIALIZE && cc !== CC.Startup && !started) {
        // A simulator that was powered on (or reset) but not started (platform firmware does this on real devices).
        // TPM2_Startup(CLEAR) flushed every transient object and session: commands naming one are refused.
        await this.transport.transmit(STARTUP_CLEAR());
        started = true;
        this.noteReset();
        refuseLost();
        continue;
      }
      if (isRetryable(rc) && attempt < MAX_RETRIES) {
        await sleep(Math.min(10 * 2 ** attempt, 500));
        continue;
      }
      throw new TpmError(cc, rc);
    }
  }

  /** Decode a successful response: its handles (handed to `track`), then each session's response HMAC. */
  private unframe(cc: number, rsp: Buffer, auths: Authorization[], rspHandles: number, track: (created: number[]) => void): Answer {
    const r = new Reader(rsp);
    const tag = r.u16();
    r.u32();
    r.u32();
    const outHandles: number[] = [];
    for (let i = 0; i < rspHandles; i++) outHandles.push(r.u32());
    track(outHandles);
    if (tag !== ST.SESSIONS) return { handles: outHandles, r: new Reader(r.rest()) };
    const rpParams = r.bytes(r.u32());
    for (const a of auths) {
      const nonce = r.b2();
      const attrs = r.u8();
      const hmac = r.b2();
      a.checkResponse(a.hashAlg === undefined ? Buffer.alloc(0) : rpHash(a.hashAlg, cc, rpParams), nonce, attrs, hmac);
    }
    r.end();
    return { handles: outHandles, r: new Reader(withFirstParam(rpParams, auths.find((a) => a.decryptResponse)?.decryptResponse)) };
  }
}
