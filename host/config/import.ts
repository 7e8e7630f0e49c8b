/**
 * `edgeward config import`: an IoT Edge 1.5 super-config (`/etc/aziot/config.toml`) → an Edgeward config.
 * Every top-level key gets one verdict: kept as it is, mapped (to what), ignored (why: it means nothing
 * for a component runtime) or unsupported (what to use instead). Unsupported settings are written into
 * the output commented out, with the reason, so nothing the user wrote is lost.
 */
import { parse as parseToml, stringify as stringifyToml, TomlError } from 'smol-toml';
import { SOCKET_EXAMPLES, type SocketKey } from './schema.js';
import { ConfigError } from './load.js';
import { edgeCaMethodMessage } from './unsupported.js';

export type Verdict = 'kept' | 'mapped' | 'ignored' | 'unsupported';
export interface ImportLine {
  key: string;
  verdict: Verdict;
  /** mapped: to what; ignored: why; unsupported: what to use instead. */
  detail?: string;
}
export interface ImportResult {
  toml: string;
  lines: ImportLine[];
  /** True when an unsupported setting was left out: the output needs the user's decision before it is applied. */
  incomplete: boolean;
}

const CONTAINERS = 'Docker settings: Edgeward runs WASI components, not containers; deploy modules with "edgeward deploy"';
const CLOUD_CLIENT = 'a setting of the IoT Hub module-identity client, which Edgeward does not have yet';

/** Why each IoT Edge key that means nothing here is ignored. */
const IGNORED_BECAUSE: Record<string, string> = {
  allow_elevated_docker_permissions: CONTAINERS,
  agent: CONTAINERS,
  moby_runtime: CONTAINERS,
  image_garbage_collection: CONTAINERS,
  watchdog: 'the daemon supervises and restarts its modules itself',
  prefer_module_identity_cache: CLOUD_CLIENT,
  iotedge_max_requests: 'Edgeward has its own per-caller connection limits',
  aziot_max_requests: 'Edgeward has its own per-caller connection limits',
  imported_master_encryption_key: "Edgeward's key store seals its state with its own keys",
  additional_info: 'system information extras are not reported',
  localid: 'local identities are not supported',
  preloaded_keys: 'name key files directly where they are used ([edge_ca] pk, [provisioning.authentication])',
  preloaded_certs: 'name certificate files directly where they are used ([edge_ca] cert, trust_bundle_cert)',
};

/** IoT Edge keys this build cannot honour, and what to use instead. */
const UNSUPPORTED_BECAUSE: Record<string, string> = {
  parent_hostname: 'nested edge (a parent gateway) is not supported yet: the device connects to IoT Hub directly; remove parent_hostname',
  local_gateway_hostname: 'nested edge (a parent gateway) is not supported yet: the device connects to IoT Hub directly; remove local_gateway_hostname',
  cert_issuance: 'EST and local-CA certificate issuance are not supported yet: use a quickstart Edge CA (no [edge_ca] method) or certificate files (cert/pk)',
};

/** Edgeward's own top-level keys: a config that already has them keeps them. */
const EDGEWARD_KEYS = ['auto_reprovisioning_mode', 'cloud_timeout_sec', 'cloud_retries', 'state_dir', 'keys', 'log', 'runtime', 'modules', 'principal', 'tpm', 'trust_bundle_cert', 'hostname'];

export function importSuperConfig(text: string, file: string): ImportResult {
  let raw: Record<string, unknown>;
  try {
    raw = parseToml(text) as Record<string, unknown>;
  } catch (err) {
    if (err instanceof TomlError) throw new ConfigError(file, [{ path: '', message: `TOML syntax error at line ${err.line}, column ${err.column}: ${err.message.split('\n')[0] ?? ''}` }]);
    throw err;
  }
  const out: Record<string, unknown> = {};
  const lines: ImportLine[] = [];
  const left: Record<string, unknown> = {};
  const unsupported = (key: string, detail: string, value: unknown) => {
    lines.push({ key, verdict: 'unsupported', detail });
    left[key] = value;
  };
  for (const [key, value] of Object.entries(raw)) {
    if (key === 'connect' || key === 'listen') continue; // together, below
    if (key === 'provisioning') importProvisioning(value, out, lines, unsupported);
    else if (key === 'edge_ca') importEdgeCa(value, out, lines, unsupported);
    else if (key === 'aziot_keys') importAziotKeys(value, out, lines);
    else if (key in UNSUPPORTED_BECAUSE) unsupported(key, UNSUPPORTED_BECAUSE[key]!, value);
    else if (key in IGNORED_BECAUSE) lines.push({ key, verdict: 'ignored', detail: IGNORED_BECAUSE[key] });
    else if (EDGEWARD_KEYS.includes(key)) {
      out[key] = value;
      lines.push({ key, verdict: 'kept' });
    } else unsupported(key, 'neither an IoT Edge nor an Edgeward setting: check the spelling', value);
  }
  importSockets(raw, out, lines);
  const incomplete = Object.keys(left).length > 0;
  return { toml: render(out, left, lines, file), lines, incomplete };
}

type Unsupported = (key: string, detail: string, value: unknown) => void;

function importProvisioning(value: unknown, out: Record<string, unknown>, lines: ImportLine[], unsupported: Unsupported): void {
  const source = (value as { source?: unknown } | undefined)?.source;
  out.provisioning = value;
  lines.push({ key: 'provisioning', verdict: 'kept', detail: typeof source === 'string' ? `source = "${source}"` : undefined });
}

function importEdgeCa(value: unknown, out: Record<string, unknown>, lines: ImportLine[], unsupported: Unsupported): void {
  if (typeof value === 'object' && value !== null && 'method' in value) {
    return unsupported('edge_ca', `${edgeCaMethodMessage((value as { method: unknown }).method)} (left out: the imported config generates a quickstart Edge CA)`, value);
  }
  out.edge_ca = value;
  lines.push({ key: 'edge_ca', verdict: 'kept', detail: typeof value === 'object' && value !== null && 'cert' in value ? 'preloaded cert and pk' : 'quickstart' });
}

/** `[aziot_keys]`: its PKCS#11 settings select the PKCS#11 backend; keyd's other settings mean nothing here. */
function importAziotKeys(value: unknown, out: Record<string, unknown>, lines: ImportLine[]): void {
  const kept: Record<string, unknown> = {};
  for (const [k, v] of Object.entries((value ?? {}) as Record<string, unknown>)) {
    if (k === 'pkcs11_lib_path' || k === 'pkcs11_base_slot') kept[k] = v;
    else lines.push({ key: `aziot_keys.${k}`, verdict: 'ignored', detail: "a setting of aziot-keyd; Edgeward's key store is configured in [keys]" });
  }
  if (Object.keys(kept).length === 0) return;
  out.aziot_keys = kept;
  lines.push({ key: 'aziot_keys', verdict: 'mapped', detail: 'pkcs11_lib_path and pkcs11_base_slot select [keys] backend = "pkcs11"' });
}

/**
 * `[connect]` and `[listen]` end up naming the same unix sockets: IoT Edge's `fd://` listen URIs (systemd
 * socket activation) become the `[connect]` URI, as the daemon binds its own sockets.
 */
function importSockets(raw: Record<string, unknown>, out: Record<string, unknown>, lines: ImportLine[]): void {
  const connect = (raw.connect ?? {}) as Record<string, unknown>;
  const listen = (raw.listen ?? {}) as Record<string, unknown>;
  if (raw.connect === undefined && raw.listen === undefined) return;
  const c: Record<string, unknown> = { ...connect };
  const l: Record<string, unknown> = { ...listen };
  for (const key of Object.keys(SOCKET_EXAMPLES) as SocketKey[]) {
    const lv = listen[key];
    const cv = connect[key];
    if (typeof lv === 'string' && lv.startsWith('fd://')) {
      l[key] = cv ?? defaultIotEdgeSocket(key);
      lines.push({ key: `listen.${key}`, verdict: 'mapped', detail: `"${lv}" (systemd socket activation) → "${String(l[key])}": the daemon binds its own socket, where [connect] points` });
    } else if (typeof lv === 'string' && cv !== undefined && cv !== lv) {
      c[key] = lv;
      lines.push({ key: `connect.${key}`, verdict: 'mapped', detail: `"${String(cv)}" → "${lv}": the CLI connects where the daemon listens` });
    }
  }
  if (raw.connect !== undefined) lines.push({ key: 'connect', verdict: 'kept' });
  if (raw.listen !== undefined) lines.push({ key: 'listen', verdict: 'kept' });
  out.connect = c;
  out.listen = l;
}

/** IoT Edge's own socket paths, for a `[listen]` fd:// URI without a `[connect]` entry. */
function defaultIotEdgeSocket(key: SocketKey): string {
  return key === 'management_uri' ? 'unix:///var/run/iotedge/mgmt.sock' : 'unix:///var/run/iotedge/workload.sock';
}

function render(out: Record<string, unknown>, left: Record<string, unknown>, lines: ImportLine[], file: string): string {
  const head = [`# Imported by "edgeward config import" from ${file}.`];
  for (const l of lines.filter((x) => x.verdict === 'ignored')) head.push(`# ignored: ${l.key} (${l.detail ?? ''})`);
  const body = stringifyToml(out);
  const commented = Object.entries(left).map(([key, value]) => {
    const why = lines.find((l) => l.key === key && l.verdict === 'unsupported')?.detail ?? '';
    const toml = stringifyToml({ [key]: value }).trimEnd();
    return `\n# unsupported: ${why}\n${toml.split('\n').map((l) => `# ${l}`).join('\n')}`;
  });
  return `${head.join('\n')}\n\n${body}\n${commented.join('\n')}\n`;
}
