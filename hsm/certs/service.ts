/**
 * The certificate service (the role of aziot-certd for Edgeward): owns the Edge CA, issues module server
 * and identity certificates signed by it, and assembles the trust bundle. Private keys of CAs stay in the
 * key service; only certificates are written, atomically, under `<state_dir>/certs/`.
 */
import path from 'node:path';
import { promises as fs } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { CertsConfig } from '../support/options.js';
import type { Logger } from '../support/log.js';
import { writeFileAtomic } from '../support/atomic.js';
import { readStateJson, writeStateJson } from '../support/state-file.js';
import { StartupError } from '../support/errors.js';
import { DAEMON_CALLER, type KeyService } from '../keys/index.js';
import { signingKeyFor } from './hsm-crypto.js';
import { dnValue, splitSans } from './names.js';
import { issueCertificateDer, type DerIssuer, type IssuedDer } from './der.js';
import { Certificate, pemChain, readPemCerts } from './pem.js';
import { DEFAULT_RENEW_POLICY, renewalDue, retryInterval, type RenewPolicy } from './renewal.js';

/** Default lifetime of module certificates (aziot-certd's default `expiry_days`). */
export const MODULE_CERT_DAYS = 30;
/** Quickstart root CA lifetime, as a multiple of the Edge CA lifetime. */
const ROOT_LIFETIME_FACTOR = 4;
/** Clock skew allowance: certificates start this much in the past. */
const BACKDATE_MS = 5 * 60_000;
const DAY_MS = 86_400_000;
/** Longest timer Node accepts (setTimeout clamps above 2^31-1 ms). */
const MAX_TIMER_MS = 2 ** 31 - 1;

interface EdgeCaState {
  mode: 'quickstart' | 'preloaded';
  generation: number;
  keyId?: string;
  keyUri?: string;
  rootKeyId?: string;
  /** Edge CA first, then its issuers. */
  chainPem: string;
}

export interface IssuedCertificate {
  /** Leaf first, then the Edge CA chain. */
  chainPem: string;
  notAfter: Date;
}

export interface CertServiceOptions {
  config: CertsConfig;
  stateDir: string;
  keys: KeyService;
  logger: Logger;
  deviceId: string;
  hubHostname: string;
  /** Injected clock, for renewal tests. */
  now?: () => Date;
}

export class CertService {
  private state!: EdgeCaState;
  private chain!: Certificate[];
  private timer?: NodeJS.Timeout;
  private userTrust = '';
  private readonly listeners = new Set<() => void>();

  private constructor(private readonly o: CertServiceOptions & { now: () => Date }) {}

  static async open(opts: CertServiceOptions): Promise<CertService> {
    const svc = new CertService({ ...opts, now: opts.now ?? (() => new Date()) });
    await fs.mkdir(svc.dir, { recursive: true, mode: 0o700 });
    await svc.loadUserTrustBundle();
    await svc.ensureEdgeCa();
    return svc;
  }

  get dir(): string {
    return path.join(this.o.stateDir, 'certs');
  }

  private get statePath(): string {
    return path.join(this.dir, 'edge-ca.json');
  }

  private get policy(): RenewPolicy | undefined {
    const ca = this.o.config.edge_ca;
    if ('cert' in ca) return undefined; // preloaded: renewed by whoever issued it
    const r = ca.auto_renew;
    return r ? { rotateKey: r.rotate_key, threshold: r.threshold, retry: r.retry } : DEFAULT_RENEW_POLICY;
  }

  /** The Edge CA certificate (first of the chain). */
  get edgeCa(): Certificate {
    return this.chain[0]!;
  }

  /** Called after the Edge CA was renewed (the runtime restarts modules so their certs are reissued). */
  onRenewed(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Edge CA chain plus the configured `trust_bundle_cert`. */
  trustBundle(): string {
    return pemChain(this.chain) + this.userTrust;
  }

  /** IoT Edge's manifest trust bundle: never configured there either, so empty. */
  manifestTrustBundle(): string {
    return '';
  }

  private async loadUserTrustBundle(): Promise<void> {
    const uri = this.o.config.trust_bundle_cert;
    if (!uri) return;
    const file = fileURLToPath(uri);
    const text = await fs.readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
      throw new StartupError(`trust_bundle_cert ${file}: ${err.code ?? err.message}`);
    });
    try {
      const certs = readPemCerts(text);
      if (certs.length === 0) throw new Error('no certificate');
      this.userTrust = pemChain(certs);
    } catch (err) {
      throw new StartupError(`trust_bundle_cert ${file} is not a PEM certificate list (${(err as Error).message})`);
    }
  }

  private async ensureEdgeCa(): Promise<void> {
    const ca = this.o.config.edge_ca;
    if ('cert' in ca) return this.loadPreloaded(ca.cert, ca.pk);
    const saved = await readStateJson<EdgeCaState>(this.statePath);
    if (saved && saved.mode === 'quickstart' && saved.keyId) {
      this.adopt(saved);
      if (this.o.now() >= this.edgeCa.notAfter) {
        this.o.logger.warn({ notAfter: this.edgeCa.notAfter }, 'Edge CA expired; issuing a new one');
        await this.renew();
      }
    } else {
      await this.createQuickstart(1);
    }
  }

  private adopt(state: EdgeCaState): void {
    this.state = state;
    this.chain = readPemCerts(state.chainPem);
  }

  private async loadPreloaded(certUri: string, pkUri: string): Promise<void> {
    const file = fileURLToPath(certUri);
    const text = await fs.readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
      throw new StartupError(`[edge_ca] cert ${file}: ${err.code ?? err.message}`);
    });
    const chain = readPemCerts(text);
    if (chain.length === 0) throw new StartupError(`[edge_ca] cert ${file} holds no PEM certificate`);
    const handle = await this.o.keys.loadKeyByUri(DAEMON_CALLER, pkUri);
    const spki = Buffer.from(await this.o.keys.getPublicKey(DAEMON_CALLER, handle));
    if (!spki.equals(chain[0]!.spki)) throw new StartupError(`[edge_ca] pk ${pkUri} does not match the public key of ${file}`);
    this.state = { mode: 'preloaded', generation: 0, keyUri: pkUri, chainPem: pemChain(chain) };
    this.chain = chain;
    await this.writeCopies();
  }

  private async issuerKey(): Promise<DerIssuer> {
    const { keys } = this.o;
    const handle = this.state.keyUri ? await keys.loadKeyByUri(DAEMON_CALLER, this.state.keyUri) : await keys.loadKey(DAEMON_CALLER, { id: this.state.keyId! });
    return { certDer: this.edgeCa.der, key: signingKeyFor(handle, await keys.getKeyType(DAEMON_CALLER, handle)) };
  }

  /** Quickstart: a self-signed root and an Edge CA under it, keys created in the key service. */
  private async createQuickstart(generation: number): Promise<void> {
    const ca = this.o.config.edge_ca;
    const days = 'auto_generated_edge_ca_expiry_days' in ca ? ca.auto_generated_edge_ca_expiry_days : 90;
    const { keys } = this.o;
    const now = this.o.now();
    const notBefore = new Date(now.getTime() - BACKDATE_MS);
    const rootKeyId = `edge-ca-root.${generation}`;
    const keyId = `edge-ca.${generation}`;
    const rootHandle = await keys.createKeyPair(DAEMON_CALLER, { id: rootKeyId }, 'ec-p256');
    const caHandle = await keys.createKeyPair(DAEMON_CALLER, { id: keyId }, 'ec-p256');
    const rootKey = signingKeyFor(rootHandle, 'ec-p256');
    const subject = (cn: string) => `CN=${dnValue(cn)}`;
    const root = await issueCertificateDer(
      keys,
      { subject: subject(`Edgeward root CA ${this.o.deviceId}`), publicKey: await keys.getPublicKey(DAEMON_CALLER, rootHandle), notBefore, notAfter: new Date(now.getTime() + ROOT_LIFETIME_FACTOR * days * DAY_MS), kind: 'root-ca' },
      { selfKey: rootKey },
    );
    const edge = await issueCertificateDer(
      keys,
      { subject: subject(`aziot-edge CA ${this.o.deviceId}`), publicKey: await keys.getPublicKey(DAEMON_CALLER, caHandle), notBefore, notAfter: new Date(now.getTime() + days * DAY_MS), kind: 'intermediate-ca' },
      { certDer: root.der, key: rootKey },
    );
    const previous = this.state;
    const next: EdgeCaState = { mode: 'quickstart', generation, keyId, rootKeyId, chainPem: pemChain([edge, root]) };
    // One atomic write switches to the new CA; old keys go only after it is durable.
    await writeStateJson(this.statePath, next);
    this.adopt(next);
    await this.writeCopies();
    if (previous?.keyId && previous.keyId !== keyId) await this.deleteKeys([previous.keyId, previous.rootKeyId]);
    this.o.logger.info({ generation, notAfter: edge.notAfter }, 'quickstart Edge CA issued');
  }

  private async deleteKeys(ids: (string | undefined)[]): Promise<void> {
    for (const id of ids) {
      if (!id) continue;
      try {
        await this.o.keys.deleteKey(DAEMON_CALLER, await this.o.keys.loadKey(DAEMON_CALLER, { id }));
      } catch (err) {
        this.o.logger.warn({ err, id }, 'could not delete a retired Edge CA key');
      }
    }
  }

  /** PEM copies for people and tools (openssl, `edgeward check`). */
  private async writeCopies(): Promise<void> {
    await writeFileAtomic(path.join(this.dir, 'edge-ca.pem'), this.edgeCa.toString('pem') + '\n');
    await writeFileAtomic(path.join(this.dir, 'trust-bundle.pem'), this.trustBundle());
  }

  /** When the Edge CA is due for renewal, or undefined if it is never auto-renewed. */
  renewalDue(): Date | undefined {
    const p = this.policy;
    return p ? renewalDue(this.edgeCa.notBefore, this.edgeCa.notAfter, p) : undefined;
  }

  /** Renew the Edge CA if due. Returns true when it was renewed. */
  async renewIfDue(): Promise<boolean> {
    const due = this.renewalDue();
    if (!due || this.o.now() < due) return false;
    await this.renew();
    return true;
  }

  private async renew(): Promise<void> {
    // Keys are always new per generation here; with rotate_key=false aziot reuses the key, which a
    // self-signed quickstart chain gains nothing from.
    await this.createQuickstart(this.state.generation + 1);
    for (const fn of this.listeners) fn();
  }

  /** Schedule renewal checks; retries after a failure per the policy's `retry`. */
  startRenewal(): void {
    const schedule = () => {
      const due = this.renewalDue();
      if (!due) return;
      const wait = Math.min(MAX_TIMER_MS, Math.max(0, due.getTime() - this.o.now().getTime()));
      this.timer = setTimeout(() => {
        this.renewIfDue().then(schedule, (err) => {
          const p = this.policy!;
          const retry = retryInterval(this.edgeCa.notBefore, this.edgeCa.notAfter, p);
          this.o.logger.error({ err, retryInMs: retry }, 'Edge CA renewal failed');
          this.timer = setTimeout(schedule, Math.min(retry, MAX_TIMER_MS));
          this.timer.unref();
        });
      }, wait);
      this.timer.unref();
    };
    schedule();
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer);
  }

  private validity(days = MODULE_CERT_DAYS): { notBefore: Date; notAfter: Date } {
    const now = this.o.now();
    const notAfter = new Date(Math.min(now.getTime() + days * DAY_MS, this.edgeCa.notAfter.getTime()));
    return { notBefore: new Date(now.getTime() - BACKDATE_MS), notAfter };
  }

  /**
   * A server certificate as IoT Edge issues it: CN = commonName; SAN = commonName (IP if it parses as one)
   * + DNS moduleName + any extra names; EKU serverAuth; lifetime capped at the Edge CA's.
   */
  async issueServerCertificate(module: string, commonName: string, publicKey: Uint8Array, extraSans: string[] = []): Promise<IssuedCertificate> {
    const names = [...new Set([commonName, module.replace(/^\$/, ''), ...extraSans])];
    const { dnsNames, ipAddresses } = splitSans(names);
    const cert = await issueCertificateDer(this.o.keys, { subject: `CN=${dnValue(commonName)}`, publicKey, kind: 'server', dnsNames, ipAddresses, ...this.validity() }, await this.issuerKey());
    return this.issued(cert);
  }

  /**
   * An identity certificate: CN = module; EKU clientAuth; the module's IoT Hub identity as a URI SAN
   * (`azureiot://{hub}/devices/{device}/modules/{module}`). IoT Edge puts that string in a DNS SAN with a
   * "URI: " prefix, which is not a valid DNS name; Edgeward uses the URI SAN it means.
   */
  async issueIdentityCertificate(module: string, publicKey: Uint8Array): Promise<IssuedCertificate> {
    const uri = `azureiot://${this.o.hubHostname}/devices/${encodeURIComponent(this.o.deviceId)}/modules/${encodeURIComponent(module)}`;
    const cert = await issueCertificateDer(this.o.keys, { subject: `CN=${dnValue(module)}`, publicKey, kind: 'client', uris: [uri], ...this.validity() }, await this.issuerKey());
    return this.issued(cert);
  }

  private issued(cert: IssuedDer): IssuedCertificate {
    return { chainPem: pemChain([cert, ...this.chain]), notAfter: cert.notAfter };
  }
}
