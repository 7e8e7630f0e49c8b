/**
 * RFC 7512 PKCS#11 URIs (`pkcs11:token=Edgeward;object=device-id;type=private`), as IoT Edge's config
 * names keys (`[preloaded_keys]`, `edge_ca.pk`, `pkcs11_base_slot`). Only the path attributes that select a
 * token and an object are read; a `pin-value` is refused, so a PIN never travels inside a key name.
 */
import { KeyError } from './types.js';

export interface Pkcs11Uri {
  readonly token?: string;
  readonly serial?: string;
  readonly slotId?: number;
  readonly object?: string;
  /** CKA_ID bytes (`id=%01%02`). */
  readonly id?: Buffer;
  readonly type?: 'private' | 'public' | 'secret-key' | 'cert' | 'data';
}

const PATH_ATTRS = new Set(['token', 'serial', 'slot-id', 'object', 'id', 'type', 'manufacturer', 'model', 'library-manufacturer', 'library-description', 'library-version', 'slot-description', 'slot-manufacturer']);

/** Parse `pkcs11:…`; throws `invalid-argument` naming the problem (never echoing a pin). */
export function parsePkcs11Uri(uri: string): Pkcs11Uri {
  if (!uri.startsWith('pkcs11:')) throw bad('not a pkcs11: URI');
  const rest = uri.slice('pkcs11:'.length);
  const q = rest.indexOf('?');
  const pathPart = q < 0 ? rest : rest.slice(0, q);
  const query = q < 0 ? '' : rest.slice(q + 1);
  if (/(^|&)pin-value=/.test(query)) throw bad('pin-value is not accepted in a key URI; give the PIN in [keys.pkcs11]');
  const out: { -readonly [K in keyof Pkcs11Uri]: Pkcs11Uri[K] } = {};
  for (const part of pathPart.split(';')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    if (eq <= 0) throw bad(`malformed attribute "${part}"`);
    const name = part.slice(0, eq);
    const raw = percentDecode(part.slice(eq + 1));
    if (!PATH_ATTRS.has(name)) throw bad(`unknown attribute "${name}"`);
    switch (name) {
      case 'token': out.token = raw.toString('utf8'); break;
      case 'serial': out.serial = raw.toString('utf8'); break;
      case 'object': out.object = raw.toString('utf8'); break;
      case 'id': out.id = raw; break;
      case 'slot-id': {
        const n = Number(raw.toString('utf8'));
        if (!Number.isInteger(n) || n < 0) throw bad('slot-id must be a non-negative integer');
        out.slotId = n;
        break;
      }
      case 'type': {
        const t = raw.toString('utf8');
        if (t !== 'private' && t !== 'public' && t !== 'secret-key' && t !== 'cert' && t !== 'data') throw bad(`unknown type "${t}"`);
        out.type = t;
        break;
      }
      default:
        break; // accepted, not used to select
    }
  }
  return out;
}

function percentDecode(s: string): Buffer {
  const bytes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === '%') {
      const hex = s.slice(i + 1, i + 3);
      if (!/^[0-9A-Fa-f]{2}$/.test(hex)) throw bad('bad percent-encoding');
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else {
      bytes.push(...Buffer.from(c, 'utf8'));
    }
  }
  return Buffer.from(bytes);
}

function bad(why: string): KeyError {
  return new KeyError('invalid-argument', `invalid PKCS#11 URI: ${why}`);
}
