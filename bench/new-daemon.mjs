/**
 * One start of a module in a NEW process, as a new daemon makes it (bench/runtime.ts, issue 14's "new
 * daemon" figures): the daemon's compiled code from dist/, its V8 flag (host/cli/v8-flags.ts), real
 * file-backend key, identity and certificate services, a runtime over `stateDir` with its transpile cache
 * sealed as the daemon seals it, then deploy → first
 * invoke answered, timed. Nothing in this process has run before: no JIT-warm code, no spare worker, no V8
 * compiled-wasm or glue code cache, a cold transpiler process. An empty `stateDir` is the empty-cache start;
 * a second run over the same one finds the transpile cache (and the keys and certificates) on disk.
 *
 * usage: node bench/new-daemon.mjs <stateDir> <module spec JSON> <method> [<{"runs","gapMs","method"} JSON>]
 * prints one line: {"ms": …, "phases": {…}}, and with the last argument the restarts in that daemon once it
 * runs (`backToBack`, `spaced`: ms, phases, cpuMs per restart): what the compiled daemon does, with its
 * CommonJS worker (scripts/bundle.mjs), where the bench's own process runs worker.mjs under tsx.
 */
import v8 from 'node:v8';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

if (process.env.EDGEWARD_V8_DEFAULTS !== '1') v8.setFlagsFromString('--optimize-for-size'); // as the daemon

const DIST = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'dist');
const load = (p) => import(path.join(DIST, p));
const [stateDir, specJson, method, restartsJson] = process.argv.slice(2);
const { ComponentRuntime } = await load('host/runtime/runtime.js');
const { silentLogger } = await load('host/log.js');
const { parseConfigText } = await load('host/config/load.js');
const { IdentityService } = await load('host/identity/identity.js');
const { CertService } = await load('hsm/certs/service.js');
const { openKeyService, DAEMON_CALLER } = await load('hsm/keys/index.js');
const { workloadIdentityCapability } = await load('host/capabilities/workload-identity/index.js');
const { edgewardCapabilities } = await load('host/capabilities/index.js');

// The device's identity, kept in stateDir so a second run is the same device (as a restarted daemon).
const idDir = path.join(stateDir, 'identity');
const keyFile = path.join(stateDir, 'device-key');
if (!existsSync(keyFile)) writeFileSync(keyFile, randomBytes(32).toString('base64'));
const text = `[provisioning]\nsource = "manual"\nconnection_string = "HostName=hub.example;DeviceId=bench;SharedAccessKey=${readFileSync(keyFile, 'utf8')}"\n`;
const { config } = parseConfigText(text, 'bench', { EDGEWARD_HOME: idDir });
const logger = silentLogger();
const keys = await openKeyService({ config, stateDir: idDir, logger });
const identity = await IdentityService.open({ config, keys, logger });
const certs = await CertService.open({ config, stateDir: idDir, keys, logger, deviceId: 'bench', hubHostname: 'hub.example' });
// The transpile cache sealed by a key of the key service, as the daemon seals it (daemon/services.ts
// openSealedRuntime): the glue's code cache is kept on disk only where it is.
const sealKey = await keys.createSecretKey(DAEMON_CALLER, { id: 'runtime-cache-seal' }, 'hmac-sha256');
const cacheSeal = { mac: async (data) => new Uint8Array(await keys.sign(DAEMON_CALLER, sealKey, 'hmac-sha256', Buffer.from(data))) };
const rt = await ComponentRuntime.open({
  stateDir, logger, cacheSeal, limits: { memory_mib: 64, call_timeout_ms: 10_000, max_value_bytes: 1024 * 1024 },
  capabilities: [...edgewardCapabilities(), workloadIdentityCapability({ identity, certs, keys })],
});
const spec = JSON.parse(specJson);
const t0 = performance.now();
await rt.deploy([spec]);
const r = await rt.invoke(spec.name, method, { name: 'bench' });
const ms = performance.now() - t0;
if (r.status !== 200) throw new Error(`invoke failed: ${JSON.stringify(r)}`);
const out = { ms, phases: rt.startPhases(spec.name) };
if (restartsJson) {
  // Restarts in this now running daemon: restart → first invoke answered, `runs` back to back, then `runs`
  // `gapMs` apart (the spare booted), after two unmeasured ones; with the process's CPU per restart.
  const { runs, gapMs, method: m } = JSON.parse(restartsJson);
  const series = async (gap) => {
    const f = { ms: [], phases: [] };
    const c0 = process.cpuUsage();
    for (let i = 0; i < runs; i++) {
      if (gap > 0) await new Promise((r) => setTimeout(r, gap));
      const t = performance.now();
      await rt.restart(spec.name);
      await rt.invoke(spec.name, m, null);
      f.ms.push(performance.now() - t);
      f.phases.push(rt.startPhases(spec.name));
    }
    const c = process.cpuUsage(c0);
    return { ...f, cpuMs: (c.user + c.system) / 1000 / runs };
  };
  await series(0).then(() => undefined);
  out.backToBack = await series(0);
  out.spaced = await series(gapMs);
}
// A daemon keeps running: the rehearsed code cache of the glue is written to the sealed cache ~0.1–0.2 s
// after a first start (glue-code-store.ts). Wait for it (not timed) so the next run finds what a daemon
// that ran before leaves.
const codeCache = path.join(stateDir, 'cache', rt.registration(spec.name).digest.slice(7), 'glue.v8cache.mac');
for (const end = Date.now() + 5000; !existsSync(codeCache) && Date.now() < end; ) await new Promise((r) => setTimeout(r, 20));
process.stdout.write(`${JSON.stringify(out)}\n`);
await rt.close();
await keys.close?.();
process.exit(0);
