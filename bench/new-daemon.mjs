/**
 * One start of a module in a NEW process, as a new daemon makes it (bench/runtime.ts, issue 14's "new
 * daemon" figures): the daemon's compiled code from dist/, its V8 flag (host/cli/v8-flags.ts), real
 * file-backend key, identity and certificate services and a runtime over `stateDir`, then deploy → first
 * invoke answered, timed. Nothing in this process has run before: no JIT-warm code, no spare worker, no V8
 * compiled-wasm or glue code cache, a cold transpiler thread. An empty `stateDir` is the empty-cache start;
 * a second run over the same one finds the transpile cache (and the keys and certificates) on disk.
 *
 * usage: node bench/new-daemon.mjs <stateDir> <module spec JSON> <method>
 * prints one line: {"ms": …, "phases": {…}}
 */
import v8 from 'node:v8';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

if (process.env.EDGEWARD_V8_DEFAULTS !== '1') v8.setFlagsFromString('--optimize-for-size'); // as the daemon

const DIST = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'dist');
const load = (p) => import(path.join(DIST, p));
const [stateDir, specJson, method] = process.argv.slice(2);
const { ComponentRuntime } = await load('host/runtime/runtime.js');
const { silentLogger } = await load('host/log.js');
const { parseConfigText } = await load('host/config/load.js');
const { IdentityService } = await load('host/identity/identity.js');
const { CertService } = await load('hsm/certs/service.js');
const { openKeyService } = await load('hsm/keys/index.js');
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
const rt = await ComponentRuntime.open({
  stateDir, logger, limits: { memory_mib: 64, call_timeout_ms: 10_000, max_value_bytes: 1024 * 1024 },
  capabilities: [...edgewardCapabilities(), workloadIdentityCapability({ identity, certs, keys })],
});
const spec = JSON.parse(specJson);
const t0 = performance.now();
await rt.deploy([spec]);
const r = await rt.invoke(spec.name, method, { name: 'bench' });
const ms = performance.now() - t0;
if (r.status !== 200) throw new Error(`invoke failed: ${JSON.stringify(r)}`);
process.stdout.write(`${JSON.stringify({ ms, phases: rt.startPhases(spec.name) })}\n`);
await rt.close();
await keys.close?.();
process.exit(0);
