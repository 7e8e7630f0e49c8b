/**
 * One mapping from domain errors to IoT Edge-style HTTP errors: `{"message": "..."}` with
 * `content-type: application/json`. Unexpected errors are logged with their cause and answered with a
 * coarse "internal error" (the IoT Identity Service's rule: the cause goes to the log, not the wire).
 */
import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { RuntimeError } from '../runtime/types.js';
import { TrapError } from '../runtime/errors.js';
import { KeyError, type KeyErrorTag } from '../../hsm/keys/index.js';
import type { Logger } from '../log.js';
import { IdentityError } from '../identity/identity.js';
import { DpsError } from '../cloud/dps/errors.js';

const RUNTIME_STATUS: Record<RuntimeError['code'], ContentfulStatusCode> = {
  'not-found': 404,
  conflict: 409,
  invalid: 400,
  'integrity-mismatch': 409,
  'type-mismatch': 400,
  denied: 403,
  timeout: 504,
  failed: 500,
  // The module itself answered an error (its start's WIT `err`): the request reached it, it refused.
  'guest-error': 422,
};

/** Key service errors on HTTP. `unsupported` is 501: the device's key store cannot do it (e.g. AES-GCM on a TPM). */
export const KEY_ERROR_STATUS: Record<KeyErrorTag, ContentfulStatusCode> = {
  'invalid-handle': 400,
  'access-denied': 403,
  'not-found': 404,
  'already-exists': 409,
  unsupported: 501,
  'invalid-argument': 400,
  'limit-exceeded': 400,
  'decrypt-failed': 400,
  'backend-unavailable': 503,
  internal: 500,
};

/** A KeyError as a response; the service already made its message safe to show and logged the cause. */
export function keyErrorResponse(c: Context, err: KeyError): Response {
  const status = KEY_ERROR_STATUS[err.tag];
  return jsonError(c, status, err.tag === 'internal' ? 'internal error' : err.message);
}

export function jsonError(c: Context, status: ContentfulStatusCode, message: string): Response {
  return c.json({ message }, status);
}

/** hono `onError` handler shared by the management and workload apps. */
export function errorHandler(logger: Logger) {
  return function onError(err: Error, c: Context): Response {
    if (err instanceof HTTPException) return jsonError(c, err.status as ContentfulStatusCode, err.message || 'request failed');
    if (err instanceof KeyError) return keyErrorResponse(c, err);
    // Not DPS, no cloud, an X.509 device asked for a SAS: the request does not apply to this device.
    if (err instanceof IdentityError) return jsonError(c, 400, err.message);
    // DPS refused or could not be reached: its message ends with the one-line fix.
    if (err instanceof DpsError) return jsonError(c, 502, `DPS: ${err.message}`);
    if (err instanceof RuntimeError) {
      const status = RUNTIME_STATUS[err.code];
      if (status >= 500) logger.error({ err, path: c.req.path }, 'runtime error');
      // A trap's message is the module's reason (never a host cause): shown, unlike other failures.
      return jsonError(c, status, status >= 500 && err.code === 'failed' && !(err instanceof TrapError) ? 'internal error' : err.message);
    }
    const status = (err as { status?: unknown }).status;
    if (typeof status === 'number' && status >= 400 && status < 500) return jsonError(c, status as ContentfulStatusCode, err.message);
    logger.error({ err, path: c.req.path }, 'unhandled error in API handler');
    return jsonError(c, 500, 'internal error');
  };
}

/** Throw as a 400 with a message (handlers validate input before doing any work). */
export function badRequest(message: string): never {
  throw new HTTPException(400, { message });
}
