/**
 * The app's body limit (the second layer behind the listener's `limitBody`, host/api/body.ts), without
 * making @hono/node-server build a web `Request`: hono's `bodyLimit` reads `c.req.raw.body`, which turns
 * node-server's lightweight request into a full undici `Request` with a `ReadableStream` over the socket
 * (`Readable.toWeb`) and an `AbortSignal` — on a small workload `sign` that was most of the request's CPU.
 *
 * Served by node-server (`c.env.incoming`), the same decisions as hono's `bodyLimit`, from what the
 * listener already has: a declared Content-Length (without Transfer-Encoding) over `maxSize` is refused;
 * a chunked body is the listener's `rawBody` (read up to its own limit), refused when over `maxSize`.
 * Anything else (an in-memory `app.request`, or a chunked body that did not come through `limitBody`)
 * goes through hono's `bodyLimit` unchanged.
 */
import type { IncomingMessage } from 'node:http';
import type { Context, MiddlewareHandler } from 'hono';
import { bodyLimit as honoBodyLimit } from 'hono/body-limit';

export interface BodyLimitOptions {
  maxSize: number;
  onError: (c: Context) => Response | Promise<Response>;
}

export function bodyLimit(options: BodyLimitOptions): MiddlewareHandler {
  const { maxSize, onError } = options;
  const streaming = honoBodyLimit({ maxSize, onError });
  return async function bodyLimitMiddleware(c, next) {
    const incoming = (c.env as { incoming?: IncomingMessage & { rawBody?: unknown } } | undefined)?.incoming;
    if (!incoming?.headers) return streaming(c, next);
    const chunked = incoming.headers['transfer-encoding'] !== undefined;
    if (!chunked) {
      const length = incoming.headers['content-length'];
      // No Content-Length and not chunked: HTTP/1.1 has no body (node-server reads none either).
      return length !== undefined && Number.parseInt(length, 10) > maxSize ? onError(c) : next();
    }
    if (incoming.rawBody instanceof Buffer) return incoming.rawBody.length > maxSize ? onError(c) : next();
    return streaming(c, next);
  };
}
