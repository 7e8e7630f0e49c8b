/**
 * sealer: a confidential workload that keeps a secret across restarts without ever storing it in clear.
 * On its first start it makes a random 32-byte secret, seals it with `edgeward:attest/seal` (to its own
 * measurement, on this device, under its measured runtime) and stores the blob in `/data/secret.sealed`;
 * on every later start it unseals the blob and logs that it got the secret back. The secret itself is never
 * logged: only the first 16 hex digits of its SHA-256.
 *   status           → {"firstStart": bool, "sha256Prefix": "…", "blobBytes": n}
 *   evidence {nonce} → {"measurement", "runtimePcr", "modulesPcr", "quote", "signature", "pcrs", "eventLog", "akPublicPem"}
 *                      (nonce: hex, 1..64 bytes; byte fields hex) for `tpm2_checkquote`
 * A start whose unseal is refused (`policy-mismatch` after the runtime changed, `wrong-measurement` for a
 * new version of this component) fails with that error and leaves the blob as it is.
 * Built for the `sealer` world (guests/sealer/world.wit); deploy with `"kind": "confidential"`.
 */
/// <reference path="../types/sealer.d.ts" />
import { log } from 'edgeward:module/logging@0.1.0';
import { seal, unseal } from 'edgeward:attest/seal@0.1.0';
import { evidence } from 'edgeward:attest/evidence@0.1.0';
import { getDirectories } from 'wasi:filesystem/preopens@0.2.12';
import type { Descriptor } from 'wasi:filesystem/types@0.2.12';

const BLOB = 'secret.sealed';
const MAX_BLOB_BYTES = 4096;

const hex = (bytes: Uint8Array): string => Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');

function fromHex(s: string): Uint8Array {
  if (!/^([0-9a-f]{2})*$/i.test(s)) throw 'nonce: not hex';
  return new Uint8Array(s.match(/../g)?.map((b) => parseInt(b, 16)) ?? []);
}

/** A WIT error (jco throws the variant as `payload`) as text: "<tag>[: message]". */
function failure(what: string, err: unknown): string {
  const p = (err as { payload?: unknown } | null)?.payload;
  if (typeof p === 'string') return `${what}: ${p}`;
  const v = p as { tag?: unknown; val?: unknown } | undefined;
  if (v && typeof v.tag === 'string') return `${what}: ${v.tag}${typeof v.val === 'string' ? `: ${v.val}` : ''}`;
  return `${what}: ${String(err)}`;
}

function dataDir(): Descriptor {
  const data = getDirectories().find(([, p]) => p === '/data');
  if (!data) throw 'no /data directory: grant "wasi:filesystem/data"';
  return data[0];
}

/** The stored blob, or undefined when there is none yet (first start). */
function readBlob(): Uint8Array | undefined {
  let file: Descriptor;
  try {
    file = dataDir().openAt({}, BLOB, {}, { read: true });
  } catch (err) {
    if ((err as { payload?: unknown }).payload === 'no-entry') return undefined;
    throw failure(`open /data/${BLOB}`, err);
  }
  const [bytes] = file.read(BigInt(MAX_BLOB_BYTES), 0n);
  return bytes;
}

function writeBlob(bytes: Uint8Array): void {
  const file = dataDir().openAt({}, BLOB, { create: true, truncate: true }, { write: true });
  let done = 0;
  while (done < bytes.length) done += Number(file.write(bytes.subarray(done), BigInt(done)));
  file.syncData();
}

let state: { firstStart: boolean; sha256Prefix: string; blobBytes: number } | undefined;

function start(): void {
  const stored = readBlob();
  if (stored) {
    let secret: Uint8Array;
    try {
      secret = unseal(stored);
    } catch (err) {
      throw failure('unseal', err);
    }
    state = { firstStart: false, sha256Prefix: hex(sha256(secret)).slice(0, 16), blobBytes: stored.length };
    log('info', `unsealed the secret sealed on first start: ${secret.length} bytes, sha256 ${state.sha256Prefix}… (the secret is not logged)`);
    return;
  }
  const secret = crypto.getRandomValues(new Uint8Array(32));
  let blob: Uint8Array;
  try {
    blob = seal(secret);
  } catch (err) {
    throw failure('seal', err);
  }
  writeBlob(blob);
  state = { firstStart: true, sha256Prefix: hex(sha256(secret)).slice(0, 16), blobBytes: blob.length };
  log('info', `first start: sealed a new secret (sha256 ${state.sha256Prefix}…) into /data/${BLOB} (${blob.length} bytes)`);
}

function attest(nonceHex: string): Record<string, unknown> {
  try {
    const r = evidence(fromHex(nonceHex));
    return {
      measurement: r.measurement, runtimePcr: r.runtimePcr, modulesPcr: r.modulesPcr, quote: hex(r.quote), signature: hex(r.signature),
      pcrs: hex(r.pcrs), eventLog: hex(r.eventLog), akPublicPem: r.akPublicPem,
    };
  } catch (err) {
    throw failure('evidence', err);
  }
}

export const lifecycle = {
  start(_config: string): void {
    start();
  },
  stop(): void {},
  invoke(method: string, payload: string): string {
    const args = ((payload ? JSON.parse(payload) : null) ?? {}) as { nonce?: string };
    switch (method) {
      case 'status': return JSON.stringify(state ?? null);
      case 'evidence': return JSON.stringify(attest(args.nonce ?? ''));
      default: throw `unknown method "${method}"`;
    }
  },
};

const K = new Uint32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3,
  0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
  0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
  0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);

const rotr = (x: number, n: number): number => (x >>> n) | (x << (32 - n));

function block(h: Uint32Array, w: Uint32Array): void {
  for (let i = 16; i < 64; i++) {
    const s0 = rotr(w[i - 15]!, 7) ^ rotr(w[i - 15]!, 18) ^ (w[i - 15]! >>> 3);
    const s1 = rotr(w[i - 2]!, 17) ^ rotr(w[i - 2]!, 19) ^ (w[i - 2]! >>> 10);
    w[i] = (w[i - 16]! + s0 + w[i - 7]! + s1) | 0;
  }
  let [a, b, c, d, e, f, g, hh] = h as unknown as [number, number, number, number, number, number, number, number];
  for (let i = 0; i < 64; i++) {
    const t1 = (hh + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K[i]! + w[i]!) | 0;
    const t2 = ((rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) | 0;
    hh = g; g = f; f = e; e = (d + t1) | 0; d = c; c = b; b = a; a = (t1 + t2) | 0;
  }
  const add = [a, b, c, d, e, f, g, hh];
  for (let i = 0; i < 8; i++) h[i] = (h[i]! + add[i]!) | 0;
}

/** SHA-256 (FIPS 180-4), small and synchronous: the engine's crypto.subtle is asynchronous. */
function sha256(data: Uint8Array): Uint8Array {
  const h = new Uint32Array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);
  const padded = new Uint8Array(Math.ceil((data.length + 9) / 64) * 64);
  padded.set(data);
  padded[data.length] = 0x80;
  const view = new DataView(padded.buffer);
  view.setUint32(padded.length - 8, Math.floor(data.length / 0x20000000));
  view.setUint32(padded.length - 4, (data.length * 8) >>> 0);
  const w = new Uint32Array(64);
  for (let o = 0; o < padded.length; o += 64) {
    for (let i = 0; i < 16; i++) w[i] = view.getUint32(o + i * 4);
    block(h, w);
  }
  const out = new Uint8Array(32);
  const ov = new DataView(out.buffer);
  for (let i = 0; i < 8; i++) ov.setUint32(i * 4, h[i]!);
  return out;
}
