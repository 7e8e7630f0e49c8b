/**
 * Token objects as the store sees them: finding key objects, reading attributes that may be missing, turning
 * the objects under one label into a complete key, and reconciling what a crash left behind (reliability
 * scenario H1).
 */
import pkcs11js from 'pkcs11js';
import type * as P from 'pkcs11js';
import type { StoredKey } from '../keys/types.js';
import type { Handle } from './library.js';
import { keyTypeOf } from './templates.js';

const p = pkcs11js;

/** Labels of keys being created; never a complete key. */
export const PENDING_PREFIX = 'edgeward-pending/';
const OWN_PREFIX = 'edgeward/';
const KEY_CLASSES: ReadonlySet<number> = new Set([p.CKO_PRIVATE_KEY, p.CKO_PUBLIC_KEY, p.CKO_SECRET_KEY]);

/** A complete key and its object handles. */
export interface Entry extends StoredKey {
  readonly priv?: Handle;
  readonly pub?: Handle;
  readonly secret?: Handle;
}

export interface Found {
  readonly handle: Handle;
  /** CKA_CLASS, or -1 when it cannot be read (a half-written object). */
  readonly cls: number;
}

/** An attribute's bytes; empty when the object lacks it (CKR_ATTRIBUTE_TYPE_INVALID) or it is unreadable. */
export function attrBytes(m: P.PKCS11, s: Handle, obj: Handle, type: number): Buffer {
  try {
    const [a] = m.C_GetAttributeValue(s, obj, [{ type }]);
    return (a?.value as Buffer | undefined) ?? Buffer.alloc(0);
  } catch {
    return Buffer.alloc(0);
  }
}

export function attrText(m: P.PKCS11, s: Handle, obj: Handle, type: number): string {
  return attrBytes(m, s, obj, type).toString('utf8');
}

/** Every object matching `template`, with its class. */
export function findObjects(m: P.PKCS11, s: Handle, template: P.Template): Found[] {
  m.C_FindObjectsInit(s, template);
  const handles: Handle[] = [];
  try {
    for (let batch = m.C_FindObjects(s, 64); batch.length > 0; batch = m.C_FindObjects(s, 64)) handles.push(...batch);
  } finally {
    m.C_FindObjectsFinal(s);
  }
  return handles.map((handle) => {
    const c = attrBytes(m, s, handle, p.CKA_CLASS);
    return { handle, cls: c.length > 0 ? c.readUIntLE(0, Math.min(4, c.length)) : -1 };
  });
}

/** Key objects (private, public, secret) matching `template`. */
export function findKeyObjects(m: P.PKCS11, s: Handle, template: P.Template): Found[] {
  return findObjects(m, s, template).filter((o) => KEY_CLASSES.has(o.cls));
}

export function findByLabel(m: P.PKCS11, s: Handle, label: string): Found[] {
  return findKeyObjects(m, s, [{ type: p.CKA_LABEL, value: label }]);
}

/** A complete key from the objects under one name: a private+public pair, or one secret key. */
export function entryOf(m: P.PKCS11, s: Handle, label: string, objs: Found[]): Entry | undefined {
  const secret = objs.find((o) => o.cls === p.CKO_SECRET_KEY)?.handle;
  if (secret) {
    const type = keyTypeOf(m, s, secret);
    return type && { label, type, secret };
  }
  const priv = objs.find((o) => o.cls === p.CKO_PRIVATE_KEY)?.handle;
  const pub = objs.find((o) => o.cls === p.CKO_PUBLIC_KEY)?.handle;
  if (!priv || !pub) return undefined;
  const type = keyTypeOf(m, s, priv, pub);
  return type && { label, type, priv, pub };
}

/** Reconcile must not stop the daemon over one object the token refuses to destroy; the next open retries. */
export function destroyQuietly(m: P.PKCS11, s: Handle, obj: Handle): void {
  try {
    m.C_DestroyObject(s, obj);
  } catch {
    // left for the next open
  }
}

/**
 * Give objects generated under a pending label their final one, in order (a pair: public half first, private
 * half last, so a kill in between leaves a lone half), or destroy them all when a relabel fails. SoftHSM2
 * commits a generated key in two transactions (the template, label included, then the key material): made
 * under its final label, a key killed between them is found with no material and fails every operation.
 */
export function nameGenerated(m: P.PKCS11, s: Handle, label: string, objects: readonly Handle[]): void {
  try {
    for (const o of objects) m.C_SetAttributeValue(s, o, [{ type: p.CKA_LABEL, value: label }]);
  } catch (err) {
    // Leave nothing half-made behind: the key is absent, as it would be after a crash here.
    for (const o of [...objects].reverse()) destroyQuietly(m, s, o);
    throw err;
  }
}

/**
 * Destroy pending objects, lone halves of pairs under our prefix, and fragments: objects with neither
 * CKA_LABEL nor CKA_ID whose class or key-defining attribute is missing too, or that are secret keys.
 * SoftHSM2 killed inside C_GenerateKeyPair leaves such an object (observed: a public key with no label, ID
 * or EC point), inside C_GenerateKey a secret key with no label or ID; Edgeward always sets label and ID,
 * and a complete key pair of another application is never touched.
 * Returns what was removed.
 */
export function reconcileObjects(m: P.PKCS11, s: Handle): string[] {
  const byLabel = new Map<string, Found[]>();
  const fragments: Found[] = [];
  for (const o of findObjects(m, s, [])) {
    const label = attrText(m, s, o.handle, p.CKA_LABEL);
    if (label === '' && (o.cls === -1 || (KEY_CLASSES.has(o.cls) && isFragment(m, s, o)))) fragments.push(o);
    if (!KEY_CLASSES.has(o.cls) || (!label.startsWith(OWN_PREFIX) && !label.startsWith(PENDING_PREFIX))) continue;
    byLabel.set(label, [...(byLabel.get(label) ?? []), o]);
  }
  const removed: string[] = [];
  for (const [label, objs] of byLabel) {
    if (label.startsWith(PENDING_PREFIX) || isLoneHalf(objs)) {
      objs.forEach((o) => destroyQuietly(m, s, o.handle));
      removed.push(label);
    }
  }
  fragments.forEach((o) => destroyQuietly(m, s, o.handle));
  if (fragments.length > 0) removed.push(`${fragments.length} unlabelled fragment(s)`);
  return removed;
}

/**
 * No ID, and the attribute that carries the key itself is absent: a half-written object. A secret key
 * with neither label nor ID is one too: SoftHSM2 killed inside C_GenerateKey leaves exactly that (observed
 * under reliability H1: key type, value length and flags present, label and ID not yet written), its value
 * cannot be read to tell, and no application can find such a key again by label or ID.
 */
function isFragment(m: P.PKCS11, s: Handle, o: Found): boolean {
  if (attrBytes(m, s, o.handle, p.CKA_ID).length > 0) return false;
  if (o.cls === p.CKO_SECRET_KEY) return true;
  const keyType = attrBytes(m, s, o.handle, p.CKA_KEY_TYPE);
  if (keyType.length === 0) return true;
  const kt = keyType.readUIntLE(0, Math.min(4, keyType.length));
  if (kt === p.CKK_EC) return attrBytes(m, s, o.handle, o.cls === p.CKO_PUBLIC_KEY ? p.CKA_EC_POINT : p.CKA_EC_PARAMS).length === 0;
  if (kt === p.CKK_RSA) return attrBytes(m, s, o.handle, p.CKA_MODULUS).length === 0;
  return false;
}

/** A pair half without its other half (a crash between the two relabels, or between two destroys). */
function isLoneHalf(objs: Found[]): boolean {
  if (objs.some((o) => o.cls === p.CKO_SECRET_KEY)) return false;
  const priv = objs.some((o) => o.cls === p.CKO_PRIVATE_KEY);
  const pub = objs.some((o) => o.cls === p.CKO_PUBLIC_KEY);
  return priv !== pub;
}
