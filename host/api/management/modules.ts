/**
 * Module routes of the management API, as IoT Edge has them (edgelet-http-mgmt, reference §2):
 * GET/POST /modules, GET/PUT/DELETE /modules/{name}, POST /modules/{name}/start|stop|restart,
 * GET /modules/{name}/logs; plus Edgeward's POST /modules/{name}/invoke (a direct method, answered like
 * IoT Hub's `{"status","payload"}`; a guest's err answer is `{"status": 422, "payload": {"code":
 * "guest-error", "message"}}`) and PUT /modules (apply a deployment manifest: reconcile). Native modules
 * (registered through /identities, run elsewhere) are listed and shown too, with status `unknown`; their
 * logs and lifecycle answer 409 saying where they are managed instead.
 * Mounted at `/modules` by the management app, behind the api-version middleware.
 */
import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { HTTPException } from 'hono/http-exception';
import { stream } from 'hono/streaming';
import { badRequest } from '../errors.js';
import { readJsonBody } from '../body.js';
import { RuntimeError, type ModuleDetails, type ModuleRuntime, type LogQuery } from '../../runtime/types.js';
import { nativeLogsMessage, nativeRefusal, type NativeModulesView } from '../native-modules.js';
import { parseApiSpec, parseManifest } from '../../runtime/manifest.js';

/** Module names: IoT Edge module ids (letters, digits, `-`, `_`, `.`, `$` prefix for system ones). */
export const MODULE_NAME_RE = /^\$?[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const MAX_TAIL = 100_000;
/** Largest request body (a manifest or a direct-method payload); larger is 413 before parsing. */
export const MAX_BODY_BYTES = 8 * 1024 * 1024;
const METHOD_NAME_RE = /^[A-Za-z0-9_.:-]{1,128}$/;

function moduleName(raw: string): string {
  if (!MODULE_NAME_RE.test(raw)) badRequest(`invalid module name "${raw.slice(0, 80)}"`);
  return raw;
}

function parseTail(raw: string | undefined): number | undefined {
  if (raw === undefined || raw === 'all') return undefined;
  if (!/^\d{1,6}$/.test(raw)) badRequest(`invalid tail "${raw.slice(0, 20)}": expected a number or "all"`);
  return Math.min(Number(raw), MAX_TAIL);
}

const UNITS: Record<string, number> = { s: 1, sec: 1, second: 1, seconds: 1, m: 60, min: 60, minute: 60, minutes: 60, h: 3600, hour: 3600, hours: 3600, d: 86400, day: 86400, days: 86400 };

/** IoT Edge `since`/`until`: a duration back from now ("1 day", "90m", "2h30m"), RFC 3339, or unix seconds. */
export function parseTime(raw: string | undefined, now = Date.now()): Date | undefined {
  if (raw === undefined || raw === '') return undefined;
  if (raw.length > 64) badRequest('invalid time: too long');
  if (/^\d{1,12}$/.test(raw)) return new Date(Number(raw) * 1000);
  const parts = [...raw.matchAll(/(\d+)\s*([a-z]+)/gi)];
  if (parts.length > 0 && parts.map((p) => p[0]).join('').replace(/\s/g, '') === raw.replace(/\s/g, '')) {
    let secs = 0;
    for (const [, n, unit] of parts) {
      const mult = UNITS[unit!.toLowerCase()];
      if (!mult) badRequest(`invalid time "${raw}": unknown unit "${unit}"`);
      secs += Number(n) * mult;
    }
    return new Date(now - secs * 1000);
  }
  const t = Date.parse(raw);
  if (Number.isNaN(t)) badRequest(`invalid time "${raw}": expected a duration ("1 day", "90m"), RFC 3339 or unix seconds`);
  return new Date(t);
}

/** No native module view: a runtime alone (tests, tools). */
const NO_NATIVES: NativeModulesView = { moduleDetails: () => [], moduleDetail: () => undefined };

/**
 * `fn` on a component module; when the runtime has no module `name` but a native module has that name,
 * a 409 that says why the action does not apply (instead of "not found").
 */
async function onComponent<T>(natives: NativeModulesView, name: string, what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof RuntimeError && err.code === 'not-found' && natives.moduleDetail(name)) throw new RuntimeError('conflict', what === 'logs' ? nativeLogsMessage(name) : nativeRefusal(name, what));
    throw err;
  }
}

/** GET /:name/logs: a module's log lines, streamed (`follow` until the client goes away). */
function logsRoute(app: Hono, runtime: ModuleRuntime, natives: NativeModulesView): void {
  app.get('/:name/logs', async (c) => {
    const name = moduleName(c.req.param('name'));
    const since = parseTime(c.req.query('since'));
    const until = parseTime(c.req.query('until'));
    const tail = parseTail(c.req.query('tail'));
    await onComponent(natives, name, 'logs', () => runtime.get(name)); // 404 (409 for a native module) before streaming starts
    c.header('content-type', 'text/plain; charset=utf-8');
    return stream(c, async (s) => {
      const aborted = new AbortController();
      s.onAbort(() => aborted.abort());
      const query: LogQuery = { tail, follow: c.req.query('follow') === 'true', signal: aborted.signal };
      if (since) query.since = since;
      if (until) query.until = until;
      for await (const line of runtime.logs(name, query)) {
        if (aborted.signal.aborted) break;
        await s.write(line.endsWith('\n') ? line : line + '\n');
      }
    });
  });
}

/** `natives`: the native modules (host/api/native-modules.ts), listed beside the runtime's. */
export function modulesRoutes(runtime: ModuleRuntime, natives: NativeModulesView = NO_NATIVES): Hono {
  const app = new Hono();
  app.use('*', bodyLimit({ maxSize: MAX_BODY_BYTES, onError: () => { throw new HTTPException(413, { message: `request body larger than ${MAX_BODY_BYTES} bytes` }); } }));
  app.get('/', async (c) => c.json({ modules: [...(await runtime.list()), ...natives.moduleDetails()] }));
  app.post('/', async (c) => c.json(await runtime.create(parseApiSpec(await readJsonBody(c))), 201));
  app.put('/', async (c) => {
    const doc = await readJsonBody(c, { required: true });
    return c.json(await runtime.deploy(parseManifest(doc)), 200);
  });
  app.get('/:name', async (c) => {
    const name = moduleName(c.req.param('name'));
    try {
      return c.json(await runtime.get(name));
    } catch (err) {
      const native: ModuleDetails | undefined = err instanceof RuntimeError && err.code === 'not-found' ? natives.moduleDetail(name) : undefined;
      if (native) return c.json(native);
      throw err;
    }
  });
  app.put('/:name', async (c) => {
    const name = moduleName(c.req.param('name'));
    const start = c.req.query('start');
    if (start !== undefined && start !== 'true' && start !== 'false') badRequest('start must be true or false');
    const spec = parseApiSpec(await readJsonBody(c, { required: true }), name);
    return c.json(await runtime.update(spec, start === undefined ? undefined : start === 'true'), 201);
  });
  app.delete('/:name', async (c) => {
    const name = moduleName(c.req.param('name'));
    await onComponent(natives, name, 'remove', () => runtime.remove(name));
    return c.body(null, 204);
  });
  for (const action of ['start', 'stop', 'restart'] as const) {
    app.post(`/:name/${action}`, async (c) => {
      const name = moduleName(c.req.param('name'));
      await onComponent(natives, name, action, () => runtime[action](name));
      return c.body(null, 204);
    });
  }
  app.post('/:name/invoke', async (c) => {
    const name = moduleName(c.req.param('name'));
    const body = (await readJsonBody(c)) as { methodName?: unknown; payload?: unknown } | undefined;
    const method = body?.methodName;
    if (typeof method !== 'string' || !METHOD_NAME_RE.test(method)) badRequest('methodName: 1-128 letters, digits, "_", ".", ":", "-"');
    return c.json(await onComponent(natives, name, 'invoke', () => runtime.invoke(name, method, body?.payload ?? null)));
  });
  logsRoute(app, runtime, natives);
  return app;
}
