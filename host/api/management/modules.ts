/**
 * Module routes of the management API, as IoT Edge has them (edgelet-http-mgmt): GET /modules,
 * GET /modules/{name}, POST /modules/{name}/start|stop|restart, GET /modules/{name}/logs.
 * Mounted at `/modules` by the management app, behind the api-version middleware.
 */
import { Hono } from 'hono';
import { stream } from 'hono/streaming';
import { badRequest } from '../errors.js';
import type { ModuleRuntime, LogQuery } from '../../runtime/types.js';

/** Module names: IoT Edge module ids (letters, digits, `-`, `_`, `.`, `$` prefix for system ones). */
export const MODULE_NAME_RE = /^\$?[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const MAX_TAIL = 100_000;

function moduleName(raw: string): string {
  if (!MODULE_NAME_RE.test(raw)) badRequest(`invalid module name "${raw.slice(0, 80)}"`);
  return raw;
}

function parseTail(raw: string | undefined): number | undefined {
  if (raw === undefined || raw === 'all') return undefined;
  if (!/^\d{1,6}$/.test(raw)) badRequest(`invalid tail "${raw.slice(0, 20)}": expected a number or "all"`);
  return Math.min(Number(raw), MAX_TAIL);
}

export function modulesRoutes(runtime: ModuleRuntime): Hono {
  const app = new Hono();
  app.get('/', async (c) => c.json({ modules: await runtime.list() }));
  app.get('/:name', async (c) => c.json(await runtime.get(moduleName(c.req.param('name')))));
  for (const action of ['start', 'stop', 'restart'] as const) {
    app.post(`/:name/${action}`, async (c) => {
      await runtime[action](moduleName(c.req.param('name')));
      return c.body(null, 204);
    });
  }
  app.get('/:name/logs', async (c) => {
    const name = moduleName(c.req.param('name'));
    const query: LogQuery = { tail: parseTail(c.req.query('tail')), follow: c.req.query('follow') === 'true' };
    await runtime.get(name); // 404 before streaming starts
    c.header('content-type', 'text/plain; charset=utf-8');
    return stream(c, async (s) => {
      const aborted = new AbortController();
      s.onAbort(() => aborted.abort());
      for await (const line of runtime.logs(name, query)) {
        if (aborted.signal.aborted) break;
        await s.write(line.endsWith('\n') ? line : line + '\n');
      }
    });
  });
  return app;
}
