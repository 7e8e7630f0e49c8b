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
import { RuntimeError } from './errors.js';
import { deploymentDigest } from './deployments.js';

export { ComponentRuntime, type RuntimeOptions } from './runtime.js';
export type { DeployResult, InvokeResult } from './types.js';
export { GrantError, type Capability, type GrantRequest, type InstanceContext, type HostFunction } from './capabilities.js';
export { parseManifest, parseApiSpec, builtinDefaultManifest, type ModuleSpec } from './manifest.js';
export type { RuntimeEvent } from './events.js';
export { IOT_EDGE_BACKOFF, type BackoffSettings } from './policy.js';
export { warmWorkerPool, drainWorkerPool } from './sandbox/index.js';
export { TrustStore, TrustConfigError, type ModuleTrust } from './trust.js';

export interface CreateModuleRuntimeOptions {
  stateDir: string;
  logger: Logger;
  limits: LimitsConfig;
  /** Path of a deployment manifest (JSON), or `builtin:default` for the sample `hello` module. */
  deployment?: string;
  /** Every capability a module can be granted (host/capabilities/index.ts). */
  capabilities: RuntimeOptions['capabilities'];
  backoff?: RuntimeOptions['backoff'];
  /** Signature policy and trusted signers; default "optional" with none trusted. */
  trust?: RuntimeOptions['trust'];
  /** Seals the transpile cache to this device (the daemon's HMAC key). */
  cacheSeal?: RuntimeOptions['cacheSeal'];
  /** The TEE backend for confidential modules (host/runtime/confidential/backend.ts). */
  tee?: RuntimeOptions['tee'];
  /** Anti-rollback floors (rollback.ts); default a state file. */
  versionFloors?: RuntimeOptions['versionFloors'];
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

/** Open the registry under `stateDir`; nothing starts yet (see `startModules`). */
export async function openModuleRuntime(opts: CreateModuleRuntimeOptions): Promise<ComponentRuntime> {
  return ComponentRuntime.open({
    stateDir: opts.stateDir,
    logger: opts.logger,
    limits: opts.limits,
    capabilities: opts.capabilities,
    ...(opts.backoff ? { backoff: opts.backoff } : {}),
    ...(opts.trust ? { trust: opts.trust } : {}),
    ...(opts.cacheSeal ? { cacheSeal: opts.cacheSeal } : {}),
    ...(opts.tee ? { tee: opts.tee } : {}),
    ...(opts.versionFloors ? { versionFloors: opts.versionFloors } : {}),
  });
}

/**
 * Start the modules at daemon start: restore what was deployed, or apply `deployment` where it is new
 * (deployments.ts): the embedded default only on a state directory where nothing was ever deployed, a
 * manifest file when it is new or changed since it was applied. A deployment that cannot be applied is
 * logged and the daemon keeps running with what it has: a missing sample component must not take the
 * security manager down.
 */
export async function startModules(runtime: ComponentRuntime, deployment: string | undefined, logger: Logger): Promise<void> {
  if (!deployment) {
    await runtime.startAll();
    return;
  }
  try {
    const decision = await startDecision(runtime, deployment);
    if (!decision.apply) {
      logger.info({ deployment }, `deployment not re-applied: ${decision.why}; starting the registered modules`);
      await runtime.startAll();
      return;
    }
    const specs = decision.specs;
    for (const s of specs) {
      if (!/^https:/.test(s.source) && !existsSync(s.source)) {
        throw new RuntimeError('invalid', `component for module "${s.name}" not found at ${s.source}` + (deployment === 'builtin:default' ? ' (run `npm run build:guests` at install)' : ''));
      }
    }
    const result = await runtime.deploy(specs, deployment);
    for (const f of result.failed) logger.error({ module: f.module }, `deployment: ${f.message}`);
    logger.info({ ...result, failed: result.failed.length }, `deployment ${deployment} applied`);
  } catch (err) {
    logger.error({ err: (err as Error).message }, `deployment ${deployment} not applied; running with the registered modules`);
    await runtime.startAll();
  }
}

type StartDecision = { apply: true; specs: ModuleSpec[] } | { apply: false; why: string };

/** Whether the configured `deployment` is applied at this start (see deployments.ts). */
async function startDecision(runtime: ComponentRuntime, deployment: string): Promise<StartDecision> {
  const records = runtime.deployments;
  if (deployment === 'builtin:default') {
    if (records.any) return { apply: false, why: `a deployment was applied here before (last from ${records.last?.source ?? 'an earlier version'})` };
    if (runtime.registrations().length > 0) return { apply: false, why: 'modules are registered in this state directory' };
    return { apply: true, specs: builtinDefaultManifest() };
  }
  const specs = await readManifestFile(deployment);
  if (records.appliedDigest(deployment) === deploymentDigest(specs)) return { apply: false, why: `${deployment} is unchanged since it was applied` };
  return { apply: true, specs };
}

/** Open the runtime and start its modules (`openModuleRuntime` + `startModules`). */
export async function createModuleRuntime(opts: CreateModuleRuntimeOptions): Promise<ComponentRuntime> {
  const runtime = await openModuleRuntime(opts);
  await startModules(runtime, opts.deployment, opts.logger);
  return runtime;
}
