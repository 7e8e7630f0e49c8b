/**
 * The Edgeward config schema: shaped after IoT Edge's `/etc/aziot/config.toml` super-config where the
 * concepts match (hostname, [provisioning], [aziot_keys], [edge_ca], [connect], [listen], [[principal]]),
 * plus Edgeward's own sections ([keys], [tpm], [runtime], [log], [paths]).
 *
 * Validation is strict: unknown keys in Edgeward-owned tables are errors (a typo must not silently
 * fall back to a default). Top-level IoT Edge sections that have no meaning here (moby_runtime, agent,
 * image_garbage_collection, …) are accepted and reported as ignored, so an existing config.toml can be
 * reused.
 */
import { z } from 'zod';
import { fdSocketMessage } from './unsupported.js';
import { securityExtensionsSchema } from './security-extensions.js';
import { DEFAULT_MEASUREMENT, measurementSchema } from './measurement.js';
import { confidentialSchema } from './confidential.js';
import { metricsSchema } from './metrics.js';

/** `[modules] signature_policy`: whether an unsigned module may run (host/runtime/signature.ts verifies). */
export const SIGNATURE_POLICIES = ['optional', 'required'] as const;
export type SignaturePolicy = (typeof SIGNATURE_POLICIES)[number];
/** Most `[modules] trusted_signers` files. */
export const MAX_TRUSTED_SIGNERS = 64;

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const;
export const logLevelSchema = z.enum(LOG_LEVELS);
export type LogLevel = z.infer<typeof logLevelSchema>;

/** Example socket URI per socket, so each error names the socket it is about. */
export const SOCKET_EXAMPLES = { management_uri: 'unix:///run/edgeward/mgmt.sock', workload_uri: 'unix:///run/edgeward/workload.sock' } as const;
export type SocketKey = keyof typeof SOCKET_EXAMPLES;

/**
 * `unix:///abs/path`; in `[listen]` also `fd://NAME` or `fd://N`, a socket systemd passes (socket activation,
 * as IoT Edge's units do). `[connect]` is where the CLI connects: always a path.
 */
function socketUri(socket: SocketKey, side: 'connect' | 'listen') {
  const example = SOCKET_EXAMPLES[socket];
  return z.string().superRefine((v, ctx) => {
    if (/^unix:\/\/\/.+/.test(v)) return;
    if (side === 'listen' && /^fd:\/\/[A-Za-z0-9_.:@-]+$/.test(v)) return;
    const message = v.startsWith('fd://') ? fdSocketMessage(v, example, side) : `a unix socket URI such as "${example}"${side === 'listen' ? ', or fd://NAME for a socket systemd passes' : ''}`;
    ctx.addIssue({ code: 'custom', message });
  });
}

/** A secret given inline or by file: `{ value = "…" }` or `{ uri = "file:///…" | "pkcs11:…" }`. */
const secretRef = z.union([
  z.object({ value: z.string().min(1) }).strict(),
  z.object({ uri: z.string().regex(/^(file:\/\/\/|pkcs11:)/, 'a file:/// or pkcs11: URI') }).strict(),
]);

const sasAuth = z
  .object({ method: z.literal('sas'), device_id_pk: secretRef })
  .strict();
const x509Auth = z
  .object({
    method: z.literal('x509'),
    identity_cert: z.string().regex(/^file:\/\/\//, 'a file:/// URI'),
    identity_pk: z.string().regex(/^(file:\/\/\/|pkcs11:)/, 'a file:/// or pkcs11: URI'),
  })
  .strict();

const manualProvisioning = z.union([
  z
    .object({
      source: z.literal('manual'),
      connection_string: z
        .string()
        .regex(/HostName=[^;]+;DeviceId=[^;]+;SharedAccessKey=[^;]+/, 'a "HostName=…;DeviceId=…;SharedAccessKey=…" connection string'),
    })
    .strict(),
  z
    .object({
      source: z.literal('manual'),
      iothub_hostname: z.string().min(1),
      device_id: z.string().min(1),
      authentication: z.discriminatedUnion('method', [sasAuth, x509Auth]),
    })
    .strict(),
]);

/**
 * `[provisioning.attestation] method = "symmetric_key"`: `symmetric_key` is the device's own key (an
 * individual enrollment's, or a group enrollment's key already derived for this registration id, as IoT
 * Edge takes it). Edgeward also takes `enrollment_group_key` instead: the group's key, from which the key
 * service derives the device key HMAC-SHA256(group key, registration_id) on the device.
 */
const dpsSymmetricKey = z
  .object({ method: z.literal('symmetric_key'), registration_id: z.string().min(1), symmetric_key: secretRef.optional(), enrollment_group_key: secretRef.optional() })
  .strict()
  .refine((a) => (a.symmetric_key === undefined) !== (a.enrollment_group_key === undefined), { message: 'give symmetric_key (the device key) or enrollment_group_key (the group key), exactly one' });

const dpsAttestation = z.union([
  dpsSymmetricKey,
  z
    .object({
      method: z.literal('x509'),
      registration_id: z.string().min(1).optional(),
      identity_cert: z.string().regex(/^file:\/\/\//, 'a file:/// URI'),
      identity_pk: z.string().regex(/^(file:\/\/\/|pkcs11:)/, 'a file:/// or pkcs11: URI'),
    })
    .strict(),
  z.object({ method: z.literal('tpm'), registration_id: z.string().min(1) }).strict(),
]);

const dpsProvisioning = z
  .object({
    source: z.literal('dps'),
    global_endpoint: z.string().url().default('https://global.azure-devices-provisioning.net'),
    id_scope: z.string().min(1),
    payload: z.object({ uri: z.string().regex(/^file:\/\/\//, 'a file:/// URI of a JSON file') }).strict().optional(),
    attestation: dpsAttestation,
  })
  .strict();

const noneProvisioning = z.object({ source: z.literal('none') }).strict();

/**
 * `[provisioning]`, tagged by `source`. load.ts first validates the one branch the table's `source` (and,
 * for manual, `connection_string`) selects, so errors name that branch's fields instead of a union's.
 */
export const provisioningSchema = z.union([noneProvisioning, manualProvisioning, dpsProvisioning]);
export function provisioningBranch(table: Record<string, unknown>): z.ZodType {
  if (table.source === 'none') return noneProvisioning;
  if (table.source === 'dps') return dpsProvisioning;
  const [connStr, explicit] = manualProvisioning.options;
  return 'connection_string' in table ? connStr : explicit;
}
export const PROVISIONING_SOURCES = ['none', 'manual', 'dps'] as const;

/** Auto-renew policy as in IoT Edge: "80%", "30min", "2day". */
const renewAmount = z.string().regex(/^\d+(%|min|day)$/, 'a percentage like "80%", or a duration like "30min" or "2day"');
const autoRenew = z
  .object({ rotate_key: z.boolean().default(true), threshold: renewAmount.default('80%'), retry: renewAmount.default('4%') })
  .strict();

const preloadedEdgeCa = z
  .object({
    cert: z.string().regex(/^file:\/\/\//, 'a file:/// URI'),
    pk: z.string().regex(/^(file:\/\/\/|pkcs11:)/, 'a file:/// or pkcs11: URI'),
  })
  .strict();
const quickstartEdgeCa = z
  .object({
    auto_generated_edge_ca_expiry_days: z.number().int().positive().max(3650).default(90),
    subject: z.record(z.string(), z.string()).optional(),
    auto_renew: autoRenew.optional(),
  })
  .strict();
/** `[edge_ca]`: preloaded from files (`cert` + `pk`) or quickstart (self-signed, generated on first start). */
export const edgeCaSchema = z.union([preloadedEdgeCa, quickstartEdgeCa]);
export function edgeCaBranch(table: Record<string, unknown>): z.ZodType {
  return 'cert' in table || 'pk' in table ? preloadedEdgeCa : quickstartEdgeCa;
}

const pkcs11Schema = z
  .object({
    library: z.string().min(1),
    token_label: z.string().min(1).optional(),
    token_serial: z.string().min(1).optional(),
    slot: z.number().int().nonnegative().optional(),
    pin: z.string().min(1).optional(),
    pin_file: z.string().min(1).optional(),
    sessions: z.number().int().min(1).max(256).default(8),
    /**
     * 0 or absent (default): each sign/encrypt/decrypt runs synchronously on the daemon's thread — fastest for a
     * local token (SoftHSM2, a USB HSM), whose calls take well under a millisecond. N > 0: N worker threads
     * run them, so a network HSM's latency never stalls the event loop.
     */
    worker_threads: z.number().int().min(0).max(64).optional(),
  })
  .strict()
  .refine((p) => p.token_label !== undefined || p.token_serial !== undefined || p.slot !== undefined, {
    message: 'one of token_label, token_serial or slot is required',
  })
  .refine((p) => !(p.pin !== undefined && p.pin_file !== undefined), { message: 'give pin or pin_file, not both' });

/** `[keys]`: Edgeward's key store. `backend = "file"` is for development only. */
export const keysSchema = z
  .object({
    backend: z.enum(['file', 'pkcs11', 'tpm']).default('file'),
    pkcs11: pkcs11Schema.optional(),
  })
  .strict()
  .refine((k) => k.backend !== 'pkcs11' || k.pkcs11 !== undefined, {
    message: 'backend "pkcs11" needs a [keys.pkcs11] table',
    path: ['pkcs11'],
  });

/** `[aziot_keys]` as IoT Edge writes it; mapped onto `[keys]` (see load.ts). */
const aziotKeysSchema = z
  .object({ pkcs11_lib_path: z.string().min(1).optional(), pkcs11_base_slot: z.string().startsWith('pkcs11:').optional() })
  .strict();

export const tpmSchema = z
  .object({
    tcti: z
      .string()
      .regex(/^(device(:.+)?|swtpm(:.*)?|mssim(:.*)?)$/, 'a TCTI string such as "device:/dev/tpmrm0" or "swtpm:host=127.0.0.1,port=2321"')
      .default('device:/dev/tpmrm0'),
    auth_key_index: z.string().optional(),
    /** As in aziot's config: auth values of the hierarchies, needed only to create the EK/SRK. */
    hierarchy_authorization: z
      .object({ endorsement: z.string().optional(), owner: z.string().optional() })
      .strict()
      .optional(),
  })
  .strict();

const socketPair = (side: 'connect' | 'listen') => z.object({ management_uri: socketUri('management_uri', side), workload_uri: socketUri('workload_uri', side) }).strict();

/** `[[principal]]`: which OS user or module may use which key ids. */
const principalSchema = z
  .object({
    name: z.string().min(1),
    uid: z.number().int().nonnegative().optional(),
    module: z.string().min(1).optional(),
    keys: z.array(z.string().min(1)).default([]),
  })
  .strict()
  .refine((p) => p.uid !== undefined || p.module !== undefined, { message: 'a principal needs uid or module' });

const limitsSchema = z
  .object({
    memory_mib: z.number().int().min(1).max(4096).default(64),
    call_timeout_ms: z.number().int().min(1).max(600_000).default(5_000),
    max_value_bytes: z.number().int().min(1024).max(64 * 1024 * 1024).default(1024 * 1024),
  })
  .strict();

/** `[runtime]`: the component host. */
const runtimeSchema = z
  .object({
    /** A deployment manifest applied at start; "builtin:default" deploys the sample guests. */
    deployment: z.string().min(1).optional(),
    default_limits: limitsSchema.default(limitsSchema.parse({})),
  })
  .strict();

/** A signer file: an absolute path or a file:/// URI. */
const pemFile = z.string().regex(/^(\/|file:\/\/\/)/, 'an absolute path or a file:/// URI of a PEM file');

/**
 * `[modules]`: which module signers this device trusts (public keys or CA certificates, PEM) and whether a
 * signature is required. Trust comes only from here, never from a manifest.
 */
const modulesSchema = z
  .object({
    signature_policy: z.enum(SIGNATURE_POLICIES).default('optional'),
    trusted_signers: z.array(pemFile).max(MAX_TRUSTED_SIGNERS).default([]),
  })
  .strict();

/** Top-level IoT Edge keys that have no meaning for a component runtime: accepted, reported ignored. */
export const IGNORED_IOT_EDGE_KEYS = [
  'parent_hostname',
  'local_gateway_hostname',
  'allow_elevated_docker_permissions',
  'imported_master_encryption_key',
  'additional_info',
  'prefer_module_identity_cache',
  'iotedge_max_requests',
  'aziot_max_requests',
  'localid',
  'preloaded_keys',
  'cert_issuance',
  'preloaded_certs',
  'agent',
  'watchdog',
  'moby_runtime',
  'image_garbage_collection',
] as const;

/** `auto_reprovisioning_mode`, as IoT Edge: when the device goes back to DPS (host/cloud/dps/provision.ts). */
export const REPROVISIONING_MODES = ['Dynamic', 'AlwaysOnStartup', 'OnErrorOnly'] as const;
export type ReprovisioningMode = (typeof REPROVISIONING_MODES)[number];

export const configSchema = z
  .object({
    hostname: z.string().min(1).max(253).regex(/^[A-Za-z0-9.-]+$/, 'a DNS host name (letters, digits, "." and "-")'),
    /** Edgeward: where state lives. Default: per-user data directory. */
    state_dir: z.string().min(1),
    trust_bundle_cert: z.string().regex(/^file:\/\/\//, 'a file:/// URI').optional(),
    provisioning: provisioningSchema,
    auto_reprovisioning_mode: z.enum(REPROVISIONING_MODES).default('Dynamic'),
    /** Each cloud request's timeout (IoT Edge's code default 70 s). */
    cloud_timeout_sec: z.number().int().min(1).max(3600).default(70),
    /** Retries of a failed cloud request (IoT Edge default 1). */
    cloud_retries: z.number().int().min(0).max(100).default(1),
    keys: keysSchema.default(keysSchema.parse({})),
    aziot_keys: aziotKeysSchema.optional(),
    tpm: tpmSchema.optional(),
    edge_ca: edgeCaSchema.default({ auto_generated_edge_ca_expiry_days: 90 }),
    connect: socketPair('connect'),
    listen: socketPair('listen'),
    principal: z.array(principalSchema).default([]),
    log: z.object({ level: logLevelSchema.default('info') }).strict().default({ level: 'info' }),
    runtime: runtimeSchema.default(runtimeSchema.parse({})),
    modules: modulesSchema.default(modulesSchema.parse({})),
    security_extensions: securityExtensionsSchema.default(securityExtensionsSchema.parse({})),
    measurement: measurementSchema.default(DEFAULT_MEASUREMENT),
    confidential: confidentialSchema.optional(),
    /** Opt-in Prometheus listener (host/metrics); absent: off. */
    metrics: metricsSchema.optional(),
  })
  .strict();

export type Config = z.infer<typeof configSchema>;
export type ProvisioningConfig = Config['provisioning'];
export type KeysConfig = Config['keys'];
export type Pkcs11Config = NonNullable<KeysConfig['pkcs11']>;
export type TpmConfig = NonNullable<Config['tpm']>;
export type PrincipalConfig = Config['principal'][number];
export type LimitsConfig = Config['runtime']['default_limits'];
export type ModulesConfig = Config['modules'];
