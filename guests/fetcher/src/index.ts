/**
 * fetcher: a module that makes outbound HTTP requests with `fetch` (built with componentize-js's `http`
 * feature, so it imports wasi:http/outgoing-handler). It reaches only the hosts its registration lists
 * under `network.hosts`, with the `wasi:http/outgoing-handler` grant; any other host is answered
 * `HTTP-request-denied` by the runtime before any DNS lookup or connect.
 *
 * invoke("fetch", {"url", "method"?, "body"?, "headers"?, "redirect"?}) → {"status", "body", "location"?}
 * A failed fetch is the `err` answer: "fetch failed: <message>".
 */
/// <reference path="../../types/module.d.ts" />
import { log } from 'edgeward:module/logging@0.1.0';

interface FetchArgs {
  url: string;
  method?: string;
  body?: string;
  headers?: Record<string, string>;
  /** fetch's redirect mode (default "follow": each hop is a new request, checked against the grant). */
  redirect?: RequestRedirect;
}

export const lifecycle = {
  start(_config: string): void {
    log('info', 'fetcher started');
  },
  stop(): void {},
  async invoke(method: string, payload: string): Promise<string> {
    if (method !== 'fetch') throw `unknown method "${method}"`;
    const args = JSON.parse(payload) as FetchArgs;
    let res: Response;
    try {
      res = await fetch(args.url, { method: args.method ?? 'GET', body: args.body, headers: args.headers, redirect: args.redirect ?? 'follow' });
    } catch (err) {
      throw `fetch failed: ${err instanceof Error ? err.message : String(err)}`;
    }
    const body = await res.text();
    const location = res.headers.get('location');
    return JSON.stringify({ status: res.status, body, ...(location ? { location } : {}) });
  },
};
