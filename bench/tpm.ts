/**
 * TPM HMAC-SHA256 and ECDSA P-256 sign, operations per second, through Edgeward (one open connection, keys
 * loaded once, TpmKeyBackend) against the same operations through tpm2-tools (`tpm2_hmac` / `tpm2_sign`, one
 * process per operation, in a tight bash loop) on the same swtpm, in one run.
 *
 *   npx tsx bench/tpm.ts [seconds-per-measurement, default 3]
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { Swtpm } from '../hsm/tpm/testing/swtpm.js';
import { Tpm } from '../hsm/tpm/tpm.js';
import { SRK_HANDLE, ensureIdentity } from '../hsm/tpm/identity.js';
import { TpmKeyBackend } from '../hsm/tpm/backend.js';
import { eccSigningTemplate, hmacTemplate } from '../hsm/tpm/templates.js';

const SECONDS = Number(process.argv[2] ?? 3);
const HMAC_HANDLE = 0x81000010;
const ECC_HANDLE = 0x81000011;

async function opsPerSecond(fn: () => Promise<unknown>): Promise<{ ops: number; n: number }> {
  for (let i = 0; i < 20; i++) await fn(); // warm-up
  const end = performance.now() + SECONDS * 1000;
  const t0 = performance.now();
  let n = 0;
  while (performance.now() < end) {
    await fn();
    n++;
  }
  return { ops: (n * 1000) / (performance.now() - t0), n };
}

/** Ops/s of `cmd` run as one process per op in a bash loop for about SECONDS. */
function toolsOpsPerSecond(sim: Swtpm, cmd: string, cwd: string): { ops: number; n: number } {
  const script = `end=$(( $(date +%s%N) + ${SECONDS} * 1000000000 )); n=0; t0=$(date +%s%N)
while [ $(date +%s%N) -lt $end ]; do ${cmd} >/dev/null || exit 1; n=$((n+1)); done
echo $n $(( $(date +%s%N) - t0 ))`;
  const [n, ns] = execFileSync('bash', ['-c', script], { env: sim.env, cwd, encoding: 'utf8' }).trim().split(' ').map(Number);
  return { ops: (n! * 1e9) / ns!, n: n! };
}

const fmt = (x: number): string => x.toFixed(1);

async function main(): Promise<void> {
  const sim = await Swtpm.start();
  const cwd = sim.stateDir;
  try {
    const tpm = await Tpm.open(sim.tcti);
    await ensureIdentity(tpm);
    // Keys for tpm2-tools, persisted so each process finds them by handle.
    for (const [handle, template] of [[HMAC_HANDLE, hmacTemplate()], [ECC_HANDLE, eccSigningTemplate()]] as const) {
      const k = await tpm.create(SRK_HANDLE, template);
      const l = await tpm.load(SRK_HANDLE, k.privateBytes, k.publicBytes);
      await tpm.evictControl(l.handle, handle);
      await tpm.flushContext(l.handle);
    }
    const backend = await TpmKeyBackend.open(tpm, path.join(cwd, 'keys'));
    await backend.createKey('bench/hmac', 'hmac-sha256');
    await backend.createKey('bench/ec', 'ec-p256');
    const msg = Buffer.from('myhub.azure-devices.net%2Fdevices%2Fdevice1\n1700000000');
    const digest = createHash('sha256').update(msg).digest();

    const eHmac = await opsPerSecond(() => backend.hmac('bench/hmac', msg));
    const eSign = await opsPerSecond(() => backend.sign('bench/ec', digest));
    const eHmacPersistent = await opsPerSecond(() => tpm.hmac(HMAC_HANDLE, msg));
    await backend.close();
    await tpm.close(); // swtpm serves one connection at a time

    await fs.writeFile(path.join(cwd, 'msg'), msg);
    await fs.writeFile(path.join(cwd, 'digest'), digest);
    const tHmac = toolsOpsPerSecond(sim, `tpm2_hmac -c 0x${HMAC_HANDLE.toString(16)} -g sha256 msg`, cwd);
    const tSign = toolsOpsPerSecond(sim, `tpm2_sign -c 0x${ECC_HANDLE.toString(16)} -g sha256 -d -f plain -o sig.bin digest`, cwd);

    console.log(`swtpm ${sim.tcti}, ${SECONDS} s per measurement`);
    console.log(`edgeward TpmKeyBackend hmac: ${eHmac.n} ops; sign: ${eSign.n} ops; raw Tpm.hmac on a persistent handle: ${fmt(eHmacPersistent.ops)} ops/s`);
    console.log(`tpm2-tools (one process per op, bash loop) hmac: ${tHmac.n} ops; sign: ${tSign.n} ops`);
    console.log(`tpm.ecdsa-p256-sign edgeward=${fmt(eSign.ops)} tpm2-tools=${fmt(tSign.ops)} ratio=${fmt(eSign.ops / tSign.ops)}`);
    console.log(`tpm.hmac edgeward=${fmt(eHmac.ops)} tpm2-tools=${fmt(tHmac.ops)} ratio=${fmt(eHmac.ops / tHmac.ops)}`);
  } finally {
    await sim.stop();
  }
}

await main();
