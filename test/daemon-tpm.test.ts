/**
 * The daemon with `[keys] backend = "tpm"` on a swtpm started by the test: it starts, `edgeward keys` creates
 * keys in the TPM and prints their public key; an unreachable TPM stops it with exit 2 and hsm/tpm's message.
 */
import { createPublicKey } from 'node:crypto';
import { promises as fs, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { tpmKeysDir } from '../hsm/keys/index.js';
import { SRK_HANDLE } from '../hsm/tpm/identity.js';
import { publicKeyOf } from '../hsm/tpm/pubkey.js';
import { Swtpm } from '../hsm/tpm/testing/swtpm.js';
import { Tpm } from '../hsm/tpm/tpm.js';
import { parseTpm2bPublic } from '../hsm/tpm/types.js';
import { envFor, runCli, startDaemon, stopDaemon, tempHome, type DaemonHandle } from './helpers/cli.js';
import { closedPort } from './helpers/net.js';

/** `[runtime]` without a deployment: no sample guest, this is about the key store. */
function writeConfig(home: string, tcti: string): string {
  const file = path.join(home, 'config.toml');
  writeFileSync(file, `[provisioning]\nsource = "none"\n\n[keys]\nbackend = "tpm"\n\n[tpm]\ntcti = "${tcti}"\n\n[runtime]\n`);
  return file;
}

describe('edgeward daemon with [keys] backend = "tpm"', () => {
  let home: string;
  let cleanup: () => void;
  let env: NodeJS.ProcessEnv;
  let daemon: DaemonHandle | undefined;
  let sim: Swtpm | undefined;

  beforeEach(() => {
    ({ home, cleanup } = tempHome());
    env = envFor(home);
  });
  afterEach(async () => {
    if (daemon) await stopDaemon(daemon, 'SIGKILL');
    daemon = undefined;
    await sim?.stop();
    sim = undefined;
    cleanup();
  });

  it('starts on swtpm; keys create/public make and show a P-256 key whose blob loads under the TPM\'s SRK', { timeout: 90_000 }, async () => {
    sim = await Swtpm.start();
    const cfg = writeConfig(home, sim.tcti);
    daemon = await startDaemon(env, ['-c', cfg]);

    const created = await runCli(['keys', 'create', 'k1', '--type', 'ec-p256'], env);
    expect(created.stderr).toBe('');
    expect(created).toMatchObject({ code: 0, stdout: 'k1: ec-p256\n' });
    const pub = await runCli(['keys', 'public', 'k1'], env);
    expect(pub.code).toBe(0);
    expect(pub.stdout).toMatch(/^-----BEGIN PUBLIC KEY-----\n/);
    const key = createPublicKey(pub.stdout);
    expect(key.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    // The TPM backend says so instead of failing vaguely.
    const p384 = await runCli(['keys', 'create', 'k2', '--type', 'ec-p384'], env);
    expect(p384.code).not.toBe(0);
    expect(p384.stderr).toContain('does not support ec-p384');
    expect((await runCli(['keys', 'list'], env)).stdout).toMatch(/^k1\s+ec-p256$/m);

    // The key is the TPM's: its wrapped blob loads under the persisted SRK and carries that public key.
    expect(await stopDaemon(daemon)).toBe(0);
    daemon = undefined;
    const dir = tpmKeysDir(path.join(home, 'state'));
    const blobs = await Promise.all((await fs.readdir(dir)).map(async (n) => JSON.parse(await fs.readFile(path.join(dir, n), 'utf8')) as { label: string; public: string; private: string }));
    const blob = blobs.find((b) => b.label === 'edgeward/edgeward/k1');
    expect(blob).toBeDefined();
    const tpmPublic = Buffer.from(blob!.public, 'base64');
    expect(publicKeyOf(parseTpm2bPublic(tpmPublic)).export({ type: 'spki', format: 'der' })).toEqual(key.export({ type: 'spki', format: 'der' }));
    const tpm = await Tpm.open(sim.tcti);
    try {
      const loaded = await tpm.load(SRK_HANDLE, Buffer.from(blob!.private, 'base64'), tpmPublic);
      await tpm.flushContext(loaded.handle);
    } finally {
      await tpm.close();
    }

    // And the same key again after a restart.
    daemon = await startDaemon(env, ['-c', cfg]);
    expect((await runCli(['keys', 'public', 'k1'], env)).stdout).toBe(pub.stdout);
  });

  it('an unreachable TPM stops the daemon with exit 2 and says which TPM and how to fix it', async () => {
    const port = await closedPort();
    const cfg = writeConfig(home, `swtpm:host=127.0.0.1,port=${port}`);
    const r = await runCli(['daemon', '-c', cfg], env, 30_000);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`[keys] backend = "tpm": cannot use the TPM at "swtpm:host=127.0.0.1,port=${port}": TPM simulator not answering at 127.0.0.1:${port}`);
    expect(r.stderr).toContain('hint: start it');
  });

  it('a TPM device that does not exist stops the daemon with exit 2 and the firmware/simulator hint', async () => {
    const cfg = writeConfig(home, 'device:/dev/edgeward-no-such-tpm');
    const r = await runCli(['daemon', '-c', cfg], env, 30_000);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('[keys] backend = "tpm": cannot use the TPM at "device:/dev/edgeward-no-such-tpm": no TPM device at /dev/edgeward-no-such-tpm (ENOENT)');
    expect(r.stderr).toContain('hint: check that the device has a TPM 2.0');
  });
});
