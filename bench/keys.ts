/**
 * ECDSA P-256 signatures per second through the key service vs a raw pkcs11js loop, on the same SoftHSM2
 * token in one run. Target: service ≥ 0.8 × raw.
 *
 *   npx tsx bench/keys.ts [seconds-per-side=4] [concurrency=64]
 *
 * Both sides do the same per-signature work: SHA-256 of the message on the host, then C_SignInit(CKM_ECDSA)
 * + C_Sign on the token (SoftHSM2 has no CKM_ECDSA_SHA256). "raw" is the plain synchronous loop a caller of
 * pkcs11js would write on one session. "service" is `KeyService.sign` (handle check, authorization,
 * digest, session pool, executor, DER encoding) under the default config (`worker_threads = 0`: operations
 * inline), one call at a time — the like-for-like comparison with the raw loop, and the figure on the
 * final line. Also printed: the service with `concurrency` calls in flight (the session pool queues them and
 * yields to the event loop every 2 ms), and the same with `worker_threads = 2`.
 *
 * The phases alternate in short rounds (raw, service, sequential, raw, …) so that load from other processes
 * on a shared machine hits both sides alike; each figure is total signatures / total time of that side.
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pkcs11js from 'pkcs11js';
import pino from 'pino';
import { configSchema } from '../host/config/schema.js';
import { DAEMON_CALLER, openKeyService, type KeyService } from '../hsm/keys/index.js';
import { startSoftHsm, withRawSession, type SoftHsm, type SoftHsmToken } from '../hsm/testing/softhsm.js';

const p = pkcs11js;
const SECONDS = Number(process.argv[2] ?? 4);
const ROUNDS = 8;
const CONCURRENCY = Number(process.argv[3] ?? 64);
const MSG = Buffer.from('edgeward benchmark message: sign me');

async function rawLoop(hsm: SoftHsm, token: SoftHsmToken, label: string, ms: number): Promise<number> {
  return withRawSession(hsm.library, token.label, false, (m, s) => {
    m.C_FindObjectsInit(s, [{ type: p.CKA_LABEL, value: label }, { type: p.CKA_CLASS, value: p.CKO_PRIVATE_KEY }]);
    const key = m.C_FindObjects(s);
    m.C_FindObjectsFinal(s);
    if (!key) throw new Error('benchmark key not found on the token');
    const out = Buffer.alloc(64);
    let n = 0;
    const end = performance.now() + ms;
    while (performance.now() < end) {
      const digest = createHash('sha256').update(MSG).digest();
      m.C_SignInit(s, { mechanism: p.CKM_ECDSA }, key);
      m.C_Sign(s, digest, out);
      n++;
    }
    return n;
  });
}

async function serviceLoop(keys: KeyService, handle: string, ms: number, concurrency: number): Promise<number> {
  let n = 0;
  const end = performance.now() + ms;
  const worker = async () => {
    while (performance.now() < end) {
      await keys.sign(DAEMON_CALLER, handle, 'ecdsa-sha256', MSG);
      n++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return n;
}

function benchConfig(stateDir: string, hsm: SoftHsm, token: SoftHsmToken, workerThreads: number) {
  return configSchema.parse({
    hostname: 'bench', state_dir: stateDir, provisioning: { source: 'none' },
    keys: { backend: 'pkcs11', pkcs11: { library: hsm.library, token_label: token.label, pin: token.pin, worker_threads: workerThreads } },
    connect: { management_uri: 'unix:///x/m.sock', workload_uri: 'unix:///x/w.sock' },
    listen: { management_uri: 'unix:///x/m.sock', workload_uri: 'unix:///x/w.sock' },
  });
}

async function main(): Promise<void> {
  const hsm = await startSoftHsm();
  hsm.activate();
  const token = await hsm.initToken('edgeward-bench');
  const stateDir = await fs.mkdtemp(path.join(os.tmpdir(), 'edgeward-bench-keys-'));
  const config = benchConfig(stateDir, hsm, token, 0);
  const keys = await openKeyService({ config, stateDir, logger: pino({ level: 'silent' }) });
  const threaded = await openKeyService({ config: benchConfig(stateDir, hsm, token, 2), stateDir, logger: pino({ level: 'silent' }) });
  try {
    const handle = await keys.createKeyPair(DAEMON_CALLER, { id: 'bench-p256' }, 'ec-p256');
    const label = 'edgeward/edgeward/bench-p256';
    // Warm every path (object lookup cache, JIT, workers) before measuring.
    await serviceLoop(keys, handle, 300, CONCURRENCY);
    await serviceLoop(threaded, handle, 300, CONCURRENCY);
    await rawLoop(hsm, token, label, 300);

    const slice = (SECONDS * 1000) / ROUNDS;
    const totals = { raw: 0, service: 0, sequential: 0, workers: 0 };
    for (let r = 0; r < ROUNDS; r++) {
      totals.raw += await rawLoop(hsm, token, label, slice);
      totals.service += await serviceLoop(keys, handle, slice, CONCURRENCY);
      totals.sequential += await serviceLoop(keys, handle, slice, 1);
      totals.workers += await serviceLoop(threaded, handle, slice, CONCURRENCY);
    }
    const [raw, service, sequential, workers] = [totals.raw, totals.service, totals.sequential, totals.workers].map((n) => n / SECONDS) as [number, number, number, number];
    const sessions = config.keys.pkcs11?.sessions;
    console.log(`cpus=${os.cpus().length} sessions=${sessions} concurrency=${CONCURRENCY} seconds/side=${SECONDS} rounds=${ROUNDS} load=${os.loadavg()[0]!.toFixed(1)}`);
    console.log(`raw pkcs11js loop (1 session, sync):                ${raw.toFixed(0)} sig/s`);
    console.log(`key service, default (inline), 1 in flight:      ${sequential.toFixed(0)} sig/s  (ratio ${(sequential / raw).toFixed(2)})`);
    console.log(`key service, default (inline), ${String(CONCURRENCY).padStart(3)} in flight:  ${service.toFixed(0)} sig/s  (ratio ${(service / raw).toFixed(2)})`);
    console.log(`key service, worker_threads=2, ${String(CONCURRENCY).padStart(3)} in flight:  ${workers.toFixed(0)} sig/s  (ratio ${(workers / raw).toFixed(2)})`);
    console.log(
      `keys.sign.p256  service=${sequential.toFixed(0)} raw=${raw.toFixed(0)} ratio=${(sequential / raw).toFixed(2)}` +
        `  concurrent${CONCURRENCY}=${service.toFixed(0)} ratio${CONCURRENCY}=${(service / raw).toFixed(2)}`,
    );
  } finally {
    await threaded.close();
    await keys.close();
    await fs.rm(stateDir, { recursive: true, force: true });
    await hsm.cleanup();
  }
}

await main();
