/**
 * The daemon's start-up preflight: what a config names must exist before anything starts (every file a
 * URI points to, the key backend) and the features this build does not have are refused. The daemon runs
 * it first thing at (re)start; `config apply`, `check` and `system restart` run the same function, so they
 * refuse (exit 2) exactly what the daemon would refuse, with every problem in one message.
 */
import { promises as fs, constants as fsc } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ConfigError, type LoadedConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { PKCS11_IDENTITY_KEY } from '../config/unsupported.js';
import { x509Source } from '../cloud/tls/config.js';
import { findPkcs11Engine } from '../cloud/tls/engine.js';

export type Problem = { path: string; message: string };

export interface PreflightOptions {
  /**
   * Also check what the services check themselves when they open (the key backend, the module signer
   * files): the CLI wants them up front; the daemon's own services say it with their hints.
   */
  services?: boolean;
}

/** Every problem the daemon would refuse this config for, in file order. */
export async function preflightProblems(config: Config, opts: PreflightOptions = {}): Promise<Problem[]> {
  const problems = [...unsupportedProblems(config), ...(await fileProblems(config))];
  if (opts.services) problems.push(...(await keyBackendProblems(config)), ...(await signerProblems(config)));
  return problems;
}

/** Throws one ConfigError (exit 2) naming every problem. */
export async function preflight(loaded: LoadedConfig, opts: PreflightOptions = {}): Promise<void> {
  const problems = await preflightProblems(loaded.config, opts);
  if (problems.length > 0) throw new ConfigError(loaded.source, problems);
}

/**
 * An X.509 identity whose `identity_pk` is `pkcs11:` signs its TLS handshakes in the key service's token
 * (host/cloud/tls): the key backend must be that token, and OpenSSL's PKCS#11 engine installed.
 */
function unsupportedProblems(config: Config): Problem[] {
  const src = x509Source(config);
  if (!src?.keyUri.startsWith('pkcs11:')) return [];
  const at = `provisioning.${src.origin === 'dps' ? 'attestation' : 'authentication'}.identity_pk`;
  if (config.keys.backend !== 'pkcs11') return [{ path: at, message: PKCS11_IDENTITY_KEY }];
  try {
    findPkcs11Engine();
    return [];
  } catch (err) {
    return [{ path: at, message: (err as Error).message }];
  }
}

type FileRef = { path: string; uri: string; pem: boolean; json?: boolean };

/** The file URIs a config names; `pem` ones must hold at least one certificate. */
function fileRefs(config: Config): FileRef[] {
  const refs: FileRef[] = [];
  const add = (path: string, uri: string | undefined, pem = false, json = false) => {
    if (uri?.startsWith('file://')) refs.push({ path, uri, pem, json });
  };
  add('trust_bundle_cert', config.trust_bundle_cert, true);
  const ca = config.edge_ca;
  if ('cert' in ca) {
    add('edge_ca.cert', ca.cert, true);
    add('edge_ca.pk', ca.pk);
  }
  const p = config.provisioning;
  if (p.source === 'dps') {
    const a = p.attestation;
    add('provisioning.payload', p.payload?.uri, false, true);
    if (a.method === 'symmetric_key') {
      const ref = a.symmetric_key ?? a.enrollment_group_key;
      add(`provisioning.attestation.${a.symmetric_key ? 'symmetric_key' : 'enrollment_group_key'}`, ref && 'uri' in ref ? ref.uri : undefined);
    } else if (a.method === 'x509') {
      add('provisioning.attestation.identity_cert', a.identity_cert, true);
      add('provisioning.attestation.identity_pk', a.identity_pk);
    }
  }
  if (p.source === 'manual' && 'authentication' in p) {
    const auth = p.authentication;
    if (auth.method === 'sas') add('provisioning.authentication.device_id_pk', 'uri' in auth.device_id_pk ? auth.device_id_pk.uri : undefined);
    else {
      add('provisioning.authentication.identity_cert', auth.identity_cert, true);
      add('provisioning.authentication.identity_pk', auth.identity_pk);
    }
  }
  return refs;
}

async function fileProblems(config: Config): Promise<Problem[]> {
  const out: Problem[] = [];
  for (const ref of fileRefs(config)) {
    const file = fileURLToPath(ref.uri);
    const text = await fs.readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => err);
    if (text instanceof Error) out.push({ path: ref.path, message: `cannot read ${file} (${text.code ?? text.message}): put the file there or fix the URI` });
    else if (ref.json && !isJson(text)) out.push({ path: ref.path, message: `${file} is not JSON: fix the DPS payload file` });
    else if (ref.pem && !(await holdsCertificate(text))) out.push({ path: ref.path, message: `${file} holds no PEM certificate ("-----BEGIN CERTIFICATE-----"): give the certificate file in PEM form` });
  }
  return out;
}

function isJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

async function holdsCertificate(text: string): Promise<boolean> {
  const { parsePemCerts } = await import('../../hsm/certs/issue.js'); // x509 only when a certificate is named
  try {
    return parsePemCerts(text).length > 0;
  } catch {
    return false;
  }
}

/** The key backend's library, PIN file or TPM device (the daemon's key store opens them at start). */
export async function keyBackendProblems(config: Config): Promise<Problem[]> {
  const keys = config.keys;
  if (keys.backend === 'pkcs11' && keys.pkcs11) {
    const p = keys.pkcs11;
    const out: Problem[] = [];
    if (!(await exists(p.library))) out.push({ path: 'keys.pkcs11.library', message: `PKCS#11 library not found: ${p.library}: install the vendor library or fix the path (SoftHSM2: /usr/lib/softhsm/libsofthsm2.so)` });
    if (p.pin === undefined && p.pin_file === undefined) out.push({ path: 'keys.pkcs11', message: 'needs pin or pin_file: give pin_file = "/etc/edgeward/pkcs11-pin" (0600)' });
    if (p.pin_file !== undefined && !(await exists(p.pin_file, fsc.R_OK))) out.push({ path: 'keys.pkcs11.pin_file', message: `cannot read ${p.pin_file}: write the user PIN there (chmod 600) or fix the path` });
    return out;
  }
  const dpsTpm = config.provisioning.source === 'dps' && config.provisioning.attestation.method === 'tpm';
  if (keys.backend !== 'tpm' && !dpsTpm) return [];
  const tcti = config.tpm?.tcti ?? 'device:/dev/tpmrm0';
  if (!tcti.startsWith('device')) return [];
  const dev = tcti.split(':')[1] || '/dev/tpmrm0';
  const code = await fs.access(dev, fsc.R_OK | fsc.W_OK).then(() => undefined, (err: NodeJS.ErrnoException) => err.code ?? 'error');
  if (code === undefined) return [];
  const fix = code === 'EACCES' ? 'add a udev rule KERNEL=="tpmrm[0-9]*", GROUP="tss", MODE="0660" and add this user to group tss' : 'this device has no TPM there: fix [tpm] tcti or use another [keys] backend';
  return [{ path: 'tpm.tcti', message: `${dev}: ${code}: ${fix}` }];
}

/** `[modules]` and `[security_extensions]` trusted_signers: read and parsed exactly as the daemon's runtime does. */
export async function signerProblems(config: Config): Promise<Problem[]> {
  const tables = [['modules', config.modules.trusted_signers], ['security_extensions', config.security_extensions.trusted_signers]] as const;
  const out: Problem[] = [];
  for (const [table, signers] of tables) {
    if (signers.length === 0) continue;
    const { TrustStore, TrustConfigError } = await import('../runtime/trust.js');
    try {
      await TrustStore.load(signers.map((f) => (f.startsWith('file://') ? fileURLToPath(f) : f)));
    } catch (err) {
      if (!(err instanceof TrustConfigError)) throw err;
      out.push({ path: `${table}.trusted_signers.${err.index}`, message: `${err.message}: give a PEM file of public keys or CA certificates` });
    }
  }
  return out;
}

async function exists(file: string, mode = fsc.F_OK): Promise<boolean> {
  return fs.access(file, mode).then(() => true, () => false);
}
