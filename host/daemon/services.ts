/**
 * The daemon's services, composed explicitly (no container, no discovery): the order here is the start
 * order, and `close()` stops them in reverse. Each service is the only owner of its store.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Hono } from 'hono';
import type { Config } from '../config/schema.js';
import { socketPathOf } from '../config/paths.js';
import type { Logger } from '../log.js';
import { DAEMON_CALLER, openKeyService, type KeyService } from '../../hsm/keys/index.js';
import { CertService } from '../../hsm/certs/service.js';
import { IdentityService } from '../identity/identity.js';
import { openModuleRuntime, startModules, TrustConfigError, TrustStore, type Capability, type ComponentRuntime, type CreateModuleRuntimeOptions, type ModuleTrust } from '../runtime/index.js';
import { ConfigError } from '../config/load.js';
import { edgewardCapabilities } from '../capabilities/index.js';
import { AttestService } from '../capabilities/attest/index.js';
import { FindingsStore, MonitorHub } from '../capabilities/monitor/index.js';
import { findingsRoutes } from '../api/management/findings.js';
import { eventsRoutes } from '../api/management/events.js';
import { keysRoutes } from '../api/management/keys.js';
import { identitiesRoutes } from '../api/management/identities.js';
import { NativeModules } from '../identity/native.js';
import { NativeModuleService } from '../api/native-modules.js';
import { followRuntimeEvents } from '../cloud/hub/events.js';
import { openHubIdentities } from './cloud.js';
import { WorkloadSockets } from '../api/workload/sockets.js';
import type { HttpLimits } from '../api/serve.js';
import { MGMT_API_VERSION } from '../api/versions.js';
import type { ServiceStatus } from '../api/management/control.js';
import type { Measurement } from '../measure/service.js';
import { measurementEnabled, measurementOffStatus } from '../measure/off.js';
import { attestRoutes } from '../api/management/attest.js';
import { IntegrityMonitor } from '../measure/integrity.js';
import { DaemonTee } from '../runtime/confidential/backend.js';
import { confidentialRoutes } from '../api/management/confidential.js';
import { listenMetrics, openMetrics, type DaemonMetrics } from '../metrics/index.js';

/** The daemon's HMAC key that seals the module runtime's transpile cache. */
const CACHE_SEAL_KEY_ID = 'runtime-cache-seal';

export interface Services {
  keys: KeyService;
  identity: IdentityService;
  certs: CertService;
  runtime: ComponentRuntime;
  workload: WorkloadSockets;
  native: NativeModuleService;
  managementRoutes: { prefix: string; app: Hono; minimum?: string }[];
  /** End the streams of `GET /events?follow=true` with their last line; before the management socket closes. */
  closeStreams(): Promise<void>;
  /** Start modules (apply `[runtime] deployment`). Called once the management API answers. */
  startModules(): Promise<void>;
  status(): Promise<ServiceStatus[]>;
  close(): Promise<void>;
}

/** The device's module trust (`[modules]`); an unusable signer file is a config error naming its entry. */
async function moduleTrust(config: Config, source: string): Promise<ModuleTrust> {
  const store = await trustStore(config.modules.trusted_signers, 'modules', source);
  const extensions = await trustStore(config.security_extensions.trusted_signers, 'security_extensions', source);
  return { policy: config.modules.signature_policy, store, extensions };
}

/** The signers of `[table] trusted_signers`; an unusable file is a config error naming its entry. */
async function trustStore(signers: readonly string[], table: string, source: string): Promise<TrustStore> {
  const files = signers.map((f) => (f.startsWith('file://') ? fileURLToPath(f) : f));
  try {
    return await TrustStore.load(files);
  } catch (err) {
    if (err instanceof TrustConfigError) throw new ConfigError(source, [{ path: `${table}.trusted_signers.${err.index}`, message: err.message }]);
    throw err;
  }
}

/** `httpLimits`: the workload sockets' header and timeout limits (default: the shipped ones; tests shorten them). */
export async function composeServices(opts: { config: Config; logger: Logger; source?: string; capabilities?: readonly Capability[]; httpLimits?: HttpLimits }): Promise<Services> {
  const { config, logger } = opts;
  const trust = await moduleTrust(config, opts.source ?? '<config>');
  const stateDir = config.state_dir;
  const { closers, close } = reverseStopper(logger);
  try {
    const { keys, metrics } = await openCountedKeys(config, logger);
    closers.push(() => keys.close());
    // The daemon's code and config are measured before any other service or module starts.
    // Its TPM code is loaded only when it can run (Measurement.start returns undefined otherwise).
    const measurement = measurementEnabled(config) ? await (await import('../measure/service.js')).Measurement.start(config, logger.child({ component: 'measurement' })) : undefined;
    if (measurement) closers.push(() => measurement.close());
    const identity = await IdentityService.open({ config, keys, logger });
    const certs = await CertService.open({ config, stateDir, keys, logger: logger.child({ component: 'certs' }), deviceId: identity.device.deviceId, hubHostname: identity.device.hubHostname });
    certs.startRenewal();
    closers.push(() => certs.close());
    // Confidential modules' TEE backend: opened only when one is deployed or started (or its key asked for).
    const tee = new DaemonTee(config, logger.child({ component: 'confidential' }));
    closers.push(() => tee.close());
    const { runtime, monitor, runtimeLogger } = await composeRuntime({ ...opts, trust, keys, identity, certs, measurement, tee, metrics }, closers);
    recordProvisioning(runtime, identity);
    const events = eventsRoutes(monitor);
    const keyCreated = (id: string, type: string) => {
      logger.info({ key: id, type }, 'key created through the management API');
      runtime.recordDaemonEvent('key-created', `key ${JSON.stringify(id)} (${type}) created in the daemon's namespace through the management API`);
    };
    const nativeRegistry = await NativeModules.open(stateDir);
    const runDir = path.dirname(socketPathOf(config.connect.workload_uri));
    const workloadLogger = logger.child({ component: 'workload' });
    const workload = new WorkloadSockets({ identity, certs, keys, logger: workloadLogger, generationOf: (m) => nativeRegistry.get(m)?.generationId, onResponse: metrics?.workloadResponse }, runDir, config.listen.workload_uri, opts.httpLimits);
    await workload.start();
    closers.push(() => workload.close());
    const hub = await openHubIdentities({ config, keys, identity, logger });
    if (hub) closers.push(followRuntimeEvents(hub, (l) => runtime.onEvent(l)), () => hub.close());
    const hubHooks = hub && { added: (m: string) => void hub.moduleAdded(m), removed: (m: string) => void hub.moduleRemoved(m) };
    const native = new NativeModuleService(nativeRegistry, workload, identity, workloadLogger, () => runtime.registrations().map((r) => ({ name: r.name, generationId: r.generationId })), hubHooks);
    await native.start();
    if (metrics) closers.push(await listenMetrics(config, metrics, logger));
    // Reconciled after the start-up deployment (not before: on a wiped state directory it would delete the
    // identities the deployment is about to recreate), and not awaited: an offline start must not wait.
    const localModules = () => [...runtime.registrations().map((r) => r.name), ...nativeRegistry.all().map((m) => m.name)];
    return {
      keys,
      identity,
      certs,
      runtime,
      workload,
      native,
      closeStreams: () => events.close(),
      startModules: async () => {
        await startModules(runtime, config.runtime.deployment, runtimeLogger);
        void hub?.reconcile(localModules());
      },
      managementRoutes: [
        { prefix: '/keys', app: keysRoutes(keys, { onCreated: keyCreated }), minimum: MGMT_API_VERSION },
        { prefix: '/events', app: events.app, minimum: MGMT_API_VERSION },
        { prefix: '/identities', app: identitiesRoutes(native, () => identity.provisioningInfo()) },
        { prefix: '/findings', app: findingsRoutes(monitor.findings) },
        { prefix: '/attest', app: attestRoutes(measurement) },
        { prefix: '/confidential', app: confidentialRoutes(() => tee.get()) },
      ],
      status: async () => [
        ...(await serviceStatus({ keys, identity, certs, runtime }, trust)),
        measurement?.status() ?? measurementOffStatus(config),
        ...(hub ? [hub.serviceStatus()] : []),
      ],
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}

/**
 * The module runtime with its capabilities, the security extensions' hub watching it, each module start
 * measured into the TPM (when there is one), the integrity monitor re-measuring what runs and the
 * metrics (when on) counting its calls and events.
 */
async function composeRuntime(
  o: { config: Config; logger: Logger; capabilities?: readonly Capability[]; trust: ModuleTrust; keys: KeyService; identity: IdentityService; certs: CertService; measurement: Measurement | undefined; tee: DaemonTee; metrics: DaemonMetrics | undefined },
  closers: (() => Promise<void> | void)[],
): Promise<{ runtime: ComponentRuntime; monitor: MonitorHub; runtimeLogger: Logger }> {
  const { config, keys, identity, certs, measurement, trust } = o;
  const measurements = measurement && { pcrs: () => measurement.pcrValues(), eventLog: async () => new Uint8Array(measurement.log.bytes()) };
  const monitor = new MonitorHub(await FindingsStore.open(config.state_dir), measurements);
  // edgeward:attest for confidential modules: evidence from measured launch, sealing through the TEE backend.
  const attest = new AttestService({ stateDir: config.state_dir, tee: () => o.tee.get(), ...(measurement ? { evidence: measurement } : {}), logger: o.logger.child({ component: 'attest' }) });
  const capabilities: Capability[] = [...edgewardCapabilities({ keys, identity, certs, monitor, attest }), ...(o.capabilities ?? [])];
  const runtimeLogger = o.logger.child({ component: 'runtime' });
  // Anti-rollback floors in TPM NV counters when the device has a TPM (else a state file: rollback.ts).
  const tpm = config.tpm ? await (await import('../../hsm/tpm/shared.js')).openSharedTpm(config.tpm.tcti) : undefined;
  if (tpm) closers.push(() => tpm.close());
  const versionFloors = tpm ? { versionFloors: new (await import('../runtime/rollback-tpm.js')).TpmVersionFloors(tpm) } : {};
  const runtime = await openSealedRuntime(keys, { stateDir: config.state_dir, logger: runtimeLogger, limits: config.runtime.default_limits, capabilities, trust, tee: () => o.tee.get(), ...versionFloors });
  runtimeLogger.info({ signaturePolicy: trust.policy, trustedSigners: trust.store.size }, 'module signature policy');
  closers.push(() => runtime.close());
  monitor.attach(runtime);
  measurement?.watch(runtime);
  if (o.metrics) closers.push(o.metrics.observeRuntime(runtime, identity.device));
  const integrity = new IntegrityMonitor(runtime, config.measurement.integrity_interval_s * 1000, runtimeLogger);
  integrity.start();
  closers.push(() => integrity.close());
  return { runtime, monitor, runtimeLogger };
}

/** A `provisioning` event for the identity the daemon started with, and one for each reprovisioning. */
function recordProvisioning(runtime: ComponentRuntime, identity: IdentityService): void {
  runtime.recordDaemonEvent('provisioning', `identity at start: ${identity.describe()}`);
  identity.onReprovisioned((c) => runtime.recordDaemonEvent('provisioning', `reprovisioned (${c.reason}; was device ${c.previous.deviceId} on ${c.previous.hubHostname}): ${identity.describe()}`));
}

/**
 * The key service, and the daemon's metrics when `[metrics]` turns them on (undefined otherwise); with
 * metrics, the key service is wrapped to count its operations (hsm/ is not changed).
 */
async function openCountedKeys(config: Config, logger: Logger): Promise<{ keys: KeyService; metrics: DaemonMetrics | undefined }> {
  const metrics = openMetrics(config);
  const keys = await openKeyService({ config, stateDir: config.state_dir, logger });
  return { keys: metrics ? metrics.observeKeys(keys) : keys, metrics };
}

/** Stop functions of the services started so far; `close` runs them in reverse, logging what fails. */
function reverseStopper(logger: Logger): { closers: (() => Promise<void> | void)[]; close(): Promise<void> } {
  const closers: (() => Promise<void> | void)[] = [];
  const close = async () => {
    for (const fn of closers.reverse()) {
      try {
        await fn();
      } catch (err) {
        logger.warn({ err }, 'error while stopping a service');
      }
    }
  };
  return { closers, close };
}

/** What `system status` shows of each service. */
async function serviceStatus({ keys, identity, certs, runtime }: Pick<Services, 'keys' | 'identity' | 'certs' | 'runtime'>, trust: ModuleTrust): Promise<ServiceStatus[]> {
  const modules = await runtime.list();
  const due = certs.renewalDue();
  return [
    { name: 'keys', status: 'running', detail: keys.backend === 'file' ? 'file backend (development only: not a hardware root of trust)' : `${keys.backend} backend` },
    identityStatus(identity),
    { name: 'certs', status: 'running', detail: `Edge CA valid until ${certs.edgeCa.notAfter.toISOString()}${due ? `, renewal due ${due.toISOString()}` : ''}` },
    {
      name: 'runtime',
      status: 'running',
      detail: `${modules.length} module(s), ${modules.filter((m) => m.status.runtimeStatus.status === 'running').length} running; signatures ${trust.policy}, ${trust.store.size} trusted signer(s)`
        + (runtime.countersProblem ? `; supervisor counters were reset (${runtime.countersProblem})` : ''),
    },
  ];
}

/** The device identity, and for DPS how it was provisioned: from DPS, from its backup, and the last error with its fix. */
function identityStatus(identity: IdentityService): ServiceStatus {
  const d = identity.device;
  const base = `device ${d.deviceId} on ${d.hubHostname} (${d.authType})`;
  const info = identity.provisioningInfo();
  if (info.source !== 'dps') return { name: 'identity', status: 'running', detail: base };
  const how = info.state === 'from-backup' ? 'from the DPS backup (DPS not reached at start)' : `by DPS (${info.auth}, ${info.registration_id})`;
  const last = info.lastError ? `; last DPS attempt${info.lastAttempt ? ` ${info.lastAttempt}` : ''} failed: ${info.lastError.message}` : '';
  return { name: 'identity', status: info.lastError ? 'degraded' : 'running', detail: `${base}, provisioned ${how}${last}` };
}

/**
 * The module runtime, its transpile cache sealed with an HMAC key the key service keeps (non-extractable
 * on PKCS#11 and the TPM), so glue swapped in the state directory is refused rather than run.
 */
async function openSealedRuntime(keys: KeyService, opts: Omit<CreateModuleRuntimeOptions, 'cacheSeal'>): Promise<ComponentRuntime> {
  const sealKey = await keys.createSecretKey(DAEMON_CALLER, { id: CACHE_SEAL_KEY_ID }, 'hmac-sha256');
  const cacheSeal = { mac: async (data: Uint8Array) => new Uint8Array(await keys.sign(DAEMON_CALLER, sealKey, 'hmac-sha256', Buffer.from(data))) };
  return openModuleRuntime({ ...opts, cacheSeal });
}
