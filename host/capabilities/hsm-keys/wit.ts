/**
 * The key service's names as `edgeward:hsm/keys` spells them. Derived from the one list in hsm/keys/types.ts;
 * the checks below fail to compile when it and the generated WIT enums (generated/) disagree.
 */
import {
  ENCRYPT_ALGORITHM_KEY_TYPES, isKeyPairType, isSecretKeyType, KEY_TYPE_WIT_LABELS, SIGN_ALGORITHM_KEY_TYPES,
  type EncryptAlgorithm, type KeyErrorTag, type KeyPairType, type KeyType, type SecretKeyType, type SignAlgorithm,
} from '../../../hsm/keys/index.js';
import type * as Wit from './generated/interfaces/edgeward-hsm-keys.js';
import { invalidArgument } from './errors.js';

/** `true` only when A and B are the same union. */
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : never) : never;
type Label<T extends KeyType> = (typeof KEY_TYPE_WIT_LABELS)[T];
const inStep: [
  Same<Label<KeyType>, Wit.KeyType>,
  Same<Label<KeyPairType>, Wit.KeyPairType>,
  Same<Label<SecretKeyType>, Wit.SecretKeyType>,
  Same<KeyPairType | SecretKeyType, KeyType>,
  Same<SignAlgorithm, Wit.SignAlgorithm>,
  Same<(typeof ENCRYPT_ALGORITHM_KEY_TYPES)[EncryptAlgorithm]['wit'], Wit.EncryptAlgorithm>,
  Same<KeyErrorTag, Wit.KeyError['tag']>,
] = [true, true, true, true, true, true, true];
void inStep;

const KEY_TYPE_OF_LABEL = new Map<string, KeyType>(Object.entries(KEY_TYPE_WIT_LABELS).map(([type, label]) => [label, type as KeyType]));
const ENCRYPT_OF_LABEL = new Map<string, EncryptAlgorithm>(Object.entries(ENCRYPT_ALGORITHM_KEY_TYPES).map(([a, { wit }]) => [wit, a as EncryptAlgorithm]));

/** A key type's WIT `key-type` label. */
export function witKeyType(type: KeyType): Wit.KeyType {
  return KEY_TYPE_WIT_LABELS[type];
}

/** A WIT `key-pair-type` from the guest; anything else is `invalid-argument`. */
export function keyPairType(v: unknown): KeyPairType {
  const t = typeof v === 'string' ? KEY_TYPE_OF_LABEL.get(v) : undefined;
  if (t === undefined || !isKeyPairType(t)) throw invalidArgument('unknown key-pair-type');
  return t;
}

/** A WIT `secret-key-type` from the guest; anything else is `invalid-argument`. */
export function secretKeyType(v: unknown): SecretKeyType {
  const t = typeof v === 'string' ? KEY_TYPE_OF_LABEL.get(v) : undefined;
  if (t === undefined || !isSecretKeyType(t)) throw invalidArgument('unknown secret-key-type');
  return t;
}

/** A WIT `sign-algorithm` (the service's names are the WIT's). */
export function signAlgorithm(v: unknown): SignAlgorithm {
  if (typeof v !== 'string' || !Object.hasOwn(SIGN_ALGORITHM_KEY_TYPES, v)) throw invalidArgument('unknown sign-algorithm');
  return v as SignAlgorithm;
}

/** A WIT `encrypt-algorithm`. */
export function encryptAlgorithm(v: unknown): EncryptAlgorithm {
  const a = typeof v === 'string' ? ENCRYPT_OF_LABEL.get(v) : undefined;
  if (a === undefined) throw invalidArgument('unknown encrypt-algorithm');
  return a;
}
