/**
 * Module specs from the two places they come from: a deployment manifest shaped like IoT Edge's
 * `$edgeAgent` desired properties (reference §7), and the management API's ModuleSpec (`POST /modules`,
 * `PUT /modules/{name}`, reference §2). Edgeward adds `capabilities` and `limits` per module;
 * `settings.image` is the component source (file path, relative to the manifest, `builtin:<guest>`, or
 * https URL) and `settings.digest` pins its sha256.
 */
import path from 'node:path';
import { z } from 'zod';
import { RuntimeError } from './errors.js';
import { assetPath } from './assets.js';
import { isInlinePem, signatureSourceSchema, type SignatureSource } from './signature.js';
import { healthSettingsSchema, RESTART_POLICIES, MODULE_KINDS, MAX_ENV_VARS, MAX_GRANTS, limitsOverrideSchema, networkSchema, type Registration } from './registry.js';
import { configureGrants, type Capability } from './capabilities.js';

/** Most modules one manifest may declare. */
export const MAX_MODULES = 64;

/** What create/update need: a registration before measurement. */
export type ModuleSpec = Omit<Registration, 'digest' | 'generationId' | 'signer' | 'signerSubject' | 'signature' | 'securityVersion'> & {
  digest?: string;
  /** The detached signature and its signer, as the manifest names them (paths resolved). */
  signature?: SignatureSource;
};

const nameSchema = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'a module name: letters, digits, ".", "_", "-" (max 64)');
const digestSchema = z.string().regex(/^sha256:[0-9a-f]{64}$/, 'sha256:<64 hex digits>');

const settingsSchema = z
  .object({ image: z.string().min(1).max(2048), digest: digestSchema.optional(), createOptions: z.unknown().optional() })
  .catchall(z.unknown());

const extras = {
  restartPolicy: z.enum(RESTART_POLICIES).optional(),
  status: z.enum(['running', 'stopped']).optional(),
  startupOrder: z.number().int().min(0).max(4294967295).optional(),
  capabilities: z.array(z.string().max(128)).max(MAX_GRANTS).optional(),
  network: networkSchema.optional(),
  limits: limitsOverrideSchema.optional(),
  kind: z.enum(MODULE_KINDS).optional(),
  signature: signatureSourceSchema.optional(),
  health: healthSettingsSchema.optional(),
};

/** One module in `$edgeAgent.properties.desired.modules`. */
const manifestModuleSchema = z
  .object({
    version: z.string().optional(),
    type: z.string().optional(),
    imagePullPolicy: z.string().optional(),
    settings: settingsSchema,
    env: z.record(z.string().max(256), z.object({ value: z.union([z.string(), z.number(), z.boolean()]) })).optional(),
    ...extras,
  })
  .strict();

/** Management API ModuleSpec, with Edgeward's extras beside `config`. */
export const apiModuleSpecSchema = z
  .object({
    name: nameSchema,
    type: z.string().optional(),
    imagePullPolicy: z.string().optional(),
    config: z.object({
      settings: settingsSchema,
      env: z.array(z.object({ key: z.string().min(1).max(256), value: z.string() })).max(MAX_ENV_VARS).optional(),
    }),
    ...extras,
  })
  .strict();

function resolveImage(image: string, baseDir: string | undefined): string {
  if (image.startsWith('builtin:')) {
    const guest = image.slice('builtin:'.length);
    if (!/^[a-z][a-z0-9-]{0,31}$/.test(guest)) throw new RuntimeError('invalid', `unknown builtin image "${image}"`);
    return assetPath(`guests/${guest}/dist/${guest}.wasm`);
  }
  if (/^[a-z]+:\/\//.test(image) || path.isAbsolute(image)) return image;
  // A relative path means nothing to the daemon (its cwd is not the caller's): the CLI resolves it.
  if (!baseDir) throw new RuntimeError('invalid', `image "${image}": use an absolute path, file://, https:// or builtin:<guest>`);
  return path.resolve(baseDir, image);
}

/** Signature and signer paths resolve like images; an inline PEM signer stays as it is. */
function resolveSignature(name: string, s: SignatureSource, baseDir: string | undefined): SignatureSource {
  const file = (p: string) => {
    if (path.isAbsolute(p)) return p;
    if (!baseDir) throw new RuntimeError('invalid', `module "${name}": signature path "${p}": use an absolute path`);
    return path.resolve(baseDir, p);
  };
  return { ...s, ...(s.file !== undefined ? { file: file(s.file) } : {}), signer: isInlinePem(s.signer) ? s.signer : file(s.signer) };
}

function toSpec(
  name: string,
  m: { settings: z.infer<typeof settingsSchema>; type?: string } & { [K in keyof typeof extras]?: z.infer<(typeof extras)[K]> },
  env: Record<string, string>,
  baseDir: string | undefined,
  known?: readonly Capability[],
): ModuleSpec {
  if (m.type !== undefined && m.type !== 'wasm' && m.type !== 'component') {
    throw new RuntimeError('invalid', `module "${name}": type "${m.type}" is not supported (use "wasm")`);
  }
  const capabilities = m.capabilities ?? [];
  const refused = known && configureGrants({ module: name, grants: capabilities, ...(m.network ? { network: m.network } : {}) }, known);
  if (refused) throw new RuntimeError('invalid', refused);
  const { image, digest, createOptions: _ignored, ...settings } = m.settings;
  return {
    name,
    source: resolveImage(image, baseDir),
    ...(digest ? { digest } : {}),
    ...(m.signature ? { signature: resolveSignature(name, m.signature, baseDir) } : {}),
    kind: m.kind ?? 'module',
    capabilities,
    ...(m.network ? { network: m.network } : {}),
    limits: m.limits ?? {},
    ...(m.health ? { health: m.health } : {}),
    restartPolicy: m.restartPolicy ?? 'on-unhealthy',
    desiredStatus: m.status ?? 'running',
    startupOrder: m.startupOrder ?? 4294967295,
    env,
    settings,
  };
}

/**
 * A security version is read only from the signed component (rollback.ts); a manifest or API field
 * claiming one is refused, so nobody mistakes it for one that counts.
 */
function refuseVersionClaim(name: string, raw: unknown): void {
  const r = raw as Record<string, unknown> | null;
  if (r && typeof r === 'object' && ('securityVersion' in r || 'security_version' in r)) {
    throw new RuntimeError('invalid', `module "${name}": "securityVersion" cannot be set in a manifest: the version comes from the component's signed "edgeward.security-version" section (see README, anti-rollback)`);
  }
}

function zodMessage(err: z.ZodError): string {
  return err.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
}

/** Parse a management-API ModuleSpec. Duplicate env keys are refused (as edged does). */
export function parseApiSpec(body: unknown, urlName?: string): ModuleSpec {
  refuseVersionClaim(urlName ?? 'module', body);
  const r = apiModuleSpecSchema.safeParse(body);
  if (!r.success) throw new RuntimeError('invalid', `invalid module spec: ${zodMessage(r.error)}`);
  if (urlName !== undefined && r.data.name !== urlName) throw new RuntimeError('invalid', `module name in body ("${r.data.name}") differs from the URL ("${urlName}")`);
  const env: Record<string, string> = {};
  for (const { key, value } of r.data.config.env ?? []) {
    if (key in env) throw new RuntimeError('invalid', `duplicate env key "${key}"`);
    env[key] = value;
  }
  return toSpec(r.data.name, { ...r.data, settings: r.data.config.settings }, env, undefined);
}

/**
 * Parse a deployment manifest: the full `{"modulesContent": {"$edgeAgent": {"properties.desired": …}}}`,
 * just the `$edgeAgent` desired properties, or `{"modules": …}`. `systemModules` are ignored (edgeAgent
 * and edgeHub have no meaning here). Relative images resolve against `baseDir`. With `capabilities`, each
 * module's grants are also configured (checked) by them, as the runtime does again at deploy.
 */
export function parseManifest(doc: unknown, baseDir?: string, capabilities?: readonly Capability[]): ModuleSpec[] {
  const d = doc as Record<string, any> | null;
  const desired = d?.modulesContent?.['$edgeAgent']?.['properties.desired'] ?? d?.['properties.desired'] ?? d;
  if (!desired || typeof desired !== 'object' || typeof desired.modules !== 'object' || desired.modules === null) {
    throw new RuntimeError('invalid', 'manifest: no "modules" (expected modulesContent.$edgeAgent["properties.desired"].modules)');
  }
  if (desired.schemaVersion !== undefined && !['1.0', '1.1'].includes(desired.schemaVersion)) {
    throw new RuntimeError('invalid', `manifest: schemaVersion "${desired.schemaVersion}" is not supported (1.0, 1.1)`);
  }
  const entries = Object.entries(desired.modules as Record<string, unknown>);
  if (entries.length > MAX_MODULES) throw new RuntimeError('invalid', `manifest: more than ${MAX_MODULES} modules`);
  return entries.map(([name, raw]) => {
    if (!nameSchema.safeParse(name).success) throw new RuntimeError('invalid', `manifest: invalid module name "${name.slice(0, 80)}"`);
    refuseVersionClaim(name, raw);
    const r = manifestModuleSchema.safeParse(raw);
    if (!r.success) throw new RuntimeError('invalid', `manifest: module "${name}": ${zodMessage(r.error)}`);
    const env = Object.fromEntries(Object.entries(r.data.env ?? {}).map(([k, v]) => [k, String(v.value)]));
    if (Object.keys(env).length > MAX_ENV_VARS) throw new RuntimeError('invalid', `manifest: module "${name}": more than ${MAX_ENV_VARS} env vars`);
    return toSpec(name, r.data, env, baseDir, capabilities);
  });
}

/**
 * The daemon's `builtin:default` deployment: the sample `hello` module, granted its workload identity
 * (it logs a SAS token's expiry and its server certificate at start). A runtime that deploys it must
 * register the `edgeward:workload/identity` capability, as the daemon does.
 */
export function builtinDefaultManifest(): ModuleSpec[] {
  return parseManifest({ modules: { hello: {
    settings: { image: 'builtin:hello' },
    restartPolicy: 'on-failure',
    env: { GREETING: { value: 'Hello from Edgeward' } },
    capabilities: ['edgeward:workload/identity'],
  } } });
}
