/**
 * The management API (privileged; guarded by the socket's file mode): composed from one route file per
 * resource. Every route sits behind the api-version check and a body-size limit.
 */
import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { apiVersion, type ApiVersionOptions } from '../middleware/api-version.js';
import { errorHandler } from '../errors.js';
import { DEFAULT_HTTP_LIMITS } from '../serve.js';
import { systemRoutes } from './system.js';
import { modulesRoutes } from './modules.js';
import type { NativeModulesView } from '../native-modules.js';
import type { ModuleRuntime } from '../../runtime/types.js';
import { hasMemoryBudget } from '../../runtime/memory-budget.js';
import type { DaemonControl } from './control.js';
import type { Logger } from '../../log.js';

/** Largest request body the management API reads (a deployment manifest fits comfortably). */
export const MAX_MGMT_BODY_BYTES = DEFAULT_HTTP_LIMITS.maxBodyBytes;

export interface ManagementDeps {
  daemon: DaemonControl;
  runtime: ModuleRuntime;
  logger: Logger;
  /** Native modules, listed beside the runtime's under /modules. */
  native?: NativeModulesView;
  /** Further sub-apps, mounted at their prefix behind the api-version check (e.g. `/keys`). */
  extra?: { prefix: string; app: Hono; minimum?: ApiVersionOptions['minimum'] }[];
}

export function managementApp(deps: ManagementDeps): Hono {
  const app = new Hono();
  app.onError(errorHandler(deps.logger));
  app.notFound((c) => c.json({ message: 'not found' }, 404));
  app.use('*', bodyLimit({ maxSize: MAX_MGMT_BODY_BYTES, onError: (c) => c.json({ message: `request body larger than ${MAX_MGMT_BODY_BYTES} bytes` }, 413) }));
  const rt = deps.runtime;
  app.route('/', systemRoutes(deps.daemon, hasMemoryBudget(rt) ? () => rt.memoryBudget() : undefined));
  app.use('/modules/*', apiVersion());
  app.use('/modules', apiVersion());
  app.route('/modules', modulesRoutes(deps.runtime, deps.native));
  for (const { prefix, app: sub, minimum } of deps.extra ?? []) {
    app.use(`${prefix}/*`, apiVersion({ minimum }));
    app.use(prefix, apiVersion({ minimum }));
    app.route(prefix, sub);
  }
  return app;
}
