/**
 * The daemon's services, composed explicitly (no container, no discovery): the order here is the
 * start order, and `close()` stops them in reverse.
 */
import type { Hono } from 'hono';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log.js';
import { RuntimeError, type ModuleRuntime } from '../runtime/types.js';
import type { ServiceStatus } from './control.js';

export interface Services {
  runtime: ModuleRuntime;
  managementRoutes: { prefix: string; app: Hono }[];
  status(): Promise<ServiceStatus[]>;
  close(): Promise<void>;
}

export async function composeServices(opts: { config: Config; logger: Logger }): Promise<Services> {
  const runtime = noModulesRuntime();
  return {
    runtime,
    managementRoutes: [],
    async status() {
      return [{ name: 'runtime', status: 'running', detail: 'no component runtime yet' }];
    },
    async close() {
      await runtime.close();
      void opts;
    },
  };
}

/** Placeholder until the component runtime is composed here: a runtime with no modules. */
function noModulesRuntime(): ModuleRuntime {
  const missing = (name: string): never => {
    throw new RuntimeError('not-found', `module "${name}" not found`);
  };
  return {
    list: async () => [],
    get: async (n) => missing(n),
    start: async (n) => missing(n),
    stop: async (n) => missing(n),
    restart: async (n) => missing(n),
    logs: (n) => missing(n),
    close: async () => undefined,
  };
}
