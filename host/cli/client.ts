/**
 * The CLI's client for the management API: HTTP/1.1 over the daemon's Unix socket, always with
 * `?api-version=`. Errors come back as `ApiError` carrying the daemon's `{"message"}`.
 */
import http from 'node:http';
import { MGMT_API_VERSION } from '../api/versions.js';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** The daemon is not there (no socket, or nobody listening). */
export class NotRunningError extends Error {
  constructor(readonly socketPath: string, cause: string) {
    super(`the Edgeward daemon is not running (no answer on ${socketPath}: ${cause})`);
    this.name = 'NotRunningError';
  }
}

export interface MgmtClient {
  readonly socketPath: string;
  /** JSON request; resolves with the parsed body (undefined for 204), rejects with ApiError/NotRunningError. */
  request<T = unknown>(method: string, path: string, body?: unknown): Promise<T>;
  /** Streamed text response (logs with follow). */
  stream(path: string, onChunk: (chunk: string) => void): Promise<void>;
}

export function createMgmtClient(socketPath: string, timeoutMs = 30_000): MgmtClient {
  const withVersion = (p: string) => `${p}${p.includes('?') ? '&' : '?'}api-version=${MGMT_API_VERSION}`;
  const send = (method: string, p: string, body: unknown, onResponse: (res: http.IncomingMessage) => void, reject: (e: Error) => void) => {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const req = http.request(
      {
        socketPath,
        method,
        path: withVersion(p),
        headers: payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {},
        timeout: timeoutMs,
      },
      onResponse,
    );
    req.on('timeout', () => req.destroy(new Error(`timed out after ${timeoutMs} ms`)));
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED') reject(new NotRunningError(socketPath, err.code));
      else reject(err);
    });
    req.end(payload);
  };
  return {
    socketPath,
    request<T>(method: string, p: string, body?: unknown): Promise<T> {
      return new Promise<T>((resolve, reject) => {
        send(method, p, body, (res) => {
          bodyOf(res).then((text) => {
            if ((res.statusCode ?? 500) >= 400) return reject(new ApiError(res.statusCode ?? 500, messageOf(text)));
            const isJson = (res.headers['content-type'] ?? '').includes('application/json');
            if (!isJson || !text) return resolve((text || undefined) as T);
            try {
              resolve(JSON.parse(text) as T);
            } catch {
              reject(new Error(`the daemon answered ${method} ${p} with invalid JSON`));
            }
          }, reject);
        }, reject);
      });
    },
    stream(p: string, onChunk: (chunk: string) => void): Promise<void> {
      return new Promise<void>((resolve, reject) => {
        send('GET', p, undefined, (res) => {
          if ((res.statusCode ?? 500) >= 400) {
            bodyOf(res).then((text) => reject(new ApiError(res.statusCode ?? 500, messageOf(text))), reject);
            return;
          }
          res.setEncoding('utf8');
          res.on('data', onChunk);
          res.on('end', resolve);
          res.on('error', reject);
        }, reject);
      });
    },
  };
}

/** A response's whole body as text. */
function bodyOf(res: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('error', reject);
    res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
  });
}

/** The `message` of an IoT Edge-style error body (`{"message": "..."}`), or the body as it is. */
function messageOf(text: string): string {
  try {
    const data = JSON.parse(text) as unknown;
    if (data && typeof data === 'object' && 'message' in data) return String((data as { message: unknown }).message);
  } catch {
    /* plain text */
  }
  return text;
}
