/**
 * Management routes for the daemon's own keys (namespace `edgeward`), mounted at `/keys` behind the
 * api-version check by the app shell. Key material never crosses: create answers with the id and type,
 * and only public keys are served.
 *
 *   GET  /              → 200 {"keys": [{"id", "type"}]}
 *   POST /  {id, type}  → 201 {"id", "type"} created, 200 if it already existed with that type, 409 otherwise
 *   GET  /:id/public    → 200 {"id", "type", "pem"} (SPKI PEM)
 */
import { createPublicKey } from 'node:crypto';
import { Hono, type Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import {
  DAEMON_CALLER, isKeyPairType, KeyError, KEY_ID_PATTERN, KEY_TYPES, MAX_KEY_ID_LENGTH, type Caller, type KeyService, type KeyType,
} from '../../../hsm/keys/index.js';
import { keyErrorResponse } from '../errors.js';
import { readJsonBody } from '../body.js';

/** Short forms of the issue the CLI and API also accept for `type`. */
const SHORT_NAMES: Partial<Record<KeyType, string>> = { 'hmac-sha256': 'hmac', 'aes-256-gcm': 'aes' };
/** Names the CLI and API accept for `type`: every key type, each after its short form. */
export const CREATE_TYPES: Readonly<Record<string, KeyType>> = Object.fromEntries(
  KEY_TYPES.flatMap((t) => [...(SHORT_NAMES[t] ? [[SHORT_NAMES[t], t]] : []), [t, t]]),
);

/** Largest JSON body this route reads (an id and a type). */
const MAX_BODY_BYTES = 4096;


export interface KeysRoutesOptions {
  /** Who management callers act as. The management socket is privileged, so: the daemon. */
  readonly caller?: Caller;
  /** A key this route created (absent before): its id and type, never its material (a `key-created` event). */
  readonly onCreated?: (id: string, type: KeyType) => void;
}

export function keysRoutes(keys: KeyService, options: KeysRoutesOptions = {}): Hono {
  const caller = options.caller ?? DAEMON_CALLER;
  const app = new Hono();
  app.onError((err, c) => errorResponse(c, err));

  app.get('/', async (c) => {
    const list = await keys.listKeys(caller);
    return c.json({ keys: list.map((k) => ({ id: k.id, type: k.type })) });
  });

  app.post('/', async (c) => {
    const body = await readJsonBody(c, { maxBytes: MAX_BODY_BYTES });
    const { id, type } = (body ?? {}) as { id?: unknown; type?: unknown };
    const badId = checkId(id);
    if (badId) return c.json({ message: badId }, 400);
    const keyType = typeof type === 'string' ? CREATE_TYPES[type] : undefined;
    if (!keyType) return c.json({ message: `invalid type: expected one of ${Object.keys(CREATE_TYPES).join(', ')}` }, 400);
    const existed = await keys.loadKey(caller, { id: id as string }).then(() => true, (e: unknown) => (isNotFound(e) ? false : Promise.reject(e)));
    if (isKeyPairType(keyType)) await keys.createKeyPair(caller, { id: id as string }, keyType);
    else await keys.createSecretKey(caller, { id: id as string }, keyType);
    if (!existed) options.onCreated?.(id as string, keyType);
    return c.json({ id, type: keyType }, existed ? 200 : 201);
  });

  app.get('/:id/public', async (c) => {
    const id = c.req.param('id');
    const badId = checkId(id);
    if (badId) return c.json({ message: badId }, 400);
    const handle = await keys.loadKey(caller, { id });
    const type = await keys.getKeyType(caller, handle);
    if (!isKeyPairType(type)) return c.json({ message: `key "${id}" is a ${type} key and has no public key` }, 400);
    const der = await keys.getPublicKey(caller, handle);
    const pem = createPublicKey({ key: der, format: 'der', type: 'spki' }).export({ type: 'spki', format: 'pem' }).toString();
    return c.json({ id, type, pem });
  });

  return app;
}

function checkId(id: unknown): string | undefined {
  if (typeof id !== 'string' || id.length === 0) return 'invalid id: a non-empty string is required';
  if (id.length > MAX_KEY_ID_LENGTH || !KEY_ID_PATTERN.test(id)) return `invalid id: 1..${MAX_KEY_ID_LENGTH} of [A-Za-z0-9._-], starting with a letter or digit`;
  return undefined;
}

/**
 * The body as IoT Edge's http-common reads it: JSON when the content type is absent or application/json,
 * otherwise absent; unparseable JSON is 422.
 */
function isNotFound(e: unknown): boolean {
  return e instanceof KeyError && e.tag === 'not-found';
}

function errorResponse(c: Context, err: Error): Response {
  if (err instanceof KeyError) return keyErrorResponse(c, err);
  const status = (err as { status?: unknown }).status;
  if (typeof status === 'number' && status >= 400 && status < 500) return c.json({ message: err.message }, status as ContentfulStatusCode);
  return c.json({ message: 'internal error' }, 500);
}
