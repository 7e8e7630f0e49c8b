/**
 * Tells `observe` the status of every response of the app it is installed on first (`app.use('*', …)`):
 * errors included, since hono has turned a thrown error into the onError response by the time `next()`
 * returns. The metrics count workload API requests by status with it (host/metrics).
 */
import type { MiddlewareHandler } from 'hono';

export function observeStatus(observe: (status: number) => void): MiddlewareHandler {
  return async function observeStatusMiddleware(c, next) {
    await next();
    observe(c.res.status);
  };
}
