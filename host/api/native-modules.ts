/**
 * Native modules end to end: their registrations, their workload sockets, and the IOTEDGE_* environment
 * that `ModuleClient.fromEnvironment()` reads.
 */
import type { Logger } from '../log.js';
import { RuntimeError, type ModuleDetails } from '../runtime/types.js';
import { WORKLOAD_API_VERSION_FOR_MODULES } from './versions.js';
import type { WorkloadSockets } from './workload/sockets.js';
import type { IdentityService } from '../identity/identity.js';
import type { NativeModule, NativeModules } from '../identity/native.js';

/**
 * What Edgeward knows of a native module's run time: nothing. It registers the module and serves its
 * workload socket; the process is started, watched and logged by whatever runs it (systemd, Docker…).
 */
export const NATIVE_STATUS_DESCRIPTION = 'native module: registered with Edgeward, which serves its identity but does not run or watch its process';

/** Why `logs` has nothing for a native module, and where its logs are. */
export function nativeLogsMessage(name: string): string {
  return `module "${name}" is a native module: Edgeward does not run it and does not capture its output; read its logs where it runs (journalctl -u <its unit>, docker logs <its container>, or its own log files)`;
}

/** Why start/stop/restart/remove/invoke do not apply to a native module, and what to use instead. */
export function nativeRefusal(name: string, what: string): string {
  return `module "${name}" is a native module: Edgeward does not run it, so it cannot ${what} it; manage the process where it runs (systemd, Docker…), and remove its registration with \`edgeward module unregister ${name}\``;
}

/** The native modules as the management API's module routes show them (host/api/management/modules.ts). */
export interface NativeModulesView {
  /** Every native module as IoT Edge ModuleDetails (type "native", status "unknown"). */
  moduleDetails(): ModuleDetails[];
  /** One of them, or undefined when no native module has that name. */
  moduleDetail(name: string): ModuleDetails | undefined;
}

/** IoT Edge's Identity shape (management API). */
export interface IdentityJson {
  moduleId: string;
  managedBy: string;
  generationId: string;
  authType: 'sas';
  kind: 'native' | 'component';
}

export class NativeModuleService implements NativeModulesView {
  constructor(
    private readonly registry: NativeModules,
    private readonly sockets: WorkloadSockets,
    private readonly identity: IdentityService,
    private readonly logger: Logger,
    /** Identities of component modules (from the runtime's registrations). */
    private readonly componentIdentities: () => { name: string; generationId: string }[],
    /** Told of each native module registered or removed (the IoT Hub module identities follow them). */
    private readonly hooks?: { added(name: string): void; removed(name: string): void },
  ) {}

  /** Serve the sockets of every registered native module (daemon start). */
  async start(): Promise<void> {
    for (const m of this.registry.all()) await this.sockets.add(m.name, m.uid);
  }

  generationOf(name: string): string | undefined {
    return this.registry.get(name)?.generationId;
  }

  identities(): IdentityJson[] {
    return [
      ...this.registry.all().map((m) => this.json(m.name, m.generationId, 'native')),
      ...this.componentIdentities().map((m) => this.json(m.name, m.generationId, 'component')),
    ];
  }

  async register(name: string, uid?: number): Promise<IdentityJson> {
    if (this.componentIdentities().some((m) => m.name === name)) throw new RuntimeError('conflict', `"${name}" is a component module; its identity comes from its registration`);
    const { module, created } = await this.registry.register(name, uid === undefined ? {} : { uid });
    await this.sockets.add(module.name, module.uid);
    if (created) {
      this.logger.info({ module: name }, 'native module registered');
      this.hooks?.added(name);
    }
    return this.json(module.name, module.generationId, 'native');
  }

  async regenerate(name: string): Promise<IdentityJson> {
    const m = await this.registry.regenerate(name);
    this.logger.info({ module: name }, 'native module generation renewed');
    return this.json(m.name, m.generationId, 'native');
  }

  async remove(name: string): Promise<boolean> {
    const removed = await this.registry.remove(name);
    if (removed) {
      await this.sockets.remove(name);
      this.logger.info({ module: name }, 'native module removed');
      this.hooks?.removed(name);
    }
    return removed;
  }

  /** The environment a native module needs, exactly the variables IoT Edge's agent sets. */
  env(name: string): Record<string, string> {
    const m = this.registry.get(name);
    if (!m) throw new RuntimeError('not-found', `native module "${name.slice(0, 80)}" not found`);
    const d = this.identity.device;
    return {
      IOTEDGE_WORKLOADURI: `unix://${this.sockets.socketPathFor(m.name)}`,
      IOTEDGE_MODULEID: m.name,
      IOTEDGE_DEVICEID: d.deviceId,
      IOTEDGE_IOTHUBHOSTNAME: d.hubHostname,
      IOTEDGE_GATEWAYHOSTNAME: d.gatewayHostname,
      IOTEDGE_MODULEGENERATIONID: m.generationId,
      IOTEDGE_APIVERSION: WORKLOAD_API_VERSION_FOR_MODULES,
      IOTEDGE_AUTHSCHEME: 'sasToken',
    };
  }

  moduleDetails(): ModuleDetails[] {
    return this.registry.all().map((m) => this.details(m));
  }

  moduleDetail(name: string): ModuleDetails | undefined {
    const m = this.registry.get(name);
    return m ? this.details(m) : undefined;
  }

  /**
   * A native module as IoT Edge ModuleDetails. Status `unknown`: Edgeward knows the registration (name,
   * generation id, when, its workload socket), not whether the process runs.
   */
  private details(m: NativeModule): ModuleDetails {
    return {
      id: m.name,
      name: m.name,
      type: 'native',
      config: { settings: { image: 'native' }, env: [] },
      status: { runtimeStatus: { status: 'unknown', description: NATIVE_STATUS_DESCRIPTION } },
      edgeward: {
        kind: 'native',
        generationId: m.generationId,
        registeredAt: m.createdAt,
        workloadUri: `unix://${this.sockets.socketPathFor(m.name)}`,
        ...(m.uid !== undefined ? { uid: m.uid } : {}),
        logs: nativeLogsMessage(m.name),
      },
    };
  }

  private json(moduleId: string, generationId: string, kind: IdentityJson['kind']): IdentityJson {
    return { moduleId, managedBy: 'iotedge', generationId, authType: 'sas', kind };
  }
}
