/**
 * Which module is calling, for the workload API: the module whose socket accepted the connection
 * (`bound`), never the path. The path must name that module (IoT Edge writes `$edgeAgent` with or without
 * the `$`), and, on routes with `:genid`, its current generation; the module must be registered. Anything
 * else — another module, one that does not exist, a stale generation — gets the same
 * `403 {"message":"forbidden"}`, so the answer reveals nothing (scenario A1). Handlers read the caller
 * with `c.get('module')`.
 */
import type { MiddlewareHandler } from 'hono';

export interface ModuleCallerOptions {
  /** The module of the socket this app serves; undefined for the shared socket (no module routes). */
  bound: string | undefined;
  /** Current generation id of a registered module, or undefined. */
  generationOf(module: string): string | undefined;
  /** The route has `:genid`, which must be the module's current generation. Default false. */
  withGenid?: boolean;
}

/** What handlers behind `moduleCaller` can read. */
export interface ModuleCallerEnv {
  Variables: { module: string };
}

const FORBIDDEN = { message: 'forbidden' };

export function moduleCaller(options: ModuleCallerOptions): MiddlewareHandler<ModuleCallerEnv> {
  const { bound, generationOf, withGenid = false } = options;
  return async function moduleCallerMiddleware(c, next) {
    const name = c.req.param('name') ?? '';
    if (bound === undefined || !sameModule(name, bound)) return c.json(FORBIDDEN, 403);
    const current = generationOf(bound);
    if (current === undefined || (withGenid && c.req.param('genid') !== current)) return c.json(FORBIDDEN, 403);
    c.set('module', bound);
    await next();
  };
}

function sameModule(pathName: string, bound: string): boolean {
  return pathName === bound || pathName.replace(/^\$/, '') === bound.replace(/^\$/, '');
}
