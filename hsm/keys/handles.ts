/**
 * Opaque, authenticated key handles (the aziot-keyd scheme, `key_id_to_handle`): the handle carries what
 * it names, MAC'd with a service secret, so the service needs no handle table and can still tell its own
 * handles from forged or tampered ones. Format: `ew1.<base64url(JSON payload)>.<base64url(HMAC-SHA256)>`.
 *
 * Every failure — wrong prefix, bad base64, bad MAC, bad JSON, unknown fields — is the one answer
 * "invalid handle": a caller learns nothing about why.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../support/atomic.js';
import { invalidHandle, MAX_HANDLE_LENGTH, type Namespace } from './types.js';

const PREFIX = 'ew1';
/** Verified handles remembered, so hot paths skip the MAC and JSON work (a handle's validity never changes). */
export const VERIFIED_HANDLE_CACHE = 4096;
const SECRET_BYTES = 32;
const NONCE_BYTES = 12;

/** What a handle names. `uri` keys are foreign objects named in the config; `derived` carries its data. */
export type HandlePayload =
  | { readonly t: 'key'; readonly ns: Namespace; readonly id: string }
  | { readonly t: 'uri'; readonly ns: Namespace; readonly uri: string }
  | { readonly t: 'derived'; readonly ns: Namespace; readonly id: string; readonly d: string };

/** Issues and checks handles with one secret. */
export class HandleCodec {
  private readonly verified = new Map<string, HandlePayload>();

  constructor(private readonly secret: Buffer) {
    if (secret.length !== SECRET_BYTES) throw new Error('handle secret must be 32 bytes');
  }

  /** Load the secret from `file`, creating it (0600, atomically) on first use. */
  static async open(file: string): Promise<HandleCodec> {
    try {
      const existing = await fs.readFile(file);
      if (existing.length === SECRET_BYTES) return new HandleCodec(existing);
      throw new Error(`handle secret ${file} has ${existing.length} bytes, expected ${SECRET_BYTES}`);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
    const secret = randomBytes(SECRET_BYTES);
    await writeFileAtomic(file, secret, 0o600);
    return new HandleCodec(secret);
  }

  issue(payload: HandlePayload): string {
    // The nonce makes two handles to one key differ, as aziot's 64-byte nonce does; it is not a secret.
    const body = Buffer.from(JSON.stringify({ ...payload, n: randomBytes(NONCE_BYTES).toString('base64url') })).toString('base64url');
    return `${PREFIX}.${body}.${this.mac(body).toString('base64url')}`;
  }

  /** The payload of a genuine handle; throws `invalid-handle` for anything else. */
  verify(handle: unknown): HandlePayload {
    if (typeof handle !== 'string' || handle.length > MAX_HANDLE_LENGTH) throw invalidHandle();
    const known = this.verified.get(handle);
    if (known) return known;
    const payload = this.check(handle);
    if (this.verified.size >= VERIFIED_HANDLE_CACHE) this.verified.delete(this.verified.keys().next().value as string);
    this.verified.set(handle, payload);
    return payload;
  }

  private check(handle: string): HandlePayload {
    const parts = handle.split('.');
    if (parts.length !== 3 || parts[0] !== PREFIX) throw invalidHandle();
    const [, body, sig] = parts as [string, string, string];
    if (!/^[A-Za-z0-9_-]+$/.test(body) || !/^[A-Za-z0-9_-]{43}$/.test(sig)) throw invalidHandle();
    const expected = this.mac(body);
    const given = Buffer.from(sig, 'base64url');
    // Canonical encoding only: the 43rd character carries 2 unused bits, so without this check four
    // spellings of one MAC would all pass (a tampered handle must be refused, not tolerated).
    if (given.toString('base64url') !== sig) throw invalidHandle();
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw invalidHandle();
    return Object.freeze(parsePayload(Buffer.from(body, 'base64url').toString('utf8')));
  }

  private mac(body: string): Buffer {
    return createHmac('sha256', this.secret).update(PREFIX).update('.').update(body).digest();
  }
}

function parsePayload(json: string): HandlePayload {
  let v: unknown;
  try {
    v = JSON.parse(json);
  } catch {
    throw invalidHandle();
  }
  if (typeof v !== 'object' || v === null) throw invalidHandle();
  const o = v as Record<string, unknown>;
  const str = (k: string): string => {
    const s = o[k];
    if (typeof s !== 'string') throw invalidHandle();
    return s;
  };
  switch (o.t) {
    case 'key':
      return { t: 'key', ns: str('ns'), id: str('id') };
    case 'uri':
      return { t: 'uri', ns: str('ns'), uri: str('uri') };
    case 'derived':
      return { t: 'derived', ns: str('ns'), id: str('id'), d: str('d') };
    default:
      throw invalidHandle();
  }
}
