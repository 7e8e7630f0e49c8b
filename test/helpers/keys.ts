/** Shared setup for the key service tests: configs for every backend over a temp state dir, SoftHSM2 and swtpm. */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { configSchema, type Config } from '../../host/config/schema.js';
import { silentLogger } from '../../host/log.js';
import { openKeyService, type KeyService } from '../../hsm/keys/index.js';
import { startSoftHsm, type SoftHsm, type SoftHsmToken } from '../../hsm/testing/softhsm.js';
import { Swtpm } from '../../hsm/tpm/testing/swtpm.js';

export function makeConfig(stateDir: string, keys: unknown, principal: unknown[] = [], tpm?: unknown): Config {
  return configSchema.parse({
    ...(tpm === undefined ? {} : { tpm }),
    hostname: 'test-device',
    state_dir: stateDir,
    provisioning: { source: 'none' },
    keys,
    connect: { management_uri: 'unix:///tmp/x/mgmt.sock', workload_uri: 'unix:///tmp/x/workload.sock' },
    listen: { management_uri: 'unix:///tmp/x/mgmt.sock', workload_uri: 'unix:///tmp/x/workload.sock' },
    principal,
  });
}

export interface Backend {
  readonly name: 'file' | 'pkcs11' | 'pkcs11-threads' | 'tpm';
  readonly stateDir: string;
  readonly hsm?: SoftHsm;
  readonly token?: SoftHsmToken;
  readonly sim?: Swtpm;
  open(principal?: unknown[]): Promise<KeyService>;
  cleanup(): Promise<void>;
}

export async function tempDir(prefix: string): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), prefix));
}

export async function fileBackend(): Promise<Backend> {
  const stateDir = await tempDir('edgeward-keys-file-');
  return {
    name: 'file',
    stateDir,
    open: (principal = []) => openKeyService({ config: makeConfig(stateDir, { backend: 'file' }, principal), stateDir, logger: silentLogger() }),
    cleanup: () => fs.rm(stateDir, { recursive: true, force: true }),
  };
}

/** A SoftHSM2 backend on a fresh token in a fresh token dir (activates SOFTHSM2_CONF for this process). */
export async function pkcs11Backend(hsm?: SoftHsm, label = 'edgeward-test', workerThreads = 0): Promise<Backend> {
  const own = hsm === undefined;
  const h = hsm ?? (await startSoftHsm());
  h.activate();
  const token = await h.initToken(label);
  const stateDir = await tempDir('edgeward-keys-p11-');
  const keys = { backend: 'pkcs11', pkcs11: { library: h.library, token_label: token.label, pin: token.pin, sessions: 4, worker_threads: workerThreads } };
  return {
    name: workerThreads > 0 ? 'pkcs11-threads' : 'pkcs11',
    stateDir,
    hsm: h,
    token,
    open: (principal = []) => openKeyService({ config: makeConfig(stateDir, keys, principal), stateDir, logger: silentLogger() }),
    cleanup: async () => {
      await fs.rm(stateDir, { recursive: true, force: true });
      if (own) await h.cleanup();
    },
  };
}

/** `[keys] backend = "tpm"` on a fresh swtpm (its own temp state), through `openKeyService` as the daemon opens it. */
export async function tpmBackend(): Promise<Backend> {
  const sim = await Swtpm.start();
  const stateDir = await tempDir('edgeward-keys-tpm-');
  return {
    name: 'tpm',
    stateDir,
    sim,
    open: (principal = []) =>
      openKeyService({ config: makeConfig(stateDir, { backend: 'tpm' }, principal, { tcti: sim.tcti }), stateDir, logger: silentLogger() }),
    cleanup: async () => {
      await sim.stop();
      await fs.rm(stateDir, { recursive: true, force: true });
    },
  };
}
