/**
 * Issue 3 at the daemon level: `edgeward daemon` on a SoftHSM2 token, `edgeward keys` through it, and the
 * startup refusals (wrong PIN, missing library, missing token) as exit 2 with a message that never shows
 * the PIN (scenario H4).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { startSoftHsm, pkcs11Tool, type SoftHsm, type SoftHsmToken } from '../hsm/testing/softhsm.js';
import { envFor, runCli, startDaemon, stopDaemon, tempHome } from './helpers/cli.js';

const PIN = '73915';

describe('daemon on SoftHSM2', () => {
  let hsm: SoftHsm;
  let token: SoftHsmToken;
  let home: string;
  let cleanup: () => void;

  beforeAll(async () => {
    hsm = await startSoftHsm();
    token = await hsm.initToken('edgeward-daemon', PIN);
    ({ home, cleanup } = tempHome());
  });
  afterAll(async () => {
    cleanup();
    await hsm.cleanup();
  });

  function config(name: string, keys: string): string {
    const file = path.join(home, `${name}.toml`);
    writeFileSync(file, `[provisioning]\nsource = "none"\n[runtime]\n[keys]\nbackend = "pkcs11"\n[keys.pkcs11]\n${keys}`);
    return file;
  }

  it('starts on the token; keys created through the CLI are on the token, sensitive and not extractable', async () => {
    const env = envFor(home, { SOFTHSM2_CONF: hsm.conf });
    const file = config('good', `library = "${hsm.library}"\ntoken_label = "${token.label}"\npin = "${PIN}"\n`);
    const d = await startDaemon(env, ['-c', file]);
    try {
      const ctx = ['-c', file];
      expect((await runCli([...ctx, 'keys', 'create', 'door', '--type', 'ec-p256'], env)).code).toBe(0);
      const pub = await runCli([...ctx, 'keys', 'public', 'door'], env);
      expect(pub.stdout).toContain('-----BEGIN PUBLIC KEY-----');
      const objects = await pkcs11Tool(hsm, ['--token-label', token.label, '--login', '--pin', PIN, '--list-objects']);
      expect(objects).toContain('edgeward/edgeward/door');
      expect(objects).toMatch(/Private Key Object; EC[\s\S]*label:\s+edgeward\/edgeward\/door[\s\S]*Access:\s+sensitive, always sensitive, never extractable/);
      const status = JSON.parse((await runCli([...ctx, 'system', 'status', '--json'], env)).stdout);
      expect(status.services.find((s: { name: string }) => s.name === 'keys').detail).toBe('pkcs11 backend');
      expect(d.output()).not.toContain(PIN);
    } finally {
      expect(await stopDaemon(d)).toBe(0);
    }
  });

  const refusals: [string, () => string, RegExp][] = [
    ['wrong PIN', () => `library = "${hsm.library}"\ntoken_label = "${token.label}"\npin = "00000"\n`, /PIN/i],
    ['missing library', () => `library = "/nonexistent/libpkcs11.so"\ntoken_label = "${token.label}"\npin = "${PIN}"\n`, /\/nonexistent\/libpkcs11\.so/],
    ['missing token', () => `library = "${hsm.library}"\ntoken_label = "no-such-token"\npin = "${PIN}"\n`, /no-such-token/],
  ];
  for (const [name, keys, pattern] of refusals) {
    it(`${name}: the daemon does not start, exit 2, a clear message without the PIN`, async () => {
      const env = envFor(home, { SOFTHSM2_CONF: hsm.conf });
      const r = await runCli(['daemon', '-c', config(name.replace(' ', '-'), keys())], env);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(pattern);
      expect(r.stderr + r.stdout).not.toContain(PIN);
      expect(r.stderr + r.stdout).not.toContain('00000');
      expect(r.stderr).not.toMatch(/\n\s+at /);
    });
  }
});
