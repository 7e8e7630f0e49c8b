/**
 * Request bodies as edged's http-common reads them: JSON when the content type is absent or
 * application/json, otherwise treated as absent (or 415 where a body is required); unparseable → 422.
 */
import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';

export interface JsonBodyOptions {
  /** A JSON body must be sent (PUT): another content type is 415. */
  required?: boolean;
  /** Larger bodies get 413 (on top of the app-wide body limit). */
  maxBytes?: number;
}

export async function readJsonBody(c: Context, options: JsonBodyOptions = {}): Promise<unknown> {
  const type = c.req.header('content-type');
  if (type && !type.toLowerCase().startsWith('application/json')) {
    if (options.required) throw new HTTPException(415, { message: 'request body must be application/json' });
    return undefined;
  }
  const text = await c.req.text();
  if (options.maxBytes !== undefined && Buffer.byteLength(text) > options.maxBytes) {
    throw new HTTPException(413, { message: `request body larger than ${options.maxBytes} bytes` });
  }
  if (text === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new HTTPException(422, { message: `invalid JSON body: ${(err as Error).message}` });
  }
}
