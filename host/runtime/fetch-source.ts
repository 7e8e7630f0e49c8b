/**
 * Component bytes from an `https://` source. The caller pins the digest, so integrity never rests on
 * the transport; this file makes the download itself bounded: a size cap enforced while streaming (a
 * server that sends no length, or lies about it, cannot make the daemon buffer more), a deadline for the
 * whole download and one for a silent connection, redirects followed only to `https://` and at most
 * MAX_REDIRECTS times. Trust is Node's: the system store plus `NODE_EXTRA_CA_CERTS` (set it in the
 * daemon's environment for a private registry's CA), or `ca` here.
 */
import { RuntimeError } from './errors.js';

export const MAX_REDIRECTS = 5;
/** The whole download, including redirects. */
export const DOWNLOAD_TIMEOUT_MS = 5 * 60_000;
/** No byte for this long → give up. */
export const IDLE_TIMEOUT_MS = 30_000;

export interface FetchOptions {
  maxBytes: number;
  /** Extra trusted CA certificates (PEM), on top of Node's store. */
  ca?: string | Buffer;
  timeoutMs?: number;
  idleTimeoutMs?: number;
}

/** node:https (with node:tls, ~1 MiB and ~12 ms) is loaded by the first download, not by the daemon's start. */
const https = () => process.getBuiltinModule('node:https');

export async function fetchHttps(source: string, opts: FetchOptions): Promise<Uint8Array> {
  const deadline = AbortSignal.timeout(opts.timeoutMs ?? DOWNLOAD_TIMEOUT_MS);
  let url = source;
  for (let hop = 0; ; hop++) {
    const r = await getOnce(url, source, opts, deadline);
    if ('bytes' in r) return r.bytes;
    if (hop >= MAX_REDIRECTS) throw new RuntimeError('failed', `source ${source}: more than ${MAX_REDIRECTS} redirects`);
    const next = new URL(r.location, url);
    if (next.protocol !== 'https:') throw new RuntimeError('failed', `source ${source}: redirect to ${next.protocol}// refused (https only)`);
    url = next.href;
  }
}

function getOnce(url: string, source: string, opts: FetchOptions, deadline: AbortSignal): Promise<{ bytes: Uint8Array } | { location: string }> {
  return new Promise((resolve, reject) => {
    const fail = (msg: string, code: 'failed' | 'invalid' = 'failed') => reject(new RuntimeError(code, `source ${source}: ${msg}`));
    if (deadline.aborted) return fail('download timed out');
    const req = https().get(url, { signal: deadline, timeout: opts.idleTimeoutMs ?? IDLE_TIMEOUT_MS, ...(opts.ca ? { ca: opts.ca } : {}), headers: { accept: 'application/wasm, application/octet-stream' } }, (res) => {
      const status = res.statusCode ?? 0;
      if (status >= 300 && status < 400 && res.headers.location) {
        res.resume();
        return resolve({ location: res.headers.location });
      }
      if (status !== 200) {
        res.resume();
        return fail(`HTTP ${status}`);
      }
      const declared = Number(res.headers['content-length'] ?? 0);
      if (declared > opts.maxBytes) {
        res.destroy();
        return fail(`larger than ${opts.maxBytes} bytes`, 'invalid');
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > opts.maxBytes) {
          res.destroy();
          req.destroy();
          return fail(`larger than ${opts.maxBytes} bytes`, 'invalid');
        }
        chunks.push(c);
      });
      res.on('end', () => {
        if (!res.complete) return fail('connection closed before the whole body arrived');
        resolve({ bytes: new Uint8Array(Buffer.concat(chunks, size)) });
      });
      res.on('error', (e) => fail(e.message));
    });
    req.on('timeout', () => {
      req.destroy();
      fail(`no data for ${opts.idleTimeoutMs ?? IDLE_TIMEOUT_MS} ms`);
    });
    req.on('error', (e: NodeJS.ErrnoException) => fail(e.name === 'AbortError' ? 'download timed out' : (e.code ? `${e.code}: ${e.message}` : e.message)));
  });
}
