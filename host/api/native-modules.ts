/**
 * Native modules end to end: their registrations, their workload sockets, and the IOTEDGE_* environment
 * that `ModuleClient.fromEnvironment()` reads.
 */
import type { Logger } from '../log.js';
import { RuntimeError } from '../runtime/types.js';
import { WORKLOAD_API_VERSION_FOR_MODULES } from './versions.js';
import type { WorkloadSockets } from './workload/sockets.js';
import type { IdentityService } from '../identity/identity.js';
import type { NativeModules } from '../identity/native.js';

/** IoT Edge's Identity shape (management API). */
export interface IdentityJson {
  moduleId: string;
  managedBy: string;
  generationId: string;
  authType: 'sas';
  kind: 'native' | 'component';
}

export class NativeModuleService {
  constructor(
    private readonly registry: NativeModules,
    private readonly sockets: WorkloadSockets,
    private readonly identity: IdentityService,
    private readonly logger: Logger,
    /** Identities of component modules (from the runtime's registrations). */
    private readonly componentIdentities: () => { name: string; generationId: string }[],
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
    if (created) this.logger.info({ module: name }, 'native module registered');
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

  private json(moduleId: string, generationId: string, kind: IdentityJson['kind']): IdentityJson {
    return { moduleId, managedBy: 'iotedge', generationId, authType: 'sas', kind };
  }
}
