/**
 * Reliability scenario H3 (../shared/reference/reliability-scenarios.md), after Parsec's stress test:
 * N = cpus clients, each sending 250 requests paced 10 ms ± 4 ms apart, a mix of sign, verify and create,
 * through the key service (handles, authorizer, each client a module of its own) over SoftHSM2 and swtpm.
 * Zero failures: every call succeeds, every signature verifies with node:crypto against its own key, and a
 * verify of a wrong message says false. Reported: throughput, p50/p99 latency, the longest event-loop
 * stall, the backend's high-water mark (PKCS#11 sessions in use, TPM objects loaded) and the RSS drift.
 */
import { createPublicKey, randomBytes, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../host/log.js';
import { keyServiceOverStore, tpmKeysDir, type Caller, type KeyService } from '../../hsm/keys/index.js';
import { openPkcs11KeyStore } from '../../hsm/pkcs11/store.js';
import { startSoftHsm, type SoftHsm } from '../../hsm/testing/softhsm.js';
import { TpmKeyBackend } from '../../hsm/tpm/backend.js';
import { tpmKeyStoreOver } from '../../hsm/tpm/keystore.js';
import { Swtpm } from '../../hsm/tpm/testing/swtpm.js';
import { Tpm } from '../../hsm/tpm/tpm.js';
import { report } from '../helpers/reliability.js';
import { makeConfig, tempDir } from '../helpers/keys.js';

const CLIENTS = os.availableParallelism();
const REQUESTS = 250;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Subject {
  readonly keys: KeyService;
  /** The backend's high-water mark, described. */
  highWater(): string;
}

interface ClientKey {
  readonly handle: string;
  readonly pub: KeyObject;
  readonly alg: 'ecdsa-sha256' | 'rsa-pkcs1-sha256';
}

/** One client: its own module namespace, two keys to start with, REQUESTS paced requests. */
async function client(keys: KeyService, i: number, latencies: number[], createLatencies: number[], failures: string[]): Promise<void> {
  const caller: Caller = { kind: 'module', module: `stress${i}` };
  const mine: ClientKey[] = [];
  const add = async (id: string, type: 'ec-p256' | 'rsa-2048'): Promise<void> => {
    const handle = await keys.createKeyPair(caller, { id }, type);
    const pub = createPublicKey({ key: await keys.getPublicKey(caller, handle), format: 'der', type: 'spki' });
    mine.push({ handle, pub, alg: type === 'ec-p256' ? 'ecdsa-sha256' : 'rsa-pkcs1-sha256' });
  };
  await add('ec-0', 'ec-p256');
  await add('rsa-0', 'rsa-2048');
  for (let n = 0; n < REQUESTS; n++) {
    await sleep(6 + Math.random() * 8); // 10 ms ± 4 ms
    const roll = Math.random();
    const k = mine[Math.floor(Math.random() * mine.length)]!;
    const msg = randomBytes(64);
    const t0 = performance.now();
    try {
      if (roll < 0.1) {
        await add(`ec-${n}`, 'ec-p256'); // create (EC: an RSA key takes the TPM seconds)
      } else if (roll < 0.4) {
        const sig = await keys.sign(caller, k.handle, k.alg, msg);
        const right = await keys.verify(caller, k.handle, k.alg, msg, sig);
        const wrong = await keys.verify(caller, k.handle, k.alg, randomBytes(64), sig);
        if (!right || wrong) failures.push(`client ${i}: verify said ${right}/${wrong}`);
      } else {
        const sig = await keys.sign(caller, k.handle, k.alg, msg);
        if (!cryptoVerify('sha256', msg, k.pub, sig)) failures.push(`client ${i}: a signature does not verify with its key`);
      }
    } catch (err) {
      failures.push(`client ${i}: ${roll < 0.1 ? "create" : "sign/verify"}: ${(err as Error).name}: ${(err as Error).message}${(err as Error).cause ? ` (${String((err as Error).cause)})` : ""}`);
    }
    latencies.push(performance.now() - t0);
    if (roll < 0.1) createLatencies.push(performance.now() - t0);
  }
}

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

/** Run the clients against `s`; returns the figure and the failures. */
async function stress(name: string, s: Subject): Promise<{ figure: string; failures: string[] }> {
  const latencies: number[] = [];
  const creates: number[] = [];
  const failures: string[] = [];
  const loop = monitorEventLoopDelay({ resolution: 10 });
  const rss0 = process.memoryUsage().rss;
  loop.enable();
  const t0 = performance.now();
  await Promise.all(Array.from({ length: CLIENTS }, (_, i) => client(s.keys, i, latencies, creates, failures)));
  const ms = performance.now() - t0;
  loop.disable();
  const rss1 = process.memoryUsage().rss;
  const sorted = [...latencies].sort((a, b) => a - b);
  const createSorted = [...creates].sort((a, b) => a - b);
  const figure =
    `${name}: ${CLIENTS} clients × ${REQUESTS} requests in ${(ms / 1000).toFixed(1)} s = ${(latencies.length / (ms / 1000)).toFixed(0)} req/s, ` +
    `p50 ${pct(sorted, 50).toFixed(1)} ms, p99 ${pct(sorted, 99).toFixed(1)} ms (creates: ${creates.length}, p50 ${pct(createSorted, 50).toFixed(0)} ms, max ${(createSorted.at(-1) ?? NaN).toFixed(0)} ms), max event-loop delay ${(loop.max / 1e6).toFixed(1)} ms, ${s.highWater()}, ` +
    `RSS drift ${((rss1 - rss0) / 2 ** 20).toFixed(1)} MiB, failures ${failures.length}`;
  return { figure, failures };
}

describe('H3: Parsec-style stress, N=cpus clients × 250 requests at 10 ms ± 4 ms', () => {
  const figures: string[] = [];
  let held = true;
  let hsm: SoftHsm;
  let sim: Swtpm;
  let stateDir: string;
  beforeAll(async () => {
    hsm = await startSoftHsm();
    hsm.activate();
    sim = await Swtpm.start();
    stateDir = await tempDir('edgeward-h3-');
  });
  afterAll(async () => {
    if (figures.length > 0) report('H3', figures.join('; '), held && figures.length === 2);
    await sim?.stop();
    await hsm?.cleanup();
    if (stateDir) await fs.rm(stateDir, { recursive: true, force: true });
  });

  it('SoftHSM2: zero failures', { timeout: 90_000 }, async () => {
    const token = await hsm.initToken('h3-stress');
    const config = makeConfig(stateDir, { backend: 'pkcs11', pkcs11: { library: hsm.library, token_label: token.label, pin: token.pin, sessions: 4 } });
    const store = await openPkcs11KeyStore(config.keys.pkcs11!, silentLogger());
    const lines: string[] = [];
    const logger = pino({ level: 'error' }, new Writable({ write(chunk: Buffer, _e, cb) { lines.push(chunk.toString()); cb(); } }));
    const keys = await keyServiceOverStore(store, { config, stateDir, logger });
    try {
      const { figure, failures } = await stress('SoftHSM2', {
        keys,
        highWater: () => `session-pool high-water ${store.poolStats().highWater}/${store.poolStats().size}`,
      });
      figures.push(figure);
      held &&= failures.length === 0;
      expect(failures.slice(0, 5), lines.slice(0, 3).join('\n')).toEqual([]);
    } finally {
      await keys.close();
    }
  });

  it('swtpm: zero failures', { timeout: 150_000 }, async () => {
    const config = makeConfig(stateDir, { backend: 'tpm' }, [], { tcti: sim.tcti });
    const tpm = await Tpm.open(sim.tcti);
    const backend = await TpmKeyBackend.open(tpm, tpmKeysDir(stateDir));
    const keys = await keyServiceOverStore(tpmKeyStoreOver(tpm, backend), { config, stateDir, logger: silentLogger() });
    try {
      const { figure, failures } = await stress('swtpm', {
        keys,
        highWater: () => `TPM objects loaded high-water ${backend.loadStats().highWater}`,
      });
      figures.push(figure);
      held &&= failures.length === 0;
      expect(failures.slice(0, 5)).toEqual([]);
    } finally {
      await keys.close();
    }
  });
});
