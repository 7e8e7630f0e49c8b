/**
 * keeper: a module that signs with a key of its own namespace in the device's key service
 * (`edgeward:hsm/keys`; the key never leaves the HSM, the module holds an opaque handle).
 *   sign {"message"} → {"publicKey": hex DER SubjectPublicKeyInfo, "signature": hex DER ECDSA-SHA256}
 *   keys             → {"keys": [{"id", "kind"}]}
 * The key pair `signing` (EC P-256) is created on first use and reused after. A key error is the `err`
 * answer: "<method>: <key-error tag>[: text]".
 * Built with the quickjs engine for the `keeper` world (guests/keeper/world.wit); grant `edgeward:hsm/keys`.
 */
/// <reference path="../types/keeper.d.ts" />
import { log } from 'edgeward:module/logging@0.1.0';
import { createKeyPair, getPublicKey, listKeys, sign } from 'edgeward:hsm/keys@0.1.0';

const KEY_ID = 'signing';

const hex = (bytes: Uint8Array): string => Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');

/** A key error (jco throws the WIT variant as `payload`) as the `err` answer. */
function failure(method: string, err: unknown): string {
  const p = (err as { payload?: { tag?: unknown; val?: unknown } } | null)?.payload;
  if (p && typeof p.tag === 'string') return `${method}: ${p.tag}${typeof p.val === 'string' ? `: ${p.val}` : ''}`;
  return `${method}: ${String(err)}`;
}

function signMessage(message: string): { publicKey: string; signature: string } {
  const key = createKeyPair(KEY_ID, 'ec-p256');
  const signature = sign(key, 'ecdsa-sha256', utf8(message));
  log('info', `signed ${message.length} characters with key "${KEY_ID}"`);
  return { publicKey: hex(getPublicKey(key)), signature: hex(signature) };
}

export const lifecycle = {
  start(_config: string): void {
    log('info', 'keeper started');
  },
  stop(): void {},
  invoke(method: string, payload: string): string {
    try {
      switch (method) {
        case 'sign': return JSON.stringify(signMessage(String((JSON.parse(payload) as { message?: unknown }).message ?? '')));
        case 'keys': return JSON.stringify({ keys: listKeys() });
        default: throw `unknown method "${method}"`;
      }
    } catch (err) {
      throw typeof err === 'string' ? err : failure(method, err);
    }
  },
};

/** The UTF-8 bytes of a string (the quickjs engine has no TextEncoder). */
function utf8(s: string): Uint8Array {
  const out: number[] = [];
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (c < 0x80) out.push(c);
    else if (c < 0x800) out.push(0xc0 | (c >> 6), 0x80 | (c & 63));
    else if (c < 0x10000) out.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
    else out.push(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 63), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
  }
  return new Uint8Array(out);
}
