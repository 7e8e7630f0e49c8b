/**
 * The API front ends in a child process, for the reliability tests (A5, A7, H9): the daemon's own
 * composition (`composeServices`: file key backend, manual provisioning, the real module runtime, the
 * real workload sockets and management routes) and the management app, each on its Unix socket through
 * `serveOnUnixSocket`, with shortened timeouts so slowloris cases end in seconds. A second management
 * listener keeps the shipped limits (`DEFAULT_HTTP_LIMITS`), so the defaults are tested too.
 *
 * Run as `node --import tsx api-server.ts HOME '<limits json>'`. Prints one JSON line when ready:
 * `{"ready":true,"pid",...paths,"modules":{"name":{"socket","genid"}}}`. Errors go to stderr (pino, level
 * error): an "unhandled error in API handler" there is a finding. Stops on SIGTERM.
 */
import 'reflect-metadata'; // @peculiar/x509 (tsyringe) needs it before its first import
import path from 'node:path';
import { MAX_FAULTS_PER_MINUTE } from '../../host/daemon/last-resort.js';
import { randomBytes } from 'node:crypto';
import pino from 'pino';
import { parseConfigText } from '../../host/config/load.js';
import { createLogger } from '../../host/log.js';
import { composeServices } from '../../host/daemon/services.js';
import { managementApp } from '../../host/api/management/app.js';
import { DEFAULT_HTTP_LIMITS, MAX_MGMT_CONNECTIONS, serveOnUnixSocket, type HttpLimits } from '../../host/api/serve.js';
import type { DaemonControl, ReloadResult } from '../../host/api/management/control.js';
import type { LogLevel } from '../../host/config/schema.js';

const [home, limitsJson] = process.argv.slice(2);
if (!home) throw new Error('usage: api-server.ts HOME [limits-json]');
const limits: HttpLimits = { ...DEFAULT_HTTP_LIMITS, ...(limitsJson ? (JSON.parse(limitsJson) as Partial<HttpLimits>) : {}) };

const deviceKey = randomBytes(32).toString('base64');
const text = [
  '[provisioning]',
  'source = "manual"',
  `connection_string = "HostName=hub.example;DeviceId=dev1;SharedAccessKey=${deviceKey}"`,
  '[runtime]',
  '',
].join('\n');
const { config } = parseConfigText(text, 'api-server', { EDGEWARD_HOME: home } as NodeJS.ProcessEnv);
const logger = createLogger('error', [pino.destination(2)]);
const services = await composeServices({ config, logger, httpLimits: limits });

/** The daemon side of the management API: real status and log level; restart and reload are counted, not done. */
let level: LogLevel = 'error';
const control: DaemonControl = {
  version: 'reliability',
  jcoVersion: 'n/a',
  provisioningType: 'manual.device_connection_string',
  logFile: path.join(home, 'daemon.log'),
  stopping: false,
  async status() {
    const modules = await services.runtime.list();
    return {
      pid: process.pid, version: 'reliability', uptimeSeconds: Math.round(process.uptime()), stateDir: config.state_dir, configSource: 'api-server',
      logLevel: level, managementUri: 'unix:///', services: await services.status(), modules: { total: modules.length, running: 0, starting: false },
      faults: { uncaughtExceptions: 0, unhandledRejections: 0, maxPerMinute: MAX_FAULTS_PER_MINUTE },
    };
  },
  setLogLevel(l) {
    level = l;
  },
  async reload(): Promise<ReloadResult> {
    return { applied: [], restartRequired: [], message: 'nothing to reload' };
  },
  requestRestart() {},
  async reprovision() {},
};
const app = managementApp({ daemon: control, runtime: services.runtime, native: services.native, logger, extra: services.managementRoutes });
const mgmt = await serveOnUnixSocket(app, path.join(home, 'run', 'mgmt.sock'), 0o660, MAX_MGMT_CONNECTIONS, limits);
const mgmtDefault = await serveOnUnixSocket(app, path.join(home, 'run', 'mgmt-default.sock'), 0o660, MAX_MGMT_CONNECTIONS, DEFAULT_HTTP_LIMITS);

const modules: Record<string, { socket: string; genid: string }> = {};
for (const name of ['flood', 'calm', 'fuzz']) {
  const id = await services.native.register(name);
  modules[name] = { socket: services.workload.socketPathFor(name), genid: id.generationId };
}

let stopping = false;
process.on('SIGTERM', () => {
  if (stopping) return;
  stopping = true;
  void (async () => {
    await mgmt.close();
    await mgmtDefault.close();
    await services.close();
    process.exit(0);
  })();
});

process.stdout.write(`${JSON.stringify({
  ready: true,
  pid: process.pid,
  limits,
  management: mgmt.path,
  managementDefault: mgmtDefault.path,
  sharedWorkload: path.join(home, 'run', 'workload.sock'),
  modules,
})}\n`);
