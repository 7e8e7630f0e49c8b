/**
 * `[measurement]` (host/config/measurement.ts): defaults PCR 12/13, only the OS's non-resettable PCRs 8–15,
 * two different PCRs; and the measured config (host/measure/code.ts) is canonical and carries no secret.
 */
import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../host/config/load.js';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { CODE_ROOT, codeDigest, codeRootAbove, measuredConfig } from '../host/measure/code.js';
import { configProblems } from './helpers/config.js';

const env = { EDGEWARD_HOME: '/tmp/ew-measure-config' };
const base = '[provisioning]\nsource = "manual"\nconnection_string = "HostName=h.azure-devices.net;DeviceId=d;SharedAccessKey=c2VjcmV0c2VjcmV0"\n';

describe('[measurement] config', () => {
  it('defaults to PCR 12 (runtime) and 13 (modules), enabled, integrity every 300 s', () => {
    expect(parseConfigText(base, 't.toml', env).config.measurement).toEqual({ enabled: true, runtime_pcr: 12, modules_pcr: 13, integrity_interval_s: 300 });
  });

  it('refuses a resettable or firmware PCR, and one PCR for both', () => {
    expect(configProblems(`${base}[measurement]\nruntime_pcr = 16\n`, env)).toEqual([expect.objectContaining({ path: 'measurement.runtime_pcr', message: expect.stringContaining('resettable') })]);
    expect(configProblems(`${base}[measurement]\nmodules_pcr = 7\n`, env)[0]).toMatchObject({ path: 'measurement.modules_pcr' });
    expect(configProblems(`${base}[measurement]\nruntime_pcr = 14\nmodules_pcr = 14\n`, env)[0]).toMatchObject({ path: 'measurement.modules_pcr', message: 'runtime_pcr and modules_pcr must differ' });
  });

  it('measures the config without its secrets, the same however the TOML is ordered', () => {
    const tpm = '[tpm]\ntcti = "swtpm:host=127.0.0.1,port=2321"\n[tpm.hierarchy_authorization]\nowner = "ownerpass"\n';
    const a = measuredConfig(parseConfigText(`${base}${tpm}[measurement]\nruntime_pcr = 11\nmodules_pcr = 15\n`, 't.toml', env).config);
    const b = measuredConfig(parseConfigText(`[measurement]\nmodules_pcr = 15\nruntime_pcr = 11\n${tpm}${base}`, 't.toml', env).config);
    expect(a).toEqual(b);
    expect(a.canonical).not.toContain('c2VjcmV0c2VjcmV0');
    expect(a.canonical).not.toContain('ownerpass');
    const c = measuredConfig(parseConfigText(`${base}${tpm}[measurement]\nruntime_pcr = 11\nmodules_pcr = 14\n`, 't.toml', env).config);
    expect(c.digest).not.toBe(a.digest);
  });
});

describe('daemon code digest', () => {
  it('is what the documented sha256sum pipeline gives, and changes with one byte of code', async () => {
    const root = mkdtempSync(path.join(os.tmpdir(), 'ew-code-'));
    try {
      for (const [f, text] of [['host/cli/main.js', 'a'], ['host/Z.js', 'b'], ['hsm/tpm/tpm.js', 'c'], ['other/x.js', 'not measured']] as const) {
        mkdirSync(path.dirname(path.join(root, f)), { recursive: true });
        writeFileSync(path.join(root, f), text);
      }
      const shell = execFileSync('sh', ['-c', "{ printf 'edgeward-code-v1\\nversion %s\\n' 9.9.9; find host hsm -type f | LC_ALL=C sort | xargs sha256sum; } | sha256sum"], { cwd: root }).toString().split(' ')[0];
      const ours = await codeDigest(root, '9.9.9');
      expect(ours).toEqual({ version: '9.9.9', digest: `sha256:${shell}`, files: 3 });
      writeFileSync(path.join(root, 'hsm/tpm/tpm.js'), 'C');
      expect((await codeDigest(root, '9.9.9')).digest).not.toBe(ours.digest);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('covers the tree the daemon runs from: dist/ from tsc output and from the bin\'s bundle, the sources under tsx', () => {
    const repo = path.resolve(import.meta.dirname, '..');
    expect(CODE_ROOT).toBe(repo);
    expect(codeRootAbove(path.join(repo, 'dist', 'host', 'measure'))).toBe(path.join(repo, 'dist'));
    // The bundle (scripts/bundle.mjs) sits in dist/host/bundle/, so it is itself measured with the rest.
    expect(codeRootAbove(path.join(repo, 'dist', 'host', 'bundle'))).toBe(path.join(repo, 'dist'));
  });

  it('the compiled runtime loads its .mjs code (sandbox worker, capability worker modules, validator) from the measured tree; its worker is the CommonJS bundle', async () => {
    // Before, a daemon run from dist/ loaded these from the sources, outside its code digest.
    const repo = path.resolve(import.meta.dirname, '..');
    const dist = path.join(repo, 'dist');
    const compiled = (await import(pathToFileURL(path.join(dist, 'host', 'runtime', 'assets.js')).href)) as typeof import('../host/runtime/assets.js');
    for (const rel of ['host/runtime/worker.mjs', 'host/boundary/validate.mjs', 'host/capabilities/logging/worker.mjs', 'host/runtime/transpile.child.mjs']) {
      expect(compiled.assetPath(rel)).toBe(path.join(dist, rel));
      expect(existsSync(compiled.assetPath(rel)), `${rel} is copied into dist/ by the build`).toBe(true);
    }
    expect(compiled.assetPath('guests/hello/dist/hello.wasm')).toBe(path.join(repo, 'guests', 'hello', 'dist', 'hello.wasm'));
    // The compiled pool spawns the CommonJS bundle of the worker (scripts/bundle.mjs), which is in dist/ too,
    // and which holds every capability worker module: its one `import()` is the fallback for a module it
    // does not hold (a test's), so a spare never starts Node's ES module loader.
    const pool = (await import(pathToFileURL(path.join(dist, 'host', 'runtime', 'sandbox', 'pool.js')).href)) as typeof import('../host/runtime/sandbox/pool.js');
    const bundle = path.join(dist, 'host', 'runtime', 'worker.bundle.cjs');
    expect(pool.workerEntry()).toBe(bundle);
    const text = readFileSync(bundle, 'utf8');
    expect(text.match(/\bimport\(/g)).toHaveLength(1);
    for (const cap of ['clocks', 'exit', 'filesystem', 'http', 'logging', 'random', 'stdio']) expect(text).toContain(`at("host/capabilities/${cap}/worker.mjs")`);
    // Under tsx (these tests), the sources are the tree, as the code digest says.
    const { assetPath } = await import('../host/runtime/assets.js');
    expect(assetPath('host/runtime/worker.mjs')).toBe(path.join(repo, 'host', 'runtime', 'worker.mjs'));
    const { workerEntry } = await import('../host/runtime/sandbox/pool.js');
    expect(workerEntry()).toBe(path.join(repo, 'host', 'runtime', 'worker.mjs'));
  });
});
