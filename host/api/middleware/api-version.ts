/**
 * `?api-version=` as IoT Edge's http-common checks it: mandatory; missing → 400 "api-version not
 * specified"; unknown → 400 `invalid api-version "X"`; known but older than the route's minimum → 404
 * "not found" (the route does not exist at that version).
 */
import type { MiddlewareHandler } from 'hono';
import { MGMT_API_VERSIONS } from '../versions.js';

const MAX_VERSION_LEN = 32;

export interface ApiVersionOptions {
  /** The versions this API knows, oldest first. Default: the management API's. */
  versions?: readonly string[];
  /** The oldest version that has this route. Default: the oldest known. */
  minimum?: string;
}

export function apiVersion(options: ApiVersionOptions = {}): MiddlewareHandler {
  const versions = options.versions ?? MGMT_API_VERSIONS;
  const min = options.minimum === undefined ? 0 : versions.indexOf(options.minimum);
  if (min < 0) throw new Error(`unknown minimum api-version ${options.minimum}`);
  return async function apiVersionMiddleware(c, next) {
    const v = c.req.query('api-version');
    if (v === undefined || v === '') return c.json({ message: 'api-version not specified' }, 400);
    const idx = v.length <= MAX_VERSION_LEN ? versions.indexOf(v) : -1;
    if (idx < 0) return c.json({ message: `invalid api-version ${JSON.stringify(v.slice(0, MAX_VERSION_LEN))}` }, 400);
    if (idx < min) return c.json({ message: 'not found' }, 404);
    await next();
  };
}
