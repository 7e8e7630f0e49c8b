/**
 * `?api-version=` as IoT Edge's http-common checks it: mandatory; missing → 400 "api-version not
 * specified"; unknown → 400 `invalid api-version "X"`; known but older than the route's minimum → 404
 * "not found" (the route does not exist at that version).
 */
import type { MiddlewareHandler } from 'hono';
import { MGMT_API_VERSIONS, versionIndex } from '../versions.js';

const MAX_VERSION_LEN = 32;

export interface ApiVersionOptions {
  /** The oldest version that has this route. Default: the oldest known. */
  minimum?: (typeof MGMT_API_VERSIONS)[number];
}

export function apiVersion(options: ApiVersionOptions = {}): MiddlewareHandler {
  const min = versionIndex(options.minimum ?? MGMT_API_VERSIONS[0]);
  return async function apiVersionMiddleware(c, next) {
    const v = c.req.query('api-version');
    if (v === undefined || v === '') return c.json({ message: 'api-version not specified' }, 400);
    const idx = v.length <= MAX_VERSION_LEN ? versionIndex(v) : -1;
    if (idx < 0) return c.json({ message: `invalid api-version ${JSON.stringify(v.slice(0, MAX_VERSION_LEN))}` }, 400);
    if (idx < min) return c.json({ message: 'not found' }, 404);
    await next();
  };
}
