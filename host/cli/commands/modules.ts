/**
 * Module commands, as `iotedge` has them (reference §5): `edgeward deploy FILE`, `list [--json]`,
 * `logs MODULE [-f] [--tail N] [--since] [--until]`, `restart MODULE`, `start|stop|remove MODULE`,
 * `invoke MODULE METHOD [PAYLOAD]`. The daemon does the work through the management API.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import type { MgmtClient } from '../client.js';
import { action, table } from '../output.js';
import type { DeployResult, InvokeResult, ModuleDetails } from '../../runtime/types.js';
import { codeUnitOrder } from '../../../hsm/support/order.js';

type GetClient = () => Promise<MgmtClient>;

const seg = (name: string) => encodeURIComponent(name);

/** Docker-style age: "Less than a second", "5 seconds", "About a minute", "3 hours", "2 days". */
export function humanAge(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 1) return 'Less than a second';
  if (s < 60) return s === 1 ? '1 second' : `${s} seconds`;
  const m = Math.floor(s / 60);
  if (m === 1) return 'About a minute';
  if (m < 60) return `${m} minutes`;
  const h = Math.floor(m / 60);
  if (h === 1) return 'About an hour';
  if (h < 48) return `${h} hours`;
  return `${Math.floor(h / 24)} days`;
}

/** DESCRIPTION column of `iotedge list`: "Up 3 hours", "Stopped 2 minutes ago", "Failed (1) 5 minutes ago". */
export function describeModule(m: ModuleDetails, now = Date.now()): string {
  const st = m.status;
  const since = (iso?: string) => (iso ? humanAge(now - Date.parse(iso)) : '');
  // A native module: Edgeward knows its registration, not its process.
  const registeredAt = m.type === 'native' ? (m.edgeward as { registeredAt?: string } | undefined)?.registeredAt : undefined;
  if (m.type === 'native') return `Native, not run by Edgeward${registeredAt ? `; registered ${since(registeredAt)} ago` : ''}`;
  switch (st.runtimeStatus.status) {
    case 'running':
      return `Up ${since(st.startTime)}`.trimEnd();
    case 'stopped':
      return st.exitStatus ? `Stopped ${since(st.exitStatus.exitTime)} ago` : 'Stopped';
    case 'failed':
    case 'dead': {
      const word = st.runtimeStatus.status === 'dead' ? 'Dead' : st.runtimeStatus.description?.startsWith('backoff') ? 'Backoff' : 'Failed';
      return st.exitStatus ? `${word} (${st.exitStatus.statusCode}) ${since(st.exitStatus.exitTime)} ago` : word;
    }
    default:
      return 'Unknown';
  }
}

export function formatList(modules: ModuleDetails[], now = Date.now()): string {
  const rows = [['NAME', 'STATUS', 'DESCRIPTION', 'RESTARTS', 'CRASHES', 'Config']];
  for (const m of [...modules].sort((a, b) => codeUnitOrder(a.name, b.name))) {
    const e = (m.edgeward ?? {}) as { restartCount?: number; crashCount?: number; generationId?: string };
    if (m.type === 'native') rows.push([m.name, m.status.runtimeStatus.status, describeModule(m, now), '-', '-', `native (generation ${e.generationId ?? '?'})`]);
    else rows.push([m.name, m.status.runtimeStatus.status, describeModule(m, now), String(e.restartCount ?? 0), String(e.crashCount ?? 0), m.config.settings.image]);
  }
  return table(rows);
}

/**
 * Resolve relative `settings.image` and `signature.file`/`signature.signer` paths against the manifest's
 * directory (the daemon's cwd differs). An inline PEM signer is left as it is.
 */
export function resolveManifestImages(doc: unknown, baseDir: string): unknown {
  const d = doc as Record<string, any>;
  const desired = d?.modulesContent?.['$edgeAgent']?.['properties.desired'] ?? d?.['properties.desired'] ?? d;
  const modules = desired?.modules;
  const relative = (p: unknown): p is string => typeof p === 'string' && !/^[a-z]+:/.test(p) && !path.isAbsolute(p) && !p.trimStart().startsWith('-----BEGIN ');
  if (modules && typeof modules === 'object') {
    for (const m of Object.values(modules as Record<string, { settings?: { image?: unknown }; signature?: { file?: unknown; signer?: unknown } }>)) {
      const image = m?.settings?.image;
      if (relative(image)) m.settings!.image = path.resolve(baseDir, image);
      const sig = m?.signature;
      if (sig && typeof sig === 'object') {
        if (relative(sig.file)) sig.file = path.resolve(baseDir, sig.file);
        if (relative(sig.signer)) sig.signer = path.resolve(baseDir, sig.signer);
      }
    }
  }
  return doc;
}

/**
 * A CLI payload: JSON, or with `--text` the text as a JSON string. Text that is not JSON is refused
 * without `--text` (it used to become a JSON string silently: `invoke m f 12ab` sent "12ab").
 */
export function parsePayload(raw: string | undefined, text = false): unknown {
  if (raw === undefined) return null;
  if (text) return raw;
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    throw new Error(`payload is not JSON: ${JSON.stringify(raw.slice(0, 60))}; quote a string as JSON ('"${raw.slice(0, 20)}"') or pass --text to send it as a string`);
  }
}

/** A direct method's error answer in one line: `module "m" answered f with guest-error (422): <message>`. */
export function describeInvokeError(name: string, method: string, r: InvokeResult): string {
  const p = r.payload as { code?: unknown; message?: unknown } | null;
  const code = p && typeof p === 'object' && typeof p.code === 'string' ? p.code : 'an error';
  const message = p && typeof p === 'object' && typeof p.message === 'string' ? p.message : JSON.stringify(r.payload);
  return `module "${name}" answered ${method} with ${code} (${r.status}): ${message}`;
}

/** Registered modules a manifest does not name: applying it removes them (IoT Edge: the manifest is the whole set). */
async function notInManifest(client: MgmtClient, doc: unknown): Promise<string[]> {
  const d = doc as Record<string, any> | null;
  const desired = d?.modulesContent?.['$edgeAgent']?.['properties.desired'] ?? d?.['properties.desired'] ?? d;
  const named = desired && typeof desired.modules === 'object' && desired.modules !== null ? Object.keys(desired.modules as object) : [];
  const { modules } = await client.request<{ modules: ModuleDetails[] }>('GET', '/modules');
  // Native modules are listed too, but a deployment never removes them (they are registered, not deployed).
  return modules.filter((m) => m.type !== 'native').map((m) => m.name).filter((n) => !named.includes(n));
}

/** `deploy <file>`: PUT the manifest (images resolved against its directory); exit 1 if a module failed. */
async function deployManifest(file: string, getClient: GetClient): Promise<number> {
  let doc: unknown;
  try {
    doc = JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    throw new Error(`cannot read manifest ${file}: ${(err as Error).message}`);
  }
  const client = await getClient();
  const removing = await notInManifest(client, doc);
  if (removing.length) process.stdout.write(`removing (not in the manifest, which is the whole set): ${removing.join(', ')}\n`);
  const r = await client.request<DeployResult>('PUT', '/modules', resolveManifestImages(doc, path.dirname(path.resolve(file))));
  for (const [label, names] of [['created', r.created], ['updated', r.updated], ['removed', r.removed], ['unchanged', r.unchanged]] as const) {
    if (names.length) process.stdout.write(`${label}: ${names.join(', ')}\n`);
  }
  for (const f of r.failed) process.stderr.write(`failed: ${f.module}: ${f.message}\n`);
  return r.failed.length ? 1 : 0;
}

export function registerModuleCommands(program: Command, getClient: GetClient): void {
  program
    .command('deploy')
    .description('apply a deployment manifest (IoT Edge $edgeAgent shape): create, update and remove modules to match it')
    .argument('<file>', 'manifest JSON')
    .action(action((file: string) => deployManifest(file, getClient)));

  program
    .command('list')
    .description('list modules: NAME STATUS DESCRIPTION RESTARTS CRASHES Config')
    .option('--json', 'machine-readable output')
    .action(
      action(async (opts: { json?: boolean }) => {
        const { modules } = await (await getClient()).request<{ modules: ModuleDetails[] }>('GET', '/modules');
        process.stdout.write((opts.json ? JSON.stringify(modules, null, 2) : formatList(modules)) + '\n');
      }),
    );

  program
    .command('logs')
    .description("print a module's log")
    .argument('<module>')
    .option('-f, --follow', 'keep printing new lines')
    .option('--tail <n>', 'lines from the end, or "all"', 'all')
    .option('--since <time>', 'only lines since: duration ("1 day", "90m"), RFC 3339 or unix seconds')
    .option('--until <time>', 'only lines until')
    .action(
      action(async (name: string, opts: { follow?: boolean; tail: string; since?: string; until?: string }) => {
        const q = new URLSearchParams({ tail: opts.tail });
        if (opts.follow) q.set('follow', 'true');
        if (opts.since) q.set('since', opts.since);
        if (opts.until) q.set('until', opts.until);
        await (await getClient()).stream(`/modules/${seg(name)}/logs?${q}`, (c) => process.stdout.write(c));
      }),
    );

  registerLifecycleCommands(program, getClient);
}

/** start, stop, restart, remove, invoke: what changes one module. */
function registerLifecycleCommands(program: Command, getClient: GetClient): void {
  for (const [verb, past, what] of [['start', 'Started', 'start a stopped module'], ['stop', 'Stopped', 'stop a module (desired status stopped)'], ['restart', 'Restarted', 'stop then start a module']] as const) {
    program
      .command(verb)
      .description(what)
      .argument('<module>')
      .action(
        action(async (name: string) => {
          await (await getClient()).request('POST', `/modules/${seg(name)}/${verb}`);
          process.stdout.write(`${past} ${name}\n`);
        }),
      );
  }

  program
    .command('remove')
    .description('stop and unregister a module')
    .argument('<module>')
    .action(
      action(async (name: string) => {
        await (await getClient()).request('DELETE', `/modules/${seg(name)}`);
        process.stdout.write(`Removed ${name}\n`);
      }),
    );

  program
    .command('invoke')
    .description("call a module's direct method; PAYLOAD is JSON (or any text with --text)")
    .argument('<module>')
    .argument('<method>')
    .argument('[payload]')
    .option('--json', 'print the whole {"status","payload"} answer')
    .option('--text', 'send PAYLOAD as a JSON string, whatever it contains')
    .action(
      action(async (name: string, method: string, payload: string | undefined, opts: { json?: boolean; text?: boolean }) => {
        const body = { methodName: method, payload: parsePayload(payload, opts.text === true) };
        const r = await (await getClient()).request<InvokeResult>('POST', `/modules/${seg(name)}/invoke`, body);
        if (opts.json) process.stdout.write(JSON.stringify(r) + '\n');
        else if (r.status >= 400) process.stderr.write(`error: ${describeInvokeError(name, method, r)}\n`);
        else process.stdout.write((typeof r.payload === 'string' ? r.payload : JSON.stringify(r.payload)) + '\n');
        return r.status >= 400 ? 1 : 0;
      }),
    );
}
