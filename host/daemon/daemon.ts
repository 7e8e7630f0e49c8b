/**
 * The daemon: bootstraps from the config, holds the state directory, composes the services and serves
 * the management API. `run()` resolves when the daemon has stopped (SIGTERM/SIGINT) with exit code 0.
 */
import path from 'node:path';
import { promises as fs } from 'node:fs';
import pino from 'pino';
import type { Config, LogLevel } from '../config/schema.js';
import { configToToml, loadConfig, redactConfig, type LoadedConfig } from '../config/load.js';
import { socketPathOf } from '../config/paths.js';
import { acquireStateLock, ensureSubdir, prepareStateDir, reconcileStateDir, type StateLock } from '../state/dir.js';
import { writeFileAtomic } from '../state/atomic.js';
import { createLogger, type Logger } from '../log.js';
import { managementApp } from '../api/management/app.js';
import { serveOnListenUri, sweepBindDirs, type UdsServer } from '../api/serve.js';
import { activatedSocketFor } from '../api/socket-activation.js';
import { RuntimeError } from '../runtime/types.js';
import type { ModuleRuntime } from '../runtime/types.js';
import { EDGEWARD_VERSION, JCO_VERSION } from '../version.js';
import type { DaemonControl, DaemonStatus, ReloadResult, ServiceStatus } from '../api/management/control.js';
import { composeServices, type Services } from './services.js';
import { LastResort } from './last-resort.js';
import type { Capability } from '../runtime/index.js';
import { DAEMON_LOG_FILE, daemonLogPath, daemonRecordPath, effectiveConfigPath, startErrorPath, type DaemonRecord, type StartFailure } from './paths.js';
import { preflight } from './preflight.js';
import { describeStartError, exitCodeFor } from './failure.js';

export interface DaemonOptions {
  /** Capabilities beyond the daemon's own (tests register faulty ones; the CLI passes none). */
  capabilities?: readonly Capability[];
}

/** The daemon log is rotated at start beyond this size. */
const LOG_ROTATE_BYTES = 10 * 1024 * 1024;

export class Daemon implements DaemonControl {
  readonly version = EDGEWARD_VERSION;
  readonly jcoVersion = JCO_VERSION;
  stopping = false;
  private loaded!: LoadedConfig;
  private logger!: Logger;
  private lock?: StateLock;
  private mgmt?: UdsServer;
  private services?: Services;
  private startedAt = Date.now();
  private restartPending = false;
  private modulesStarting?: Promise<void>;
  private done!: Promise<number>;
  private finish!: (code: number) => void;
  /** True once start() has finished bootstrapping (the last-resort policy exits before that). */
  private serving = false;
  private readonly lastResort = new LastResort({
    logger: () => this.logger,
    notIntact: () => (!this.serving ? 'the daemon was starting' : this.stopping ? 'the daemon was stopping' : this.restartPending ? 'the daemon was restarting' : undefined),
    onFault: (f) => this.services?.runtime.recordDaemonEvent('daemon-fault', `${f.kind} caught (${f.name}); the daemon keeps serving`),
  });
  private uninstallLastResort?: () => void;

  constructor(private readonly initial: LoadedConfig, private readonly opts: DaemonOptions = {}) {}

  get config(): Config {
    return this.loaded.config;
  }
  get logFile(): string {
    return daemonLogPath(this.config.state_dir);
  }
  get provisioningType(): string {
    const p = this.config.provisioning;
    if (p.source === 'manual') return 'connection_string' in p ? 'manual.device_connection_string' : `manual.${p.authentication.method}`;
    if (p.source === 'dps') return `dps.${p.attestation.method}`;
    return 'none';
  }
  get runtime(): ModuleRuntime {
    if (!this.services) throw new Error('daemon not started');
    return this.services.runtime;
  }

  /** Start everything; resolves once the management socket is accepting requests. */
  async start(): Promise<void> {
    this.done = new Promise((r) => (this.finish = r));
    this.uninstallLastResort = this.lastResort.install();
    await this.bootstrap(this.initial);
    this.serving = true;
  }

  /** Resolves with the exit code once the daemon has stopped. */
  wait(): Promise<number> {
    return this.done;
  }

  private async bootstrap(loaded: LoadedConfig): Promise<void> {
    this.loaded = loaded;
    const { config } = loaded;
    await preflight(loaded);
    await prepareStateDir(config.state_dir);
    this.lock ??= await acquireStateLock(config.state_dir);
    const swept = await reconcileStateDir(config.state_dir);
    const logDir = await ensureSubdir(config.state_dir, 'logs');
    await rotateIfLarge(path.join(logDir, DAEMON_LOG_FILE));
    this.logger ??= createLogger(config.log.level, [await consoleStream(), pino.destination({ dest: path.join(logDir, DAEMON_LOG_FILE), mkdir: true, sync: false, mode: 0o600 })]);
    this.logger.level = config.log.level;
    this.logger.info({ version: this.version, source: loaded.source, stateDir: config.state_dir }, 'edgeward starting');
    if (swept.length > 0) this.logger.warn({ files: swept }, 'removed temp files left by an interrupted write');
    // The setting's name is logged as `setting` (REDACT_PATHS redacts `key` fields: values, never names).
    for (const setting of loaded.ignored) this.logger.warn({ setting }, 'config key is an IoT Edge setting with no meaning for Edgeward; ignored (remove it, or see "edgeward config import" for what each key becomes)');
    await writeFileAtomic(effectiveConfigPath(config.state_dir), configToToml(config));
    // Nothing binds yet (a restart has torn its sockets down): bind directories left here are a killed daemon's.
    // [connect] holds the socket paths even where [listen] takes systemd-passed sockets (fd://).
    const workloadDir = path.dirname(socketPathOf(config.connect.workload_uri));
    const bindLeftovers = await sweepBindDirs([path.dirname(socketPathOf(config.connect.management_uri)), workloadDir, path.join(workloadDir, 'mnt')]);
    if (bindLeftovers.length > 0) this.logger.warn({ dirs: bindLeftovers }, 'removed socket bind directories left by a killed daemon');
    // systemd-passed sockets named in [listen] must all be there before anything is served.
    for (const uri of [config.listen.management_uri, config.listen.workload_uri]) if (uri.startsWith('fd://')) activatedSocketFor(uri);
    this.services = await composeServices({ config, logger: this.logger, source: loaded.source, capabilities: this.opts.capabilities });
    this.services.runtime.recordDaemonEvent('config-applied', `config from ${loaded.source} applied at ${this.serving ? 'restart' : 'start'} (provisioning ${this.provisioningType}, module signatures ${config.modules.signature_policy}, log level ${config.log.level})`);
    const app = managementApp({ daemon: this, runtime: this.services.runtime, native: this.services.native, logger: this.logger, extra: this.services.managementRoutes });
    this.mgmt = await serveOnListenUri(app, config.listen.management_uri, { mode: 0o660 });
    const record: DaemonRecord = { pid: process.pid, managementUri: config.connect.management_uri };
    await writeFileAtomic(daemonRecordPath(config.state_dir), JSON.stringify(record) + '\n');
    await fs.rm(startErrorPath(config.state_dir), { force: true });
    // Last before serving: tests and supervisors take this line as "started".
    this.logger.info({ socket: this.mgmt.path }, 'management API listening');
    // Modules start after the API answers: a first start transpiles components for seconds, and
    // `edgeward system status` should say "running, modules starting" meanwhile, not "down".
    const services = this.services;
    this.modulesStarting = services
      .startModules()
      .then(() => this.logger.info('modules started'))
      .catch((err: unknown) => this.logger.error({ err }, 'starting modules failed'))
      .finally(() => {
        if (this.services === services) this.modulesStarting = undefined;
      });
  }

  private async teardown(): Promise<void> {
    await this.modulesStarting; // never tear down under a deployment in progress
    await this.services?.closeStreams().catch((err) => this.logger.warn({ err }, 'closing event streams'));
    await this.mgmt?.close().catch((err) => this.logger.warn({ err }, 'closing management socket'));
    this.mgmt = undefined;
    await this.services?.close().catch((err) => this.logger.warn({ err }, 'closing services'));
    this.services = undefined;
  }

  /** Graceful stop: modules stopped, sockets removed, state flushed, lock released. */
  async stop(reason: string): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.logger.info({ reason }, 'edgeward stopping');
    await this.teardown();
    await fs.rm(daemonRecordPath(this.config.state_dir), { force: true });
    await this.lock?.release();
    this.lock = undefined;
    this.logger.info('edgeward stopped');
    await new Promise<void>((r) => this.logger.flush(() => r()));
    this.uninstallLastResort?.();
    this.finish(0);
  }

  async status(): Promise<DaemonStatus> {
    const modules = await this.runtime.list();
    const services: ServiceStatus[] = [
      { name: 'edgeward', status: 'running', detail: `pid ${process.pid}, up ${Math.round((Date.now() - this.startedAt) / 1000)} s` },
      ...(this.services ? await this.services.status() : []),
    ];
    return {
      pid: process.pid,
      version: this.version,
      uptimeSeconds: Math.round((Date.now() - this.startedAt) / 1000),
      stateDir: this.config.state_dir,
      configSource: this.loaded.source,
      logLevel: this.logger.level as LogLevel,
      managementUri: this.config.connect.management_uri,
      services,
      modules: { total: modules.length, running: modules.filter((m) => m.status.runtimeStatus.status === 'running').length, starting: this.modulesStarting !== undefined },
      faults: this.lastResort.status(),
    };
  }

  async reprovision(): Promise<void> {
    if (!this.services) throw new RuntimeError('conflict', 'the daemon is restarting; try again');
    await this.services.identity.reprovision('requested through the management API');
    this.requestRestart();
  }

  setLogLevel(level: LogLevel): void {
    this.logger.level = level;
    this.logger.info({ newLevel: level }, 'log level changed');
  }

  /**
   * Re-read the effective config from the state directory (written by `edgeward config apply`). The log
   * level applies at once; settings that shape sockets, keys or state need `edgeward system restart`.
   */
  async reload(): Promise<ReloadResult> {
    const next = await loadConfig(effectiveConfigPath(this.config.state_dir));
    const before = redactConfig(this.config);
    const after = redactConfig(next.config);
    const changed = Object.keys({ ...before, ...after }).filter((k) => JSON.stringify(before[k]) !== JSON.stringify(after[k]));
    const applied: string[] = [];
    const restartRequired: string[] = [];
    for (const key of changed) {
      if (key === 'log') {
        this.setLogLevel(next.config.log.level);
        applied.push('log.level');
      } else restartRequired.push(key);
    }
    const source = this.loaded.source;
    this.loaded = { ...next, source, config: { ...this.config, log: next.config.log } };
    this.pendingConfig = restartRequired.length > 0 ? next : undefined;
    const message = restartRequired.length
      ? `applied ${applied.join(', ') || 'nothing'}; run "edgeward system restart" for: ${restartRequired.join(', ')}`
      : changed.length ? `applied ${applied.join(', ')}` : 'no changes';
    this.logger.info({ applied, restartRequired }, 'config reloaded');
    if (changed.length > 0) this.services?.runtime.recordDaemonEvent('config-applied', `config reloaded from the state directory: ${message}`);
    return { applied, restartRequired, message };
  }
  private pendingConfig?: LoadedConfig;

  /** In-process restart: stop every service and start again on the newest config. */
  requestRestart(): void {
    if (this.restartPending || this.stopping) return;
    this.restartPending = true;
    setTimeout(() => void this.restartNow(), 50);
  }

  private async restartNow(): Promise<void> {
    try {
      this.logger.info('edgeward restarting');
      const next = this.pendingConfig ?? (await loadConfig(effectiveConfigPath(this.config.state_dir)));
      this.pendingConfig = undefined;
      await this.teardown();
      if (next.config.state_dir !== this.config.state_dir) {
        await this.lock?.release();
        this.lock = undefined;
      }
      this.startedAt = Date.now();
      await this.bootstrap({ ...next, source: this.loaded.source });
      this.logger.info('edgeward restarted');
    } catch (err) {
      this.logger.fatal({ err }, 'restart failed; stopping');
      await this.recordStartFailure(err);
      await this.stop('restart failed');
    } finally {
      this.restartPending = false;
    }
  }

  /** `edgeward system restart` reads this to show why the daemon did not come back. */
  private async recordStartFailure(err: unknown): Promise<void> {
    const failure: StartFailure = { time: new Date().toISOString(), message: describeStartError(err), exitCode: exitCodeFor(err) };
    await writeFileAtomic(startErrorPath(this.config.state_dir), JSON.stringify(failure) + '\n').catch((e: unknown) => this.logger.warn({ err: e }, 'cannot record the start failure'));
  }
}

async function rotateIfLarge(file: string): Promise<void> {
  const st = await fs.stat(file).catch(() => undefined);
  if (st && st.size > LOG_ROTATE_BYTES) await fs.rename(file, file + '.1');
}

/**
 * Humans at a terminal get readable lines; everything else (systemd, pipes, tests) gets JSON. pino-pretty
 * (~8 MiB of RSS with its dependencies) is loaded only for a terminal.
 */
async function consoleStream(): Promise<pino.DestinationStream> {
  if (!process.stdout.isTTY) return pino.destination(1);
  const { default: pinoPretty } = await import('pino-pretty');
  return pinoPretty({ colorize: true, translateTime: 'SYS:HH:MM:ss', ignore: 'pid,hostname' });
}
