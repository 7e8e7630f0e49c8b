/**
 * Entry point of the component runtime for the daemon:
 *
 *   const runtime = await createModuleRuntime({ stateDir, logger, limits: config.runtime.default_limits,
 *                                               deployment: config.runtime.deployment });
 *   app.route('/modules', modulesRoutes(runtime));   // host/api/management/modules.ts
 *   registerModuleCommands(program, getClient);      // host/cli/commands/modules.ts
 *   …
 *   await runtime.close();
 */
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import type { Logger } from '../log.js';
import type { LimitsConfig } from '../config/schema.js';
import { ComponentRuntime, type RuntimeOptions } from './runtime.js';
import { builtinDefaultManifest, parseManifest, type ModuleSpec } from './manifest.js';
import { RuntimeError } from './types.js';

export { ComponentRuntime, type RuntimeOptions, type DeployResult } from './runtime.js';
export type { InvokeResult } from './types.js';
export { BUILTIN_CAPABILITIES, type Capability, type InstanceContext, type HostFunction } from './capabilities.js';
export { parseManifest, parseApiSpec, builtinDefaultManifest, type ModuleSpec } from './manifest.js';
export type { RuntimeEvent } from './events.js';
export { IOT_EDGE_BACKOFF, type BackoffSettings } from './policy.js';
export { warmWorkerPool, drainWorkerPool } from './sandbox.js';

export interface CreateModuleRuntimeOptions {
  stateDir: string;
  logger: Logger;
  limits: LimitsConfig;
  /** Path of a deployment manifest (JSON), or `builtin:default` for the sample `hello` module. */
  deployment?: string;
  /** Extra capabilities (e.g. `edgeward:hsm/keys`), appended to the built-in list. */
  capabilities?: RuntimeOptions['capabilities'];
  backoff?: RuntimeOptions['backoff'];
}

/** Read a manifest file (JSON). Relative component paths resolve against the manifest's directory. */
export async function readManifestFile(file: string): Promise<ModuleSpec[]> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    throw new RuntimeError('invalid', `deployment manifest ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new RuntimeError('invalid', `deployment manifest ${file}: not JSON (${(err as Error).message})`);
  }
  return parseManifest(doc, path.dirname(path.resolve(file)));
}

/**
 * Open the registry under `stateDir`, then apply `deployment` (or start the registered modules). A
 * deployment that cannot be applied is logged and the daemon keeps running with what it has: a missing
 * sample component must not take the security manager down.
 */
export async function createModuleRuntime(opts: CreateModuleRuntimeOptions): Promise<ComponentRuntime> {
  const runtime = await ComponentRuntime.open({
    stateDir: opts.stateDir,
    logger: opts.logger,
    limits: opts.limits,
    ...(opts.capabilities ? { capabilities: opts.capabilities } : {}),
    ...(opts.backoff ? { backoff: opts.backoff } : {}),
  });
  if (!opts.deployment) {
    await runtime.startAll();
    return runtime;
  }
  try {
    const specs = opts.deployment === 'builtin:default' ? builtinDefaultManifest() : await readManifestFile(opts.deployment);
    for (const s of specs) {
      if (!/^https:/.test(s.source) && !existsSync(s.source)) {
        throw new RuntimeError('invalid', `component for module "${s.name}" not found at ${s.source}` + (opts.deployment === 'builtin:default' ? ' (run `npm run build:guests` at install)' : ''));
      }
    }
    const result = await runtime.deploy(specs);
    for (const f of result.failed) opts.logger.error({ module: f.module }, `deployment: ${f.message}`);
    opts.logger.info({ ...result, failed: result.failed.length }, `deployment ${opts.deployment} applied`);
  } catch (err) {
    opts.logger.error({ err: (err as Error).message }, `deployment ${opts.deployment} not applied; running with the registered modules`);
    await runtime.startAll();
  }
  return runtime;
}
