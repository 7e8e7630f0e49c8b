/** ModuleDetails as IoT Edge's management API reports them, from a registration and its live state. */
import type { ModuleDetails, RuntimeStatus } from './types.js';
import type { Registration } from './registry.js';

/** What the supervisor tracks about one module between and across instances. */
export interface ModuleState {
  status: RuntimeStatus;
  description?: string;
  startTime?: Date;
  exit?: { time: Date; code: number };
  restartCount: number;
  crashCount: number;
  nextRestartAt?: Date;
  instanceId?: number;
  lastError?: string;
}

/** `health`: the probed health of the running instance (health.ts), when its component exports probes. */
export function renderDetails(r: Registration, s: ModuleState, effectiveLimits: object, health?: { status: string; failures: number; lastError?: string; lastProbe?: Date }): ModuleDetails {
  return {
    id: r.name,
    name: r.name,
    type: 'wasm',
    config: {
      settings: { ...r.settings, image: r.source, imageHash: r.digest },
      env: Object.entries(r.env).map(([key, value]) => ({ key, value })),
    },
    status: {
      ...(s.startTime ? { startTime: s.startTime.toISOString() } : {}),
      ...(s.exit ? { exitStatus: { exitTime: s.exit.time.toISOString(), statusCode: String(s.exit.code) } } : {}),
      runtimeStatus: { status: s.status, ...(s.description ? { description: s.description } : {}) },
    },
    edgeward: {
      generationId: r.generationId,
      kind: r.kind,
      signer: r.signer,
      ...(r.signerSubject ? { signerSubject: r.signerSubject } : {}),
      desiredStatus: r.desiredStatus,
      restartPolicy: r.restartPolicy,
      startupOrder: r.startupOrder,
      capabilities: r.capabilities,
      ...(r.network ? { network: r.network } : {}),
      limits: effectiveLimits,
      restartCount: s.restartCount,
      crashCount: s.crashCount,
      ...(s.nextRestartAt ? { nextRestartAt: s.nextRestartAt.toISOString() } : {}),
      ...(s.lastError ? { lastError: s.lastError } : {}),
      ...(r.securityVersion !== undefined ? { securityVersion: r.securityVersion } : {}),
      ...(health ? { health: { status: health.status, failures: health.failures, ...(health.lastError ? { lastError: health.lastError } : {}), ...(health.lastProbe ? { lastProbe: health.lastProbe.toISOString() } : {}) } } : {}),
    },
  };
}
