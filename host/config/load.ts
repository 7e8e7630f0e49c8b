/**
 * Reading a config: TOML (smol-toml) → defaults filled → schema (zod) → `Config`.
 * Every failure is a `ConfigError` naming the file, the field path, what was expected and — for TOML
 * syntax errors — the line; the CLI prints it and exits 2 (never a stack trace).
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse as parseToml, stringify as stringifyToml, TomlError } from 'smol-toml';
import type { z } from 'zod';
import { configSchema, edgeCaBranch, IGNORED_IOT_EDGE_KEYS, PROVISIONING_SOURCES, provisioningBranch, SOCKET_EXAMPLES, type Config, type SocketKey } from './schema.js';
import { edgeCaMethodMessage, ISSUED_EDGE_CA_KEYS } from './unsupported.js';
import { EMBEDDED_DEFAULT_TOML } from './default.js';
import { defaultRunDir, defaultStateDir, edgewardHome, homeConfigFile } from './paths.js';

/** Exit code for a refused config (IoT Edge uses 153 under systemd; the issue asks for 2). */
export const CONFIG_EXIT_CODE = 2;

export class ConfigError extends Error {
  constructor(
    readonly file: string,
    readonly problems: { path: string; message: string }[],
  ) {
    super(`invalid config ${file}:\n` + problems.map((p) => `  ${p.path ? p.path + ': ' : ''}${p.message}`).join('\n'));
    this.name = 'ConfigError';
  }
}

export interface LoadedConfig {
  config: Config;
  /** Where it came from: a path, or "<embedded default>". */
  source: string;
  /** IoT Edge keys present but not meaningful here. */
  ignored: string[];
}

export const EMBEDDED_SOURCE = '<embedded default>';

/**
 * Which config a command uses: `-c FILE` > `$EDGEWARD_CONFIG` > `<home>/config.toml` if present > embedded.
 */
export async function resolveConfigSource(explicit: string | undefined, env = process.env): Promise<string> {
  if (explicit) return path.resolve(explicit);
  if (env.EDGEWARD_CONFIG) return path.resolve(env.EDGEWARD_CONFIG);
  const homeFile = homeConfigFile(edgewardHome(env));
  try {
    await fs.access(homeFile);
    return homeFile;
  } catch {
    return EMBEDDED_SOURCE;
  }
}

export async function loadConfig(source: string, env = process.env): Promise<LoadedConfig> {
  let text: string;
  if (source === EMBEDDED_SOURCE) {
    text = EMBEDDED_DEFAULT_TOML;
  } else {
    try {
      text = await fs.readFile(source, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new ConfigError(source, [{ path: '', message: code === 'ENOENT' ? 'file not found' : `cannot read file (${code})` }]);
    }
  }
  return parseConfigText(text, source, env);
}

/** Parse and validate config text. Exposed for tests and for `config apply`. */
export function parseConfigText(text: string, source: string, env = process.env): LoadedConfig {
  const home = edgewardHome(env);
  let raw: Record<string, unknown>;
  try {
    raw = parseToml(text.replaceAll('@HOME@', home)) as Record<string, unknown>;
  } catch (err) {
    if (err instanceof TomlError) {
      const first = err.message.split('\n')[0] ?? err.message;
      throw new ConfigError(source, [{ path: '', message: `TOML syntax error at line ${err.line}, column ${err.column}: ${first}` }]);
    }
    throw err;
  }
  if (source !== EMBEDDED_SOURCE && !('provisioning' in raw)) raw = overEmbeddedDefault(raw, home);
  const ignored = IGNORED_IOT_EDGE_KEYS.filter((k) => k in raw);
  for (const k of ignored) delete raw[k];
  fillDefaults(raw, home);
  // Every problem of the file in one message: the tagged tables are checked on their own branch, the
  // rest by the whole schema (whose union errors for those tables would only repeat them less clearly).
  const problems = [...provisioningIssues(raw.provisioning), ...edgeCaIssues(raw.edge_ca)];
  const parsed = configSchema.safeParse(raw);
  const edgeCaChecked = isTable(raw.edge_ca);
  if (!parsed.success) {
    const all = describeIssues(parsed.error.issues);
    const rest = all.filter((p) => !within(p.path, 'provisioning') && !(edgeCaChecked && within(p.path, 'edge_ca')));
    // Should a union fail where its branch passed, its own issues still say why.
    problems.push(...(problems.length === 0 && rest.length === 0 ? all : rest));
  } else problems.push(...socketIssues(parsed.data));
  if (problems.length > 0 || !parsed.success) throw new ConfigError(source, dedupe(problems));
  const config = applyAziotKeys(parsed.data);
  return { config, source, ignored: [...ignored] };
}

type Problem = { path: string; message: string };

/** Tables whose variants do not mix: a file that gives one replaces the default's whole. */
const WHOLE_TABLES = new Set(['provisioning', 'edge_ca']);

/**
 * A file without `[provisioning]` is a development config: it is read over the embedded default, each key
 * it gives replacing the default's (tables merge key by key, except the tagged ones). A file with
 * `[provisioning]` describes a device on its own, as IoT Edge's config.toml does (no sample modules).
 */
function overEmbeddedDefault(raw: Record<string, unknown>, home: string): Record<string, unknown> {
  const base = parseToml(EMBEDDED_DEFAULT_TOML.replaceAll('@HOME@', home)) as Record<string, unknown>;
  const merge = (under: Record<string, unknown>, over: Record<string, unknown>, top: boolean): Record<string, unknown> => {
    const out: Record<string, unknown> = { ...under };
    for (const [k, v] of Object.entries(over)) {
      const u = out[k];
      out[k] = isTable(u) && isTable(v) && !(top && WHOLE_TABLES.has(k)) ? merge(u, v, false) : v;
    }
    return out;
  };
  const merged = merge(base, raw, true);
  // A socket the file gives in only one of [connect] and [listen] still applies to both (fillDefaults).
  for (const [mine, other] of [['connect', 'listen'], ['listen', 'connect']] as const) {
    const given = raw[mine];
    const target = merged[other];
    if (!isTable(given) || !isTable(target)) continue;
    for (const key of Object.keys(given)) if (!(isTable(raw[other]) && key in raw[other])) delete target[key];
  }
  return merged;
}

function isTable(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function within(p: string, table: string): boolean {
  return p === table || p.startsWith(table + '.');
}

/**
 * Sockets: a key given in only one of [connect] and [listen] applies to both (the CLI connects where the
 * daemon listens; Edgeward has no proxy between them), and both default to the per-user run directory.
 */
function fillDefaults(raw: Record<string, unknown>, home: string): void {
  raw.hostname ??= os.hostname();
  raw.state_dir ??= defaultStateDir(home);
  const run = defaultRunDir(home);
  const defaults: Record<SocketKey, string> = { management_uri: `unix://${run}/mgmt.sock`, workload_uri: `unix://${run}/workload.sock` };
  raw.connect ??= {};
  raw.listen ??= {};
  const { connect, listen } = raw;
  if (!isTable(connect) || !isTable(listen)) return;
  for (const key of Object.keys(defaults) as SocketKey[]) {
    connect[key] ??= typeof listen[key] === 'string' && !listen[key].startsWith('fd://') ? listen[key] : defaults[key];
    listen[key] ??= connect[key];
  }
}

/**
 * [connect] and [listen] must name the same sockets: the daemon serves only what it listens on. A socket
 * systemd passes (`fd://` in [listen]) is bound by its unit at the path [connect] gives.
 */
function socketIssues(config: Config): Problem[] {
  return (Object.keys(SOCKET_EXAMPLES) as SocketKey[])
    .filter((key) => config.connect[key] !== config.listen[key] && !config.listen[key].startsWith('fd://'))
    .map((key) => ({
      path: `connect.${key}`,
      message: `"${config.connect[key]}" differs from listen.${key} "${config.listen[key]}": the CLI connects where the daemon listens, so give both the same URI (or leave it out of [connect])`,
    }));
}

/** `[provisioning]`: missing, not a table, an unknown `source`, or the fields of the branch `source` selects. */
function provisioningIssues(prov: unknown): Problem[] {
  if (!isTable(prov)) return [{ path: 'provisioning', message: `expected a table, got ${typeName(prov)}` }];
  const src = prov.source;
  if (typeof src !== 'string' || !(PROVISIONING_SOURCES as readonly string[]).includes(src)) {
    const got = src === undefined ? 'nothing' : JSON.stringify(src);
    return [{ path: 'provisioning.source', message: `expected one of ${PROVISIONING_SOURCES.map((s) => `"${s}"`).join(', ')}, got ${got}` }];
  }
  return branchIssues(prov, 'provisioning', provisioningBranch);
}

/** `[edge_ca]`: IoT Edge's issued variant (`method = …`) is answered with what to use instead. */
function edgeCaIssues(table: unknown): Problem[] {
  if (!isTable(table) || !('method' in table)) return branchIssues(table, 'edge_ca', edgeCaBranch);
  const rest = { ...table };
  delete rest.method;
  for (const k of ISSUED_EDGE_CA_KEYS) delete rest[k];
  return [{ path: 'edge_ca', message: edgeCaMethodMessage(table.method) }, ...branchIssues(rest, 'edge_ca', edgeCaBranch)];
}

/** Validate a tagged table against the one branch its keys select, with paths prefixed by the table. */
function branchIssues(table: unknown, key: string, pick: (t: Record<string, unknown>) => z.ZodType): Problem[] {
  if (!isTable(table)) return [];
  const r = pick(table).safeParse(table);
  return r.success ? [] : describeIssues(r.error.issues.map((i) => ({ ...i, path: [key, ...i.path] })));
}

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return `a ${typeof v}`;
}

/** Turn zod issues into "field.path: expected …" lines; union failures report their deepest branch. */
function describeIssues(issues: z.core.$ZodIssue[]): { path: string; message: string }[] {
  const out: { path: string; message: string }[] = [];
  for (const issue of issues) {
    if (issue.code === 'invalid_union' && issue.errors.length > 0) {
      // Pick the branch that got furthest (most specific path) to explain the failure.
      const best = issue.errors.reduce((a, b) => (depth(b) > depth(a) ? b : a));
      out.push(...describeIssues(best.map((i) => ({ ...i, path: [...issue.path, ...i.path] }))));
      continue;
    }
    const p = issue.path.map(String).join('.');
    let message = issue.message;
    if (issue.code === 'unrecognized_keys') message = `unknown key(s) ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
    else if (issue.code === 'invalid_type' && /received undefined/.test(issue.message)) message = `required field is missing (expected ${issue.expected})`;
    out.push({ path: p, message });
  }
  return dedupe(out);
}

function depth(issues: z.core.$ZodIssue[]): number {
  return Math.max(0, ...issues.map((i) => i.path.length + (i.code === 'unrecognized_keys' ? 0 : 0.5)));
}

function dedupe(list: { path: string; message: string }[]): { path: string; message: string }[] {
  const seen = new Set<string>();
  return list.filter((p) => (seen.has(p.path + p.message) ? false : (seen.add(p.path + p.message), true)));
}

/** IoT Edge's `[aziot_keys] pkcs11_lib_path/pkcs11_base_slot` selects the PKCS#11 backend. */
function applyAziotKeys(config: Config): Config {
  const a = config.aziot_keys;
  if (!a?.pkcs11_lib_path || config.keys.backend !== 'file') return config;
  const slot = a.pkcs11_base_slot ? parsePkcs11SlotUri(a.pkcs11_base_slot) : {};
  return {
    ...config,
    keys: { backend: 'pkcs11', pkcs11: { library: a.pkcs11_lib_path, sessions: 8, ...slot } },
  };
}

/** `pkcs11:token=Foo?pin-value=1234` (RFC 7512) → token_label/serial/pin. */
export function parsePkcs11SlotUri(uri: string): { token_label?: string; token_serial?: string; slot?: number; pin?: string } {
  const [pathPart = '', query = ''] = uri.slice('pkcs11:'.length).split('?');
  const out: { token_label?: string; token_serial?: string; slot?: number; pin?: string } = {};
  for (const attr of pathPart.split(';').filter(Boolean)) {
    const [k, v = ''] = attr.split('=');
    const val = decodeURIComponent(v);
    if (k === 'token') out.token_label = val;
    else if (k === 'serial') out.token_serial = val;
    else if (k === 'slot-id') out.slot = Number(val);
  }
  for (const attr of query.split('&').filter(Boolean)) {
    const [k, v = ''] = attr.split('=');
    if (k === 'pin-value') out.pin = decodeURIComponent(v);
  }
  return out;
}

const SECRET_KEYS = new Set(['pin', 'connection_string', 'value', 'password', 'symmetric_key', 'device_id_pk']);
export const REDACTED = '<redacted>';

/** A deep copy with every secret-bearing field replaced, for `config show` and logs. */
export function redactConfig(config: Config): Record<string, unknown> {
  const walk = (v: unknown, key?: string): unknown => {
    if (typeof v === 'string' && v.startsWith('pkcs11:')) return v.replace(/pin-value=[^&;]*/g, `pin-value=${REDACTED}`);
    if (key !== undefined && SECRET_KEYS.has(key) && (typeof v === 'string' || (typeof v === 'object' && v !== null && 'value' in v))) return REDACTED;
    // [tpm] hierarchy_authorization: the owner and endorsement passwords.
    if (key === 'hierarchy_authorization' && v && typeof v === 'object') return Object.fromEntries(Object.keys(v).map((k) => [k, REDACTED]));
    if (Array.isArray(v)) return v.map((x) => walk(x));
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x, k)]));
    return v;
  };
  return walk(config) as Record<string, unknown>;
}

export function configToToml(config: Config | Record<string, unknown>): string {
  return stringifyToml(config as Record<string, unknown>);
}
