/**
 * `edgeward check`: preflight checks in the spirit of `iotedge check`. Each check is one small function
 * returning ok / warning / error with a one-line fix; a check whose prerequisite failed is skipped.
 */
import path from 'node:path';
import { promises as fs } from 'node:fs';
import type { Command } from 'commander';
import { ConfigError, configToToml, loadConfig, type LoadedConfig } from '../../config/load.js';
import { checkDirSafe } from '../../state/dir.js';
import { effectiveConfigPath } from '../../daemon/paths.js';
import { NotRunningError } from '../client.js';
import { action } from '../output.js';
import { cliClient, loadCliConfig, runningDaemon, type CliContext } from '../context.js';
import { keyBackendProblems, preflightProblems, signerProblems } from '../../daemon/preflight.js';
import { socketMoved } from './system.js';
import { CONFIG_EXIT_CODE } from '../../config/load.js';

export type CheckResult = 'ok' | 'warning' | 'error' | 'skipped';
export interface CheckOutcome {
  id: string;
  description: string;
  result: CheckResult;
  message?: string;
  fix?: string;
}

/** Clock floor: a device whose clock says earlier than this cannot validate any certificate we issue. */
const CLOCK_FLOOR = Date.parse('2025-01-01T00:00:00Z');
/** A certificate with less than this left is reported (IoT Edge warns at 7 days for the Edge CA). */
const CERT_WARN_MS = 7 * 24 * 3600 * 1000;

type Check = { id: string; description: string; run(s: CheckState): Promise<Omit<CheckOutcome, 'id' | 'description'>> };
interface CheckState {
  ctx: CliContext;
  loaded?: LoadedConfig;
}

const ok = (message?: string) => ({ result: 'ok' as const, message });
const warn = (message: string, fix: string) => ({ result: 'warning' as const, message, fix });
const fail = (message: string, fix: string) => ({ result: 'error' as const, message, fix });
const skip = (message: string) => ({ result: 'skipped' as const, message });

export const CHECKS: Check[] = [
  {
    id: 'config-well-formed',
    description: 'config file is well-formed',
    async run(s) {
      const fix = 'fix the fields named above, then run "edgeward config apply"';
      try {
        s.loaded = await loadCliConfig(s.ctx);
      } catch (err) {
        if (err instanceof ConfigError) return fail(err.message, fix);
        throw err;
      }
      // What the daemon refuses at start (files, unsupported features, signer files); the key backend is its own check.
      const { config, source } = s.loaded;
      const problems = [...(await preflightProblems(config)), ...(await signerProblems(config))];
      if (problems.length > 0) return fail(new ConfigError(source, problems).message, fix);
      return ok(`source: ${source}`);
    },
  },
  {
    id: 'config-up-to-date',
    description: 'config was applied',
    async run(s) {
      if (!s.loaded) return skip('config is not valid');
      const eff = effectiveConfigPath(s.loaded.config.state_dir);
      const text = await fs.readFile(eff, 'utf8').catch(() => undefined);
      if (text === undefined) return warn('no effective config in the state directory yet', 'run "edgeward config apply" or start the daemon');
      const current = (await loadConfig(eff).catch(() => undefined))?.config;
      if (!current || configToToml(current) !== configToToml(s.loaded.config)) return warn(`${eff} differs from ${s.loaded.source}`, 'run "edgeward config apply"');
      return ok();
    },
  },
  {
    id: 'state-dir',
    description: 'state directory is writable with safe permissions',
    async run(s) {
      if (!s.loaded) return skip('config is not valid');
      const dir = s.loaded.config.state_dir;
      try {
        await fs.access(dir);
      } catch {
        return warn(`${dir} does not exist yet`, 'it is created (0700) when the daemon starts');
      }
      try {
        await checkDirSafe(dir);
        const probe = path.join(dir, `.check-${process.pid}.tmp`);
        await fs.writeFile(probe, 'x', { mode: 0o600 });
        await fs.rm(probe);
        return ok(dir);
      } catch (err) {
        return fail((err as Error).message, `run "chmod 700 ${dir}" and make sure this user owns it`);
      }
    },
  },
  {
    id: 'key-store',
    description: 'key store is reachable',
    async run(s) {
      if (!s.loaded) return skip('config is not valid');
      const keys = s.loaded.config.keys;
      if (keys.backend === 'file') return warn('development file key store: not a hardware root of trust', 'use [keys] backend = "pkcs11" or "tpm" on a production device');
      const problems = await keyBackendProblems(s.loaded.config);
      if (problems.length > 0) return fail(new ConfigError(s.loaded.source, problems).message, 'the daemon refuses to start until this is fixed');
      if (keys.backend === 'pkcs11') return ok(`PKCS#11 library ${keys.pkcs11?.library ?? ''}`);
      const tcti = s.loaded.config.tpm?.tcti ?? 'device:/dev/tpmrm0';
      return ok(tcti.startsWith('device') ? tcti.slice('device:'.length) || '/dev/tpmrm0' : `TPM simulator at ${tcti}`);
    },
  },
  {
    id: 'connect-management-uri',
    description: 'management socket answers',
    async run(s) {
      if (!s.loaded && !s.ctx.host && !process.env.EDGEWARD_HOST) return skip('config is not valid');
      try {
        await (await cliClient(s.ctx)).request('GET', '/systeminfo');
        return ok();
      } catch (err) {
        if (!(err instanceof NotRunningError)) return fail((err as Error).message, 'see "edgeward system logs"');
        const running = s.loaded && !s.ctx.host && !process.env.EDGEWARD_HOST ? await runningDaemon(s.loaded.config.state_dir) : undefined;
        if (running && running.managementUri !== s.loaded?.config.connect.management_uri) {
          return fail(socketMoved(running, s.loaded!.config.connect.management_uri), 'run "edgeward system restart" (the CLI follows [connect]; the daemon moves there when it restarts)');
        }
        return warn(err.message, 'start it with "edgeward daemon"');
      }
    },
  },
  {
    id: 'host-local-time',
    description: 'system clock is sane',
    async run() {
      const now = Date.now();
      if (now < CLOCK_FLOOR) return fail(`the clock says ${new Date(now).toISOString()}`, 'set the time (e.g. enable NTP with "timedatectl set-ntp true")');
      return ok(new Date(now).toISOString());
    },
  },
  {
    id: 'certificates-expiry',
    description: 'certificates are not near expiry',
    async run(s) {
      if (!s.loaded) return skip('config is not valid');
      const dir = path.join(s.loaded.config.state_dir, 'certs');
      const names = (await fs.readdir(dir).catch(() => [] as string[])).filter((n) => n.endsWith('.pem'));
      if (names.length === 0) return ok('no certificates issued yet');
      const { parsePemCerts } = await import('../../../hsm/certs/issue.js'); // heavy: x509 only when there are certificates
      const { renewalDue, DEFAULT_RENEW_POLICY } = await import('../../../hsm/certs/renewal.js');
      const problems: string[] = [];
      const notes: string[] = [];
      let worst: 'ok' | 'warning' | 'error' = 'ok';
      const raise = (level: 'warning' | 'error', msg: string) => {
        problems.push(msg);
        if (level === 'error' || worst === 'ok') worst = level;
      };
      for (const name of names) {
        let certs;
        try {
          certs = parsePemCerts(await fs.readFile(path.join(dir, name), 'utf8'));
        } catch (err) {
          raise('error', `${name} cannot be parsed (${(err as Error).message})`);
          continue;
        }
        for (const cert of certs) {
          const left = cert.notAfter.getTime() - Date.now();
          const what = `${name} (${cert.subject})`;
          if (left <= 0) raise('error', `${what} expired ${cert.notAfter.toISOString()}`);
          else if (left < CERT_WARN_MS) raise('warning', `${what} expires ${cert.notAfter.toISOString()}`);
        }
        const ca = s.loaded.config.edge_ca;
        if (name === 'edge-ca.pem' && certs[0] && !('cert' in ca)) {
          const r = ca.auto_renew;
          const due = renewalDue(certs[0].notBefore, certs[0].notAfter, r ? { rotateKey: r.rotate_key, threshold: r.threshold, retry: r.retry } : DEFAULT_RENEW_POLICY);
          notes.push(`Edge CA valid until ${certs[0].notAfter.toISOString()}, renewal due ${due.toISOString()}`);
          if (due.getTime() < Date.now()) raise('warning', `Edge CA renewal was due ${due.toISOString()} and has not happened`);
        }
      }
      if (worst === 'ok') return ok([`${names.length} file(s) valid`, ...notes].join('; '));
      const fix = 'start the daemon so it renews the Edge CA, or replace the file-based certificates';
      return worst === 'error' ? fail(problems.join('; '), fix) : warn(problems.join('; '), fix);
    },
  },
];

export async function runChecks(ctx: CliContext): Promise<CheckOutcome[]> {
  const state: CheckState = { ctx };
  const out: CheckOutcome[] = [];
  for (const check of CHECKS) {
    try {
      out.push({ id: check.id, description: check.description, ...(await check.run(state)) });
    } catch (err) {
      out.push({ id: check.id, description: check.description, result: 'error', message: (err as Error).message, fix: 'report this as a bug' });
    }
  }
  return out;
}

/** Checks whose error means the daemon refuses to start. */
const REFUSING_CHECKS = new Set(['config-well-formed', 'key-store']);

const SYMBOL: Record<CheckResult, string> = { ok: '√', warning: '‼', error: '×', skipped: '-' };
const WORD: Record<CheckResult, string> = { ok: 'OK', warning: 'Warning', error: 'Error', skipped: 'Skipped' };

export function registerCheckCommand(program: Command, ctx: () => CliContext): void {
  program
    .command('check')
    .description('preflight checks: config, state directory, key store, management socket, clock, certificates')
    .option('--json', 'machine-readable output')
    .action(
      action(async (opts: { json?: boolean }) => {
        const outcomes = await runChecks(ctx());
        const count = (r: CheckResult) => outcomes.filter((o) => o.result === r).length;
        if (opts.json) {
          process.stdout.write(JSON.stringify({ checks: outcomes, summary: { ok: count('ok'), warnings: count('warning'), errors: count('error'), skipped: count('skipped') } }, null, 2) + '\n');
        } else {
          const lines = ['Configuration checks', '--------------------'];
          for (const o of outcomes) {
            lines.push(`${SYMBOL[o.result]} ${o.description} - ${WORD[o.result]}${o.result === 'ok' && o.message ? ` (${o.message})` : ''}`);
            if (o.result !== 'ok' && o.message) lines.push(...o.message.split('\n').map((l) => `    ${l}`));
            if (o.fix && o.result !== 'ok') lines.push(`    fix: ${o.fix}`);
          }
          lines.push('', `${count('ok')} check(s) succeeded.`);
          if (count('warning')) lines.push(`${count('warning')} check(s) raised warnings.`);
          if (count('error')) lines.push(`${count('error')} check(s) raised errors.`);
          if (count('skipped')) lines.push(`${count('skipped')} check(s) were skipped due to errors from other checks.`);
          process.stdout.write(lines.join('\n') + '\n');
        }
        // A config the daemon would refuse (its schema, its preflight, its key backend) is exit 2, as for
        // `config apply`; other errors exit 1.
        if (outcomes.some((o) => REFUSING_CHECKS.has(o.id) && o.result === 'error')) return CONFIG_EXIT_CODE;
        return count('error') > 0 ? 1 : 0;
      }),
    );
}
