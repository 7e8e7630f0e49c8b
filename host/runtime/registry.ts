/**
 * Registrations (DESIGN "Nouns"): what the runtime knows about a module before it runs. One JSON file
 * under the state directory, rewritten atomically (temp + fsync + rename + fsync dir) on every change,
 * so a kill -9 leaves the previous or the next set, never a half.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { SerialStateFile } from '../state/dir.js';
import { RuntimeError } from './errors.js';
import { signatureMaterialSchema, UNSIGNED } from './signature.js';
import { codeUnitOrder } from '../../hsm/support/order.js';

/** A registration's probe settings (all optional; DEFAULT_HEALTH fills the rest). */
export const healthSettingsSchema = z
  .object({
    interval_ms: z.number().int().min(50).max(3_600_000),
    timeout_ms: z.number().int().min(10).max(600_000),
    failure_threshold: z.number().int().min(1).max(100),
  })
  .partial()
  .strict();
export type HealthSettings = z.infer<typeof healthSettingsSchema>;

/** Docker HEALTHCHECK's interval and retries; a shorter timeout (a probe must be cheap). */
export const DEFAULT_HEALTH: Required<HealthSettings> = { interval_ms: 30_000, timeout_ms: 5_000, failure_threshold: 3 };

export const RESTART_POLICIES = ['never', 'on-failure', 'on-unhealthy', 'always'] as const;
export type RestartPolicy = (typeof RESTART_POLICIES)[number];
export const MODULE_KINDS = ['module', 'security-extension', 'confidential'] as const;

/** Caps on what a registration may carry (STYLE: every list and string crossing a boundary has one). */
export const MAX_ENV_VARS = 128;
export const MAX_ENV_VALUE_BYTES = 4096;
export const MAX_GRANTS = 32;
/** Most `network.hosts` entries a registration may carry. */
export const MAX_NETWORK_HOSTS = 64;
/** Longest host pattern or request authority (RFC 1035 name, `:`, port, brackets); the http capability parses them. */
export const MAX_AUTHORITY_LENGTH = 262;

/** Hosts a module may reach with `wasi:http/outgoing-handler` (patterns checked at deploy, hosts.ts). */
export const networkSchema = z
  .object({ hosts: z.array(z.string().min(1).max(MAX_AUTHORITY_LENGTH)).max(MAX_NETWORK_HOSTS) })
  .strict();

export const limitsOverrideSchema = z
  .object({
    memory_mib: z.number().int().min(1).max(4096),
    call_timeout_ms: z.number().int().min(1).max(600_000),
    max_value_bytes: z.number().int().min(1024).max(64 * 1024 * 1024),
  })
  .partial()
  .strict();

export const registrationSchema = z
  .object({
    name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/),
    generationId: z.string().min(1).max(64),
    /** Where the bytes came from (file path or https URL), reported as `settings.image`. */
    source: z.string().min(1).max(2048),
    /** sha256 of the component bytes measured at create/update: `sha256:<hex>`. */
    digest: z.string().regex(/^sha256:[0-9a-f]{64}$/),
    /** For a confidential module (whose digest is the package's): sha256 of the decrypted component, what runs. */
    plaintextDigest: z.string().regex(/^sha256:[0-9a-f]{64}$/).optional(),
    /** The verified signer: `sha256:<hex of its SPKI>`, or "unsigned" (signature.ts). */
    signer: z.string().max(256).default(UNSIGNED),
    /** Subject of the signer's certificate, when the signer was a certificate. */
    signerSubject: z.string().max(1024).optional(),
    /** The signature checked at create and at every start; absent for an unsigned module. */
    signature: signatureMaterialSchema.optional(),
    /** The signed security version (rollback.ts) read from the component's bytes; absent when none counted. */
    securityVersion: z.number().int().min(0).optional(),
    kind: z.enum(MODULE_KINDS).default('module'),
    capabilities: z.array(z.string().max(128)).max(MAX_GRANTS).default([]),
    /** Granted outbound hosts, with the `wasi:http/outgoing-handler` capability (never without it). */
    network: networkSchema.optional(),
    limits: limitsOverrideSchema.default({}),
    /** Health probe settings (health.ts), for a component that exports `edgeward:module/health`. */
    health: healthSettingsSchema.optional(),
    restartPolicy: z.enum(RESTART_POLICIES).default('on-unhealthy'),
    desiredStatus: z.enum(['running', 'stopped']).default('running'),
    startupOrder: z.number().int().min(0).max(4294967295).default(4294967295),
    env: z.record(z.string().max(256), z.string().max(MAX_ENV_VALUE_BYTES)).refine((e) => Object.keys(e).length <= MAX_ENV_VARS, `at most ${MAX_ENV_VARS} env vars`).default({}),
    /** Free-form settings handed to the guest's start(config). */
    settings: z.record(z.string(), z.unknown()).default({}),
  })
  .strict();

export type Registration = z.infer<typeof registrationSchema>;
export type RegistrationInput = z.input<typeof registrationSchema>;

const fileSchema = z.object({ version: z.literal(1), modules: z.array(registrationSchema) });

export class Registry {
  private readonly byName = new Map<string, Registration>();
  private readonly store: SerialStateFile;

  private constructor(private readonly file: string) {
    this.store = new SerialStateFile(file);
  }

  static async open(stateDir: string): Promise<Registry> {
    const dir = path.join(stateDir, 'runtime');
    await fs.mkdir(dir, { recursive: true, mode: 0o700 });
    const reg = new Registry(path.join(dir, 'registry.json'));
    const text = await fs.readFile(reg.file, 'utf8').catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') return undefined;
      throw e;
    });
    if (text !== undefined) {
      const parsed = fileSchema.parse(JSON.parse(text));
      for (const m of parsed.modules) reg.byName.set(m.name, m);
    }
    return reg;
  }

  get(name: string): Registration | undefined {
    return this.byName.get(name);
  }

  /** The registration of `name`; `not-found` when there is none. */
  require(name: string): Registration {
    const r = this.byName.get(name);
    if (!r) throw new RuntimeError('not-found', `module "${name}" not found`);
    return r;
  }

  all(): Registration[] {
    return [...this.byName.values()].sort((a, b) => codeUnitOrder(a.name, b.name));
  }

  async put(r: Registration): Promise<void> {
    this.byName.set(r.name, r);
    await this.persist();
  }

  async delete(name: string): Promise<void> {
    this.byName.delete(name);
    await this.persist();
  }

  /** Writes are serialised; each writes the whole current set. */
  private persist(): Promise<void> {
    return this.store.write({ version: 1, modules: this.all() });
  }
}
