/**
 * What the daemon loads at start (issue 14: resident memory). Heavy code that only some devices or some
 * moments need is imported when it is needed: @peculiar/x509 (~13 MiB resident with its ASN.1 schemas) only
 * to validate a signer's certificate chain; the certificate service reads and issues certificates (first
 * boot's quickstart Edge CA, renewal, module certificates) without it, and raw signer keys need none. With
 * no `[tpm]` and no `[confidential]` backend, neither the TPM stack nor the PKCS#11 binding is loaded.
 *
 * The daemon runs with a module loader hook (`--import`) that appends every module URL it loads to a file.
 * The `edgeward` bin is a bundle (scripts/bundle.mjs): each file of it it loads stands for the modules
 * esbuild's metafile says went into that file, so the checks below name the same dist/ modules either way.
 */
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { buildTestGuest } from '../guests/adversarial/components.js';
import { CLI, ROOT, envFor, startDaemon, stopDaemon, tempHome } from './helpers/cli.js';

/** A loaded file of the bundle → the URLs of the dist/ modules in it (other URLs as they are). */
function unbundled(urls: string[]): string[] {
  const meta = JSON.parse(readFileSync(path.join(ROOT, 'dist', 'bundle-meta.json'), 'utf8')) as { outputs: Record<string, { inputs: Record<string, unknown> }> };
  const byUrl = new Map(Object.entries(meta.outputs).map(([out, o]) => [pathToFileURL(path.join(ROOT, out)).href, Object.keys(o.inputs).map((i) => pathToFileURL(path.join(ROOT, i)).href)]));
  return urls.flatMap((u) => byUrl.get(u) ?? [u]);
}

/** Start the daemon with the hook, wait until its start-up deployment is applied, stop it: the URLs it loaded. */
async function loadedBy(home: string, config: string, log: string): Promise<{ urls: string[]; output: string }> {
  writeFileSync(log, '');
  const hook = path.join(home, 'hook.mjs');
  writeFileSync(hook, `import { appendFileSync } from 'node:fs';\nexport async function load(url, ctx, next) { appendFileSync(${JSON.stringify(log)}, url + '\\n'); return next(url, ctx); }\n`);
  const reg = path.join(home, 'register.mjs');
  // ICU's collation data (13 ms, +3.7 MiB resident on first use) is noted too: `localeCompare`, Intl.Collator.
  writeFileSync(reg, `import { register } from 'node:module';\nimport { appendFileSync } from 'node:fs';\nregister(${JSON.stringify(pathToFileURL(hook).href)});\n` +
    `const note = (what) => appendFileSync(${JSON.stringify(log)}, 'icu:' + what + '\\n');\n` +
    `const lc = String.prototype.localeCompare;\nString.prototype.localeCompare = function (...a) { note('localeCompare'); return lc.apply(this, a); };\n` +
    `const C = Intl.Collator;\nIntl.Collator = new Proxy(C, { construct(t, a) { note('Collator'); return Reflect.construct(t, a); }, apply(t, self, a) { note('Collator'); return Reflect.apply(t, self, a); } });\n`);
  const d = await startDaemon(envFor(home), ['--config', config], undefined, 60_000, ['--import', reg, CLI, 'daemon']);
  try {
    const deadline = Date.now() + 30_000;
    while (!d.output().includes('modules started')) {
      if (Date.now() > deadline) throw new Error(`no "modules started":\n${d.output()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    await stopDaemon(d);
  }
  const urls = readFileSync(log, 'utf8').split('\n').filter(Boolean);
  if (!urls.some((u) => u.includes('/dist/host/bundle/'))) throw new Error(`the daemon did not run from the bundle: ${urls.slice(0, 5).join(', ')}`);
  return { urls: unbundled(urls), output: d.output() };
}

const icu = (urls: string[]) => urls.filter((u) => u.startsWith('icu:'));
const x509 = (urls: string[]) => urls.filter((u) => u.includes('/node_modules/@peculiar/x509/'));
const devices = (urls: string[]) => urls.filter((u) => /\/dist\/hsm\/(tpm\/(tpm|shared|identity|transport)|tee\/(tpm|pkcs11|optee))\.js$|\/dist\/host\/measure\/service\.js$|\/node_modules\/pkcs11js\//.test(u));

describe('daemon start: heavy code loaded only when needed', () => {
  it('@peculiar/x509 is not loaded to issue the quickstart Edge CA at first boot, nor to read it at the next start (raw-key signers trusted); no TPM or PKCS#11 code without a TPM or a TEE backend; the .mjs code comes from dist/, the measured tree', async () => {
    const { home, cleanup } = tempHome();
    try {
      const signer = path.join(home, 'signer.pub');
      writeFileSync(signer, generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }) as string);
      const manifest = path.join(home, 'deployment.json');
      writeFileSync(manifest, JSON.stringify({ modules: {} }));
      const config = path.join(home, 'config.toml');
      writeFileSync(config, `[runtime]\ndeployment = "${manifest}"\n[modules]\ntrusted_signers = ["${signer}"]\n`);
      const log = path.join(home, 'loaded.txt');
      for (const [boot, issues] of [['first', true], ['second', false]] as const) {
        const { urls, output } = await loadedBy(home, config, log);
        expect(output.includes('quickstart Edge CA issued'), boot).toBe(issues);
        expect(urls.some((u) => u.endsWith('/dist/hsm/certs/der.js')), `${boot}: the issuer was loaded`).toBe(true);
        expect(urls.some((u) => u.endsWith('/dist/hsm/certs/service.js')), `${boot}: the certificate service was loaded`).toBe(true);
        expect(urls.some((u) => u.endsWith('/dist/host/runtime/trust.js')), `${boot}: the trust store was loaded`).toBe(true);
        expect(x509(urls), boot).toEqual([]);
        expect(devices(urls), boot).toEqual([]);
        expect(icu(urls), boot).toEqual([]);
        expect(urls.filter((u) => u.endsWith('/dist/host/runtime/trust-path.js') || u.endsWith('/dist/hsm/certs/issue.js')), boot).toEqual([]);
        // The .mjs code the daemon's thread loads (broker protocol, boundary validator, glue script) comes
        // from the tree its code digest measures (dist/), not from the sources beside it.
        const mjs = urls.filter((u) => u.endsWith('.mjs') && !u.includes('/node_modules/'));
        expect(mjs.some((u) => u.endsWith('/dist/host/boundary/validate.mjs')), `${boot}: ${mjs.join(', ')}`).toBe(true);
        expect(mjs.filter((u) => !u.includes('/dist/host/')), boot).toEqual([]);
      }
    } finally {
      cleanup();
    }
  }, 120_000);

  it('ICU collation is not loaded by a daemon with a deployment of two modules (registry and deployment digest sort by code units)', async () => {
    const { home, cleanup } = tempHome();
    try {
      writeFileSync(path.join(home, 'echo.wasm'), await buildTestGuest('echo'));
      const manifest = path.join(home, 'deployment.json');
      writeFileSync(manifest, JSON.stringify({ modules: { 'echo-b': { settings: { image: './echo.wasm' } }, 'Echo-a': { settings: { image: './echo.wasm' } } } }));
      const config = path.join(home, 'config.toml');
      writeFileSync(config, `[runtime]\ndeployment = "${manifest}"\n`);
      const log = path.join(home, 'loaded.txt');
      for (const boot of ['first (applies it)', 'second (unchanged: digest compared)']) {
        const { urls, output } = await loadedBy(home, config, log);
        expect(output, boot).toContain('"module":"echo-b","event":"started"');
        expect(icu(urls), boot).toEqual([]);
      }
    } finally {
      cleanup();
    }
  }, 120_000);
});
