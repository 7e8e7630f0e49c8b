/**
 * Admission: what a module passes before it is registered, and again at every start. The bytes are
 * measured against their pin (the stored copy against its registration), the signature verified under
 * this device's trust, every capability's grant configured, the imports planned onto granted capabilities,
 * and the component's declared types checked against the host's WIT (host/boundary). A refusal is an
 * event and a typed error; nothing is persisted on failure.
 */
import { randomUUID } from 'node:crypto';
import type { LimitsConfig } from '../config/schema.js';
import { BoundaryTypeError, checkBoundary, componentTypes, hostInterface, type ExtraInterfaces } from '../boundary/check.js';
import type { ComponentType, InstanceType } from '../boundary/types.js';
import { configureGrants, planLinks, unversioned, type Capability } from './capabilities.js';
import { IntegrityError, RuntimeError } from './errors.js';
import type { RuntimeEvents } from './events.js';
import { measure, type CoreModule, type Digest, type Loader, type Prepared } from './loader.js';
import { readSource } from './source.js';
import { Phases } from './phases.js';
import type { ModuleSpec } from './manifest.js';
import type { Registration } from './registry.js';
import type { RollbackGuard } from './rollback.js';
import { loadSignature, SignatureError, UNSIGNED, type SignatureMaterial } from './signature.js';
import { TrustStore, verifyModule, type ModuleTrust, type SignerIdentity } from './trust.js';
import { CONFIDENTIAL_KIND, ConfidentialRefusal, isConfidentialPackage, openConfidential, type OpenedComponent, type TeeResolver } from './confidential/open.js';
import type { GlueCodeStore } from './glue-code-store.js';

/** Stands for bytes a start did not read (Admission.unchangedUnsigned); never parsed. */
const EMPTY = new Uint8Array(0);

/** The kind whose signer must be in `[security_extensions] trusted_signers`, under the "required" policy. */
const EXTENSION_KIND = 'security-extension';

export interface AdmissionOptions {
  loader: Loader;
  /** Every capability a module can be granted (RuntimeOptions.capabilities). */
  capabilities: readonly Capability[];
  trust: ModuleTrust;
  /** The daemon's default limits; a registration's own override them. */
  limits: LimitsConfig;
  events: RuntimeEvents;
  /** The daemon's TEE backend, resolved lazily, for confidential modules (host/runtime/confidential). */
  tee?: TeeResolver;
  /** Anti-rollback (rollback.ts): the security version floors; none checks no version. */
  rollback?: RollbackGuard;
}

/** What one start needs: the checked, compiled component and the capabilities to link. */
export interface StartPlan {
  glueSource: string;
  coreModules: Record<string, CoreModule>;
  capabilities: readonly Capability[];
  /** The host's WIT types of every linked interface, for the worker's argument checks. */
  interfaceTypes: Record<string, InstanceType>;
  limits: LimitsConfig;
  /** The component exports `edgeward:module/health`: the supervisor probes it (health.ts). */
  health: boolean;
  /** Settles when the measured bytes verified and their import types checked; the guest is instantiated only then. */
  gate: Promise<void>;
  /** The glue's code cache on disk (loader.ts Prepared.codeCache). */
  codeCache?: GlueCodeStore;
}

export class Admission {
  /** WIT types that capabilities bring besides the host's generated table (host/boundary). */
  private readonly extraInterfaces: ExtraInterfaces;
  /**
   * Declared component types by digest (read once; a component's bytes never change under its digest).
   * `prune` drops the digests no registration uses any more.
   */
  private readonly declared = new Map<string, ComponentType>();

  constructor(private readonly opts: AdmissionOptions) {
    this.extraInterfaces = Object.assign({}, ...opts.capabilities.map((c) => c.types ?? {}));
  }

  /** Every capability's deploy-time check (granted or not): a refusal is `invalid` (400). */
  configure(spec: ModuleSpec): void {
    const refused = configureGrants({ module: spec.name, grants: spec.capabilities, ...(spec.network ? { network: spec.network } : {}) }, this.opts.capabilities);
    if (refused) throw new RuntimeError('invalid', refused);
  }

  /** The module was removed or replaced: capabilities drop what they kept for it. */
  forget(name: string): void {
    for (const c of this.opts.capabilities) c.forget?.(name);
  }

  /** Drop the declared types of every digest not in `inUse` (the digests of the registrations). */
  prune(inUse: ReadonlySet<string>): void {
    for (const digest of this.declared.keys()) if (!inUse.has(digest)) this.declared.delete(digest);
    this.opts.loader.forgetInMemory(inUse);
  }

  /** The limits a module runs under: the daemon's defaults, overridden by its own. */
  limitsOf(r: Pick<Registration, 'limits'>): LimitsConfig {
    return { ...this.opts.limits, ...r.limits };
  }

  /**
   * Measure and check a spec before anything is registered: digest pin, signature, component validity,
   * grants against imports, types, memory ceiling. Resolves to the registration and the bytes measured.
   */
  async admit(spec: ModuleSpec, old?: Registration, phases = new Phases()): Promise<[Registration, Uint8Array]> {
    this.configure(spec);
    this.checkKinds(spec);
    const bytes = await phases.time('read', () => readSource(spec.source, spec.digest));
    const measured = phases.sync('measure', () => this.measurePinned(spec, bytes));
    const sealed = await this.openSealed(spec, bytes);
    // The signature is checked before anything parses the bytes (as the measurement is).
    const material = spec.signature ? await loadSignature(spec.signature).catch((err: unknown) => this.refused(spec.name, err)) : undefined;
    const who = sealed?.who ?? (await phases.time('verify', () => this.verifySignature(spec.name, spec.kind, bytes, material)));
    // Keeping the content-addressed copy (fsync'd) overlaps the transpile; both must succeed.
    const storing = phases.time('store', () => this.opts.loader.store(bytes, measured));
    storing.catch(() => undefined);
    const prepared = await phases.time('prepare', () => sealed
      ? this.opts.loader.prepare(sealed.plaintextDigest as Digest, async () => sealed.component, { disk: false })
      : this.opts.loader.prepare(measured, async () => bytes));
    if (!prepared.exports.some((e) => e.startsWith('edgeward:module/lifecycle'))) {
      throw new RuntimeError('invalid', `module "${spec.name}": component does not export edgeward:module/lifecycle (build it for the "module" world in wit/module)`);
    }
    this.checkKinds(spec, prepared.imports);
    const securityVersion = await this.guardVersion(spec.name, who.signer, sealed?.component ?? bytes, false);
    const plan = planLinks(spec.name, prepared.imports, spec.capabilities, this.opts.capabilities);
    if (!plan.ok) {
      this.opts.events.record(spec.name, 'denied', plan.message);
      throw new RuntimeError('denied', plan.message);
    }
    this.knowTypes(measured, prepared);
    phases.sync('types', () => this.checkTypes(spec.name, measured, sealed?.component ?? bytes));
    await phases.time('compile', () => this.opts.loader.compile(prepared, this.limitsOf(spec).memory_mib));
    await storing;
    const { digest: _pin, signature: _src, ...rest } = spec;
    const generationId = old && old.digest === measured && old.signer === who.signer ? old.generationId : randomUUID();
    const plaintext = sealed ? { plaintextDigest: sealed.plaintextDigest } : {};
    return [{ ...rest, digest: measured, generationId, ...who, ...plaintext, ...(material ? { signature: material } : {}), ...(securityVersion !== undefined ? { securityVersion } : {}) }, bytes];
  }

  /**
   * Everything one start of `r` needs, checked again: the stored bytes measured (or `justMeasured`, read
   * by `admit` moments ago), the signature under the current trust, the link plan, the memory ceiling.
   * Measuring runs concurrently with reading the cache and compiling; the returned `gate` holds the
   * guest back until the measurement matched and the types checked.
   */
  async atStart(r: Registration, justMeasured?: Uint8Array, phases = new Phases()): Promise<StartPlan> {
    const limits = this.limitsOf(r);
    const reread = (): Promise<Uint8Array> => this.loadStored(r, phases);
    const measuring = justMeasured ? Promise.resolve(justMeasured) : this.unchangedUnsigned(r).then((same) => (same ? undefined : reread()));
    const verified = measuring.then((bytes) => phases.time('verify', () => (r.kind === CONFIDENTIAL_KIND ? this.openAtStart(r, bytes ?? EMPTY) : this.verifyAtStart(r, bytes))));
    verified.catch(() => undefined);
    const prepared = await phases.time('prepare', () => r.kind === CONFIDENTIAL_KIND
      ? this.opts.loader.prepare((r.plaintextDigest ?? '') as Digest, () => verified as Promise<Uint8Array>, { disk: false })
      : this.opts.loader.prepare(r.digest as Digest, () => verified.then((b) => b ?? reread())));
    const plan = planLinks(r.name, prepared.imports, r.capabilities, this.opts.capabilities);
    if (!plan.ok) throw new RuntimeError('denied', plan.message);
    this.knowTypes(r.digest, prepared);
    // The import types against the host's WIT as it is now (it may have changed since the deploy).
    const gate = verified.then(async (bytes) => {
      const typed = bytes ?? (this.declared.has(r.digest) ? undefined : await reread());
      phases.sync('types', () => this.checkTypes(r.name, r.digest, typed));
      await this.guardVersion(r.name, r.signer, typed ?? EMPTY, true);
    });
    gate.catch(() => undefined);
    const coreModules = await phases.time('compile', () => this.opts.loader.compile(prepared, limits.memory_mib));
    const health = prepared.exports.some((e) => e.startsWith('edgeward:module/health'));
    return { glueSource: prepared.glueSource, coreModules, capabilities: plan.capabilities, interfaceTypes: this.linkedTypes(plan.capabilities), limits, gate, health, ...(prepared.codeCache ? { codeCache: prepared.codeCache } : {}) };
  }

  /**
   * A restart of an unsigned module whose stored copy is, by its file identity, the one this daemon
   * measured (Loader.storedUnchanged) and whose declared types are known: nothing at start needs its
   * bytes (no signature to verify, no version an unsigned component can claim), so they are neither read
   * nor hashed again. A signed module's bytes are always read, measured and verified.
   */
  private async unchangedUnsigned(r: Registration): Promise<boolean> {
    if (r.kind === CONFIDENTIAL_KIND || r.signer !== UNSIGNED || r.signature || !this.declared.has(r.digest)) return false;
    return this.opts.loader.storedUnchanged(r.digest as Digest);
  }

  /**
   * Anti-rollback (rollback.ts) over the verified bytes: a signed component's security version below its
   * (signer, module) floor is refused (a `rollback` event); at a start (`advance`) the floor is raised to
   * it before the instance runs. Resolves to the version that counted (undefined: none, or unsigned).
   */
  private async guardVersion(name: string, signer: string, bytes: Uint8Array, advance: boolean): Promise<number | undefined> {
    if (!this.opts.rollback) return undefined;
    const c = await this.opts.rollback.check(name, signer, bytes, advance);
    return c.enforced ? c.version : undefined;
  }

  /** The digest of `bytes`, which must be the one the spec pins if it pins one (an integrity event if not). */
  private measurePinned(spec: ModuleSpec, bytes: Uint8Array): Digest {
    const measured = measure(bytes);
    if (spec.digest && spec.digest !== measured) {
      const msg = `module "${spec.name}": component ${spec.source} measured ${measured} but the deployment pins ${spec.digest}; refused`;
      this.integrityViolation(spec.name, spec.digest, new IntegrityError(msg, measured));
    }
    return measured;
  }

  /** The stored copy of `r`'s component, measured again (loader.ts); a mismatch or a missing copy is an integrity event. */
  private loadStored(r: Registration, phases: Phases): Promise<Uint8Array> {
    return this.opts.loader.loadStored(r.name, r.digest as Digest, phases).catch((err: unknown) => this.integrityViolation(r.name, r.digest, err));
  }

  /** Record an integrity event (with the digest measured, when `err` carries one) and throw `err`. */
  private integrityViolation(name: string, expected: string, err: unknown): never {
    const measured = err instanceof IntegrityError ? err.measured : undefined;
    this.opts.events.record(name, 'integrity-violation', (err as Error).message, { ...(measured ? { measured } : {}), expected });
    throw err;
  }

  /**
   * The typed boundary: the component's declared types of every interface it imports (all linked, the
   * link plan said) and of the lifecycle the host calls, against the host's WIT. A mismatch is an event
   * and a `type-mismatch` error naming interface, function and the first difference.
   */
  /** The declared types the loader kept in the sealed cache for this very digest: not decoded again. */
  private knowTypes(digest: string, prepared: Prepared): void {
    if (prepared.declared && prepared.digest === digest && !this.declared.has(digest)) this.declared.set(digest, prepared.declared);
  }

  private checkTypes(name: string, digest: string, bytes: Uint8Array | undefined): void {
    try {
      let types = this.declared.get(digest);
      if (!types) {
        if (!bytes) throw new RuntimeError('failed', `module "${name}": its component types are not known; start it again`);
        types = componentTypes(name, bytes);
        this.declared.set(digest, types);
      }
      checkBoundary(name, types, this.extraInterfaces);
    } catch (err) {
      if (!(err instanceof BoundaryTypeError)) throw err;
      this.opts.events.record(name, 'type-mismatch', err.message);
      throw new RuntimeError('type-mismatch', err.message);
    }
  }

  /** The host's WIT types of every (non-private) interface the capabilities link, for the worker's argument checks. */
  private linkedTypes(caps: readonly Capability[]): Record<string, InstanceType> {
    const out: Record<string, InstanceType> = {};
    for (const c of caps) {
      for (const iface of c.interfaces) {
        const t = hostInterface(iface, this.extraInterfaces);
        if (t) out[iface] = t;
      }
    }
    return out;
  }

  /**
   * Grants kept to some kinds (`Capability.kinds`: `edgeward:monitor/*` for security extensions) asked for
   * by another kind, or whose interfaces its component imports: refused at deploy, an event and a `denied`
   * error naming every such grant and what to do.
   */
  private checkKinds(spec: ModuleSpec, imports: readonly string[] = []): void {
    const kept = this.opts.capabilities.filter((c) => c.kinds && !c.kinds.includes(spec.kind)
      && (spec.capabilities.includes(c.name) || imports.some((i) => c.interfaces.includes(unversioned(i)))));
    if (kept.length === 0) return;
    const kinds = [...new Set(kept.flatMap((c) => c.kinds ?? []))].map((k) => `"${k}"`).join(' or ');
    const msg = `module "${spec.name}" is of kind "${spec.kind}" and asks for ${kept.map((c) => `"${c.name}"`).join(', ')}, which only a component of kind ${kinds} may be granted`
      + (kinds.includes(EXTENSION_KIND) ? ` (set "kind": "${EXTENSION_KIND}" and sign it with a signer listed in [security_extensions] trusted_signers)` : '');
    this.opts.events.record(spec.name, 'denied', msg);
    throw new RuntimeError('denied', msg);
  }

  /**
   * verifyModule under this device's trust for `kind`: a security extension only under the "required"
   * policy and `[security_extensions] trusted_signers`, whatever `[modules]` says. A refusal is an event
   * and a typed error.
   */
  private async verifySignature(name: string, kind: string, bytes: Uint8Array, material: SignatureMaterial | undefined): Promise<SignerIdentity> {
    if (kind !== EXTENSION_KIND) return verifyModule(name, bytes, material, this.opts.trust).catch((err: unknown) => this.refused(name, err));
    const trust: ModuleTrust = { policy: 'required', store: this.opts.trust.extensions ?? TrustStore.empty() };
    return verifyModule(name, bytes, material, trust).catch((err: unknown) => this.refused(name, extensionRefusal(name, err)));
  }

  private refused(name: string, err: unknown): never {
    if (err instanceof SignatureError) this.opts.events.record(name, 'signature-refused', `${err.reason}: ${err.message}`);
    throw err;
  }

  /**
   * The start-time check over the bytes just measured: the signature still verifies under the current
   * trust, by the signer the registration recorded. Resolves to the same buffer.
   */
  private async verifyAtStart<B extends Uint8Array | undefined>(r: Registration, bytes: B): Promise<B> {
    // Unread bytes (unchangedUnsigned): no signature, so verifyModule checks only the policy.
    const who = await this.verifySignature(r.name, r.kind, bytes ?? EMPTY, r.signature);
    if (who.signer !== r.signer) {
      this.refused(r.name, new SignatureError('untrusted-signer', `module "${r.name}": verified signer ${who.signer} is not the registered signer ${r.signer}`));
    }
    return bytes;
  }

  /**
   * A confidential module's package (host/runtime/confidential/open.ts): undefined for another kind, whose image
   * must not be a package. Parsed, signature verified, key unwrapped only if the TEE policy holds now,
   * decrypted in memory, digest checked. Refusals are events (`policy-mismatch` naming the PCR).
   */
  private async openSealed(spec: ModuleSpec, bytes: Uint8Array): Promise<OpenedComponent | undefined> {
    const sealed = isConfidentialPackage(bytes);
    if (spec.kind !== CONFIDENTIAL_KIND) {
      if (sealed) throw new RuntimeError('invalid', `module "${spec.name}": ${spec.source} is a confidential package (.cwasm), not a component: deploy it with "kind": "confidential"`);
      return undefined;
    }
    if (!sealed) throw new RuntimeError('invalid', `module "${spec.name}" is of kind "confidential" but ${spec.source} is not a confidential package (.cwasm): seal it with \`edgeward confidential seal\`, or deploy it as kind "module"`);
    if (spec.signature) throw new RuntimeError('invalid', `module "${spec.name}": a confidential package carries its own signature (edgeward confidential seal --sign); remove "signature"`);
    return this.openPackage(spec.name, bytes);
  }

  private async openPackage(name: string, bytes: Uint8Array): Promise<OpenedComponent> {
    try {
      return await openConfidential(name, bytes, this.opts.trust, this.opts.tee);
    } catch (err) {
      if (err instanceof ConfidentialRefusal && err.reason === 'policy-mismatch') this.opts.events.record(name, 'policy-mismatch', err.message);
      return this.refused(name, err);
    }
  }

  /** The start-time check of a confidential module: the stored package opened again, by the registered signer, to the registered plaintext. */
  private async openAtStart(r: Registration, bytes: Uint8Array): Promise<Uint8Array> {
    const opened = await this.openPackage(r.name, bytes);
    if (opened.who.signer !== r.signer) {
      this.refused(r.name, new SignatureError('untrusted-signer', `module "${r.name}": verified signer ${opened.who.signer} is not the registered signer ${r.signer}`));
    }
    if (opened.plaintextDigest !== r.plaintextDigest) throw new IntegrityError(`module "${r.name}": the package decrypted to ${opened.plaintextDigest}, the registration records ${String(r.plaintextDigest)}`, opened.plaintextDigest);
    return opened.component;
  }
}

/** A security extension's signature refusal, told in terms of `[security_extensions]`. */
function extensionRefusal(name: string, err: unknown): unknown {
  if (!(err instanceof SignatureError)) return err;
  const rule = 'a security extension must be signed by a signer listed in [security_extensions] trusted_signers, whatever [modules] signature_policy says';
  if (err.reason === 'missing-signature') return new SignatureError('missing-signature', `security extension "${name}" is not signed: ${rule}`);
  if (err.reason === 'untrusted-signer') return new SignatureError('untrusted-signer', `${err.message} (${rule})`);
  return err;
}
