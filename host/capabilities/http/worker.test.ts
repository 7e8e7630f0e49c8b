/**
 * The worker side of wasi:http in memory, with a fake host `send`: the resource flow a guest drives,
 * the exact errors it gets, and the wasi:io classes shared with wasi:cli/stdio.
 */
import { describe, expect, it } from 'vitest';
import { imports as httpImports, HOST_INTERFACE, MAX_LIVE_RESOURCES } from './worker.mjs';
import { imports as stdioImports } from '../stdio/worker.mjs';

type Sent = Record<string, unknown> & { body?: Uint8Array };
const bytes = (s: string) => new TextEncoder().encode(s);

function setup(answer: (req: Sent) => unknown = () => ({ ok: { status: 201, headers: [['X-Reply', 'yes'], ['Connection', 'close']], body: bytes('pong') } })) {
  const sent: Sent[] = [];
  const send = (req: unknown) => { sent.push(req as Sent); return answer(req as Sent); };
  const imp = httpImports({ host: { [HOST_INTERFACE]: { send } }, maxValueBytes: 1024 });
  const t = imp['wasi:http/types']!;
  const handle = imp['wasi:http/outgoing-handler']!.handle as (r: unknown, o?: unknown) => any;
  const request = (authority = 'api.example.com', headers: [string, Uint8Array][] = []) => {
    const r = new t.OutgoingRequest(t.Fields.fromList(headers));
    r.setAuthority(authority);
    r.setScheme({ tag: 'HTTPS' });
    r.setPathWithQuery('/p?q=1');
    return r;
  };
  return { imp, t, handle, request, sent };
}

const thrown = (fn: () => unknown): unknown => {
  try {
    fn();
  } catch (e) {
    return e;
  }
  throw new Error('did not throw');
};

describe('wasi:http worker side', () => {
  it('sends when the response is asked for, with the body the guest finished; the response reads back', () => {
    const { t, handle, request, sent, imp } = setup();
    const req = request('api.example.com', [['x-a', bytes('1')]]);
    req.setMethod({ tag: 'post' });
    const body = req.body();
    const out = body.write();
    out.write(bytes('ping'));
    const future = handle(req, undefined);
    expect(sent).toEqual([]);
    // Not ready until the body is finished: poll never blocks a single-threaded sandbox forever.
    expect(future.subscribe().ready()).toBe(false);
    expect(future.get()).toBeUndefined();
    expect(() => imp['wasi:io/poll']!.poll([future.subscribe()])).toThrow(/no pollable can become ready/);
    t.OutgoingBody.finish(body, undefined);
    expect(imp['wasi:io/poll']!.poll([out.subscribe(), future.subscribe()])).toEqual(new Uint32Array([0, 1]));
    const got = future.get();
    expect(sent).toEqual([{ method: 'POST', scheme: 'https', authority: 'api.example.com', pathWithQuery: '/p?q=1', headers: [['x-a', '1']], body: bytes('ping'), connectTimeoutMs: undefined, firstByteTimeoutMs: undefined, betweenBytesTimeoutMs: undefined }]);
    expect(got.tag).toBe('ok');
    expect(got.val.tag).toBe('ok');
    const res = got.val.val;
    expect(res.status()).toBe(201);
    expect(res.headers().entries()).toEqual([['X-Reply', bytes('yes')]]);
    expect(thrown(() => res.headers().append('x', bytes('y')))).toEqual({ tag: 'immutable' });
    const inBody = res.consume();
    const stream = inBody.stream();
    expect(new TextDecoder().decode(stream.read(100n))).toBe('pong');
    expect(thrown(() => stream.read(100n))).toEqual({ tag: 'closed' });
    expect(future.get()).toEqual({ tag: 'err', val: undefined });
  });

  it('hands the host\'s error-code to the guest as the future\'s inner err (HTTP-request-denied)', () => {
    const { handle, request } = setup(() => ({ error: { tag: 'HTTP-request-denied' } }));
    expect(handle(request('evil.com'), undefined).get()).toEqual({ tag: 'ok', val: { tag: 'err', val: { tag: 'HTTP-request-denied' } } });
  });

  it('a request body over max_value_bytes fails the write and the request with HTTP-request-body-size', () => {
    const { t, handle, request, sent, imp } = setup();
    const req = request();
    const body = req.body();
    const out = body.write();
    for (let i = 0; i < 16; i++) out.write(new Uint8Array(64));
    const e = thrown(() => out.write(new Uint8Array(64))) as { tag: string; val: unknown };
    expect(e.tag).toBe('last-operation-failed');
    expect(imp['wasi:http/types']!.httpErrorCode(e.val)).toEqual({ tag: 'HTTP-request-body-size', val: 1088n });
    expect(thrown(() => t.OutgoingBody.finish(body, undefined))).toEqual({ tag: 'HTTP-request-body-size', val: 1088n });
    expect(handle(req, undefined).get()).toEqual({ tag: 'ok', val: { tag: 'err', val: { tag: 'HTTP-request-body-size', val: 1088n } } });
    expect(sent).toEqual([]);
  });

  it('a body that fits alone but not with its headers, or headers over the cap, fail before the broker with the part that is too large', () => {
    const { t, handle, request, sent } = setup();
    const req = request('api.example.com', [['x-big', bytes('v'.repeat(200))]]);
    const body = req.body();
    body.write().write(new Uint8Array(900));
    t.OutgoingBody.finish(body, undefined);
    expect(handle(req, undefined).get()).toEqual({ tag: 'ok', val: { tag: 'err', val: { tag: 'HTTP-request-body-size', val: 900n } } });
    const many = request('api.example.com', Array.from({ length: 10 }, (_, i) => [`x-${i}`, bytes('v'.repeat(100))] as [string, Uint8Array]));
    expect(handle(many, undefined).get()).toEqual({ tag: 'ok', val: { tag: 'err', val: { tag: 'HTTP-request-header-section-size', val: undefined } } });
    expect(sent).toEqual([]);
  });

  it('refuses connection headers with header-error.forbidden and bad syntax with invalid-syntax', () => {
    const { t } = setup();
    expect(thrown(() => t.Fields.fromList([['Host', bytes('evil.com')]]))).toEqual({ tag: 'forbidden' });
    expect(thrown(() => t.Fields.fromList([['transfer-encoding', bytes('chunked')]]))).toEqual({ tag: 'forbidden' });
    expect(thrown(() => t.Fields.fromList([['bad name', bytes('x')]]))).toEqual({ tag: 'invalid-syntax' });
    expect(thrown(() => t.Fields.fromList([['x', bytes('a\r\nInjected: 1')]]))).toEqual({ tag: 'invalid-syntax' });
    const f = new t.Fields();
    f.append('Content-Type', bytes('text/plain'));
    expect(f.get('content-type')).toEqual([bytes('text/plain')]);
  });

  it('request-options timeouts reach the host in ms; no authority is HTTP-request-URI-invalid', () => {
    const { t, handle, request, sent } = setup();
    const o = new t.RequestOptions();
    o.setConnectTimeout(1_500_000_000n);
    o.setFirstByteTimeout(2_000_000n);
    handle(request(), o).get();
    expect(sent[0]).toMatchObject({ connectTimeoutMs: 1500, firstByteTimeoutMs: 2, betweenBytesTimeoutMs: undefined });
    expect(thrown(() => handle(new t.OutgoingRequest(new t.Fields()), undefined))).toEqual({ tag: 'HTTP-request-URI-invalid' });
    const r = request();
    for (const bad of ['http://evil.com/', 'x', '/a b', '/\n']) expect(thrown(() => r.setPathWithQuery(bad))).toBeUndefined();
    r.setPathWithQuery('*');
    r.setPathWithQuery('/ok?x=1');
    expect(r.pathWithQuery()).toBe('/ok?x=1');
  });

  it('a broker failure is an internal-error for the guest, not a trap', () => {
    const { handle, request } = setup(() => { throw new Error('host capability did not answer'); });
    expect(handle(request(), undefined).get()).toEqual({ tag: 'ok', val: { tag: 'err', val: { tag: 'internal-error', val: 'host capability did not answer' } } });
  });

  it('counts live resources (G3): requests handed to handle() and dropped responses free their slot; holding the cap traps the next', () => {
    const { t, handle, request } = setup();
    const drop = (r: any) => r[Symbol.dispose]();
    for (let i = 0; i < MAX_LIVE_RESOURCES + 10; i++) {
      const future = handle(request(), undefined); // the fields go to the request, the request to handle
      drop(future.get().val.val);
      drop(future);
    }
    const held: unknown[] = [];
    const err = thrown(() => { for (;;) held.push(new t.Fields()); });
    expect(String(err)).toBe(`Error: more than ${MAX_LIVE_RESOURCES} live wasi:http/wasi:io resources in this instance`);
    expect(held.length).toBeGreaterThan(MAX_LIVE_RESOURCES - 50); // other tests of this file keep a few
    held.forEach(drop);
    expect(new t.Fields().entries()).toEqual([]);
  });

  it('hands out the same wasi:io classes as wasi:cli/stdio (jco checks instanceof against one import object)', () => {
    const http = httpImports({ maxValueBytes: 1024 });
    const stdio = stdioImports({ log: () => undefined });
    for (const iface of ['wasi:io/error', 'wasi:io/poll', 'wasi:io/streams']) {
      for (const [name, value] of Object.entries(http[iface]!)) expect(stdio[iface]![name], `${iface} ${name}`).toBe(value);
    }
  });
});
