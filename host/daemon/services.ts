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
import { keysRoutes } from '../api/management/keys.js';
import { identitiesRoutes } from '../api/management/identities.js';
import { NativeModules } from '../identity/native.js';
import { NativeModuleService } from '../api/native-modules.js';
import { WorkloadSockets } from '../api/workload/sockets.js';
import type { HttpLimits } from '../api/serve.js';
import { MGMT_API_VERSION } from '../api/versions.js';
import type { ServiceStatus } from '../api/management/control.js';
import { Measurement, measurementOffStatus } from '../measure/service.js';
import { attestRoutes } from '../api/management/attest.js';
import { IntegrityMonitor } from '../measure/integrity.js';

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
  /** Start modules (apply `[runtime] deployment`). Called once the management API answers. */
  startModules(): Promise<void>;
  status(): Promise<ServiceStatus[]>;
  close(): Promise<void>;
}

/** The device's module trust (`[modules]`); an unusable signer file is a config error naming its entry. */
async function moduleTrust(config: Config, source: string): Promise<ModuleTrust> {
  const files = config.modules.trusted_signers.map((f) => (f.startsWith('file://') ? fileURLToPath(f) : f));
  try {
    return { policy: config.modules.signature_policy, store: await TrustStore.load(files) };
  } catch (err) {
    if (err instanceof TrustConfigError) throw new ConfigError(source, [{ path: `modules.trusted_signers.${err.index}`, message: err.message }]);
    throw err;
  }
}

/** `httpLimits`: the workload sockets' header and timeout limits (default: the shipped ones; tests shorten them). */
export async function composeServices(opts: { config: Config; logger: Logger; source?: string; capabilities?: readonly Capability[]; httpLimits?: HttpLimits }): Promise<Services> {
  const { config, logger } = opts;
  const trust = await moduleTrust(config, opts.source ?? '<config>');
  const stateDir = config.state_dir;
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
  try {
    const keys = await openKeyService({ config, stateDir, logger });
    closers.push(() => keys.close());
    // The daemon's code and config are measured before any other service or module starts.
    const measurement = await Measurement.start(config, logger.child({ component: 'measurement' }));
    if (measurement) closers.push(() => measurement.close());
    const identity = await IdentityService.open({ config, keys, logger });
    const certs = await CertService.open({ config, stateDir, keys, logger: logger.child({ component: 'certs' }), deviceId: identity.device.deviceId, hubHostname: identity.device.hubHostname });
    certs.startRenewal();
    closers.push(() => certs.close());
    const capabilities: Capability[] = [...edgewardCapabilities({ keys, identity, certs }), ...(opts.capabilities ?? [])];
    const runtimeLogger = logger.child({ component: 'runtime' });
    const runtime = await openSealedRuntime(keys, { stateDir, logger: runtimeLogger, limits: config.runtime.default_limits, capabilities, trust });
    runtimeLogger.info({ signaturePolicy: trust.policy, trustedSigners: trust.store.size }, 'module signature policy');
    closers.push(() => runtime.close());
    measurement?.watch(runtime);
    const integrity = new IntegrityMonitor(runtime, config.measurement.integrity_interval_s * 1000, runtimeLogger);
    integrity.start();
    closers.push(() => integrity.close());
    const nativeRegistry = await NativeModules.open(stateDir);
    const runDir = path.dirname(socketPathOf(config.connect.workload_uri));
    const workloadLogger = logger.child({ component: 'workload' });
    const workload = new WorkloadSockets({ identity, certs, keys, logger: workloadLogger, generationOf: (m) => nativeRegistry.get(m)?.generationId }, runDir, config.listen.workload_uri, opts.httpLimits);
    await workload.start();
    closers.push(() => workload.close());
    const native = new NativeModuleService(nativeRegistry, workload, identity, workloadLogger, () => runtime.registrations().map((r) => ({ name: r.name, generationId: r.generationId })));
    await native.start();
    return {
      keys,
      identity,
      certs,
      runtime,
      workload,
      native,
      startModules: () => startModules(runtime, config.runtime.deployment, runtimeLogger),
      managementRoutes: [
        { prefix: '/keys', app: keysRoutes(keys), minimum: MGMT_API_VERSION },
        { prefix: '/identities', app: identitiesRoutes(native) },
        { prefix: '/attest', app: attestRoutes(measurement) },
      ],
      status: async () => [...(await serviceStatus({ keys, identity, certs, runtime }, trust)), measurement?.status() ?? measurementOffStatus(config)],
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}

/** What `system status` shows of each service. */
async function serviceStatus({ keys, identity, certs, runtime }: Pick<Services, 'keys' | 'identity' | 'certs' | 'runtime'>, trust: ModuleTrust): Promise<ServiceStatus[]> {
  const modules = await runtime.list();
  const due = certs.renewalDue();
  return [
    { name: 'keys', status: 'running', detail: keys.backend === 'file' ? 'file backend (development only: not a hardware root of trust)' : `${keys.backend} backend` },
    { name: 'identity', status: 'running', detail: `device ${identity.device.deviceId} on ${identity.device.hubHostname} (${identity.device.authType})` },
    { name: 'certs', status: 'running', detail: `Edge CA valid until ${certs.edgeCa.notAfter.toISOString()}${due ? `, renewal due ${due.toISOString()}` : ''}` },
    {
      name: 'runtime',
      status: 'running',
      detail: `${modules.length} module(s), ${modules.filter((m) => m.status.runtimeStatus.status === 'running').length} running; signatures ${trust.policy}, ${trust.store.size} trusted signer(s)`
        + (runtime.countersProblem ? `; supervisor counters were reset (${runtime.countersProblem})` : ''),
    },
  ];
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
