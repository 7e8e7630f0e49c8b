/**
 * Request bodies as edged's http-common reads them: JSON when the content type is absent or
 * application/json, otherwise treated as absent (or 415 where a body is required); unparseable → 422.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
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
  const text = await bodyText(c);
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

/**
 * The request body as text. A client that closes the connection while its body is still arriving
 * (Node's "aborted", ECONNRESET) is not a fault of the handler: it gets a 400 that nobody will read,
 * and no error-level log line (scenario H9, fuzzing the HTTP front end).
 */
export async function bodyText(c: Context): Promise<string> {
  try {
    return await c.req.text();
  } catch (err) {
    if (clientAborted(c, err)) throw new HTTPException(400, { message: 'request body not received: the client closed the connection' });
    throw err;
  }
}

function clientAborted(c: Context, err: unknown): boolean {
  const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
  if (incoming && (incoming.destroyed || incoming.aborted || incoming.socket?.destroyed)) return true;
  const code = (err as { code?: unknown } | null)?.code;
  return code === 'ECONNRESET' || code === 'ERR_STREAM_PREMATURE_CLOSE' || (err as Error | null)?.message === 'aborted';
}

/**
 * The body limit at the listener, before the app sees the request (scenario A5). A declared
 * Content-Length over `maxBytes` is answered 413 at once. A chunked body is read here, as it arrives,
 * up to `maxBytes`, and handed to the app as `rawBody` (which @hono/node-server uses instead of the
 * socket): past the limit it is 413, and the connection is closed if the client goes on sending.
 * Without this, @hono/node-server turns the request into a web stream with `Readable.toWeb`, which on
 * Node 20 reads ahead up to 16k chunks whatever the app consumes — a chunked upload of any size was
 * buffered while the app's own limit (hono `bodyLimit`, kept as the second layer) was still counting.
 */
export function limitBody(listener: (req: IncomingMessage, res: ServerResponse) => unknown, maxBytes: number) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    const chunked = req.headers['transfer-encoding'] !== undefined;
    const length = req.headers['content-length'];
    if (!chunked) {
      // Node's parser has already refused a Content-Length that is not a number.
      if (length !== undefined && Number(length) > maxBytes) return tooLarge(req, res, maxBytes);
      void listener(req, res);
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= maxBytes) return void chunks.push(chunk);
      stop();
      chunks.length = 0;
      tooLarge(req, res, maxBytes);
    };
    const onEnd = () => {
      stop();
      (req as IncomingMessage & { rawBody?: Buffer }).rawBody = Buffer.concat(chunks, size);
      void listener(req, res);
    };
    const stop = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', stop);
      req.off('close', stop);
    };
    req.on('data', onData);
    req.on('end', onEnd);
    // An aborted upload: the socket is gone, nothing to answer; Node's timeouts cover a stalled one.
    req.on('error', stop);
    req.on('close', stop);
  };
}

/**
 * After a 413, the rest of the body is read and discarded for a moment (a lingering close, as nginx
 * does): closing at once can make the client's next write fail (EPIPE/ECONNRESET) before it reads the
 * answer. A client that goes on sending past the linger is cut off.
 */
const LINGER_MS = 500;
const LINGER_BYTES = 1024 * 1024;

function tooLarge(req: IncomingMessage, res: ServerResponse, maxBytes: number): void {
  const body = JSON.stringify({ message: `request body larger than ${maxBytes} bytes` });
  res.writeHead(413, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  // After Node's own 'finish' handler, which switches the request to discarding (`_dump`).
  res.once('finish', () => {
    if (req.complete) return;
    let discarded = 0;
    const cut = () => {
      clearTimeout(timer);
      req.socket?.destroy();
    };
    const timer = setTimeout(cut, LINGER_MS);
    req.on('data', (chunk: Buffer) => {
      discarded += chunk.length;
      if (discarded > LINGER_BYTES) cut();
    });
    req.once('end', () => clearTimeout(timer));
    req.resume();
  });
  res.end(body);
}
