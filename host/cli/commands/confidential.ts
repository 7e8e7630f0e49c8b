/**
 * `edgeward confidential`: confidential workload packages.
 * - `seal` (publisher side, no daemon): encrypt a component to one or more device keys, optionally sign.
 * - `inspect`: the header, recipients, digest and signer of a package (never the plaintext).
 * - `device-key --out DIR` (device side): export the workload-decryption key and the policy it is bound to.
 *   With the daemon running (and no --tcti/--key-file), asked of the daemon (`GET /confidential/device-key`,
 *   which creates the TPM key on first use) and, when measured launch is on, with a TPM quote of the
 *   measurement PCRs over nonce = SHA-256(device-key.pem) in DIR/quote/ (the `edgeward attest quote`
 *   files): a publisher checks it with `edgeward attest verify DIR/quote --nonce $(sha256sum …)` and compares
 *   the quoted runtime PCR with policy.json. Without a daemon, the TPM directly (as `edgeward tpm` does, no
 *   quote); run it while the runtime PCR holds its known-good value.
 */
import type { Command } from 'commander';
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../../../hsm/support/atomic.js';
import { Tpm } from '../../../hsm/tpm/tpm.js';
import { DEFAULT_RUNTIME_PCR, TpmTeeBackend } from '../../../hsm/tee/tpm.js';
import { keyIdOf } from '../../../hsm/tee/port.js';
import { MAX_PLAINTEXT_BYTES, PackageError, parsePackage, type ParsedPackage } from '../../runtime/confidential/format.js';
import { sealPackage } from '../../runtime/confidential/package.js';
import { readDeviceKeyDir, writeDeviceKeyDir } from '../../runtime/confidential/device-key.js';
import { verifyDetached } from '../../runtime/signature.js';
import type { Config } from '../../config/schema.js';
import { action } from '../output.js';
import { DEFAULT_TCTI, tpmCliError } from './tpm.js';
import { ApiError, NotRunningError, type MgmtClient } from '../client.js';
import { QUOTE_FILES } from '../../measure/quote-files.js';
import { createHash } from 'node:crypto';
import type { DeviceKeyInfo } from '../../../hsm/tee/port.js';

interface SealOpts { deviceKey: string[]; in: string; out: string; sign?: string; signer?: string }

async function readCapped(file: string, max: number): Promise<Buffer> {
  const st = await fs.stat(file).catch(() => {
    throw new PackageError('malformed', `${file}: no such file`);
  });
  if (!st.isFile() || st.size > max) throw new PackageError('too-large', `${file}: not a regular file of at most ${max} bytes`);
  return fs.readFile(file);
}

async function seal(o: SealOpts): Promise<void> {
  if ((o.sign === undefined) !== (o.signer === undefined)) throw new PackageError('malformed', 'give --sign KEY.pem and --signer CERT.pem together');
  const recipients = await Promise.all(o.deviceKey.map(readDeviceKeyDir));
  const plaintext = await readCapped(o.in, MAX_PLAINTEXT_BYTES);
  const signer = o.sign && o.signer
    ? { key: createPrivateKey(await readCapped(o.sign, 64 * 1024)), signerPem: (await readCapped(o.signer, 32 * 1024)).toString('utf8') }
    : undefined;
  const bytes = sealPackage({ plaintext, recipients: recipients.map((r) => ({ publicKey: r.publicKey, ...(r.policy ? { policy: r.policy } : {}) })), signer });
  await writeFileAtomic(o.out, bytes, 0o644);
  recipients.forEach((r, i) => {
    if (!r.policy) process.stderr.write(`warning: ${o.deviceKey[i]} has no policy.json: you cannot see what key ${r.keyId} is bound to\n`);
    else if (r.policy.kind === 'software') process.stderr.write(`warning: ${o.deviceKey[i]} is an INSECURE development key (software backend): the package is not protected on that device\n`);
    else if (r.policy.kind === 'pkcs11-token') process.stderr.write(`note: ${o.deviceKey[i]} is a PKCS#11 token key: bound to the token, not to a measurement (a changed runtime on that device can still decrypt)\n`);
  });
  process.stdout.write(`sealed ${path.basename(o.in)} (${plaintext.length} bytes) to ${recipients.length} device key(s)${signer ? ', signed' : ', UNSIGNED'} → ${o.out}\n`);
}

/** The signer the package names and whether its signature verifies with that key (trust is the device's call). */
function signerSummary(pkg: ParsedPackage): Record<string, unknown> | null {
  if (!pkg.signature) return null;
  try {
    const key = createPublicKey(pkg.signature.signer);
    const valid = verifyDetached(key, pkg.signedRegion, Buffer.from(pkg.signature.value, 'base64'));
    const cert = pkg.signature.signer.includes('BEGIN CERTIFICATE');
    return { keyId: keyIdOf(key), certificate: cert, signatureValid: valid, trust: 'not checked (the device checks its trusted signers)' };
  } catch (err) {
    return { error: (err as Error).message.split('\n')[0] };
  }
}

function summary(pkg: ParsedPackage, size: number): Record<string, unknown> {
  const h = pkg.header;
  return {
    format: h.format, version: h.version, size, signedLength: pkg.signedRegion.length,
    content: { alg: h.content.alg }, keyWrap: h.keyWrap, plaintext: h.plaintext, createdAt: h.createdAt,
    recipients: h.recipients.map((r) => ({ keyId: r.keyId, policy: r.policy ?? null })),
    signer: signerSummary(pkg),
  };
}

async function inspect(file: string, json: boolean): Promise<number> {
  const bytes = await readCapped(file, MAX_PLAINTEXT_BYTES + 1024 * 1024);
  const s = summary(parsePackage(bytes), bytes.length);
  if (json) {
    process.stdout.write(JSON.stringify(s, null, 2) + '\n');
  } else {
    const r = s.recipients as { keyId: string; policy: { kind: string; pcrs?: { index: number; value: string }[] } | null }[];
    const sig = s.signer as { keyId?: string; signatureValid?: boolean; error?: string } | null;
    const lines = [
      `format:     ${String(s.format)} v${String(s.version)} (${bytes.length} bytes, signed region ${String(s.signedLength)})`,
      `plaintext:  ${(s.plaintext as { digest: string }).digest} (${(s.plaintext as { size: number }).size} bytes, ${String((s.content as { alg: string }).alg)}, key wrap ${String(s.keyWrap)})`,
      `recipients: ${r.length}`,
      ...r.map((x) => `  ${x.keyId}  ${x.policy ? x.policy.kind + (x.policy.pcrs ? ' ' + x.policy.pcrs.map((p) => `pcr${p.index}=${p.value.slice(0, 16)}…`).join(',') : '') : '(policy not stated)'}`),
      `signer:     ${sig === null ? 'UNSIGNED' : sig.error ? `unreadable (${sig.error})` : `${sig.keyId} (signature ${sig.signatureValid ? 'valid' : 'INVALID'}; trust not checked here)`}`,
    ];
    process.stdout.write(lines.join('\n') + '\n');
  }
  const sig = s.signer as { signatureValid?: boolean } | null;
  return sig && sig.signatureValid === false ? 1 : 0;
}

type DeviceKeyOpts = { out: string; tcti?: string; keyFile?: string; pcr: string };

/** Through the daemon: undefined when it is not running (the caller reads the TPM directly). */
async function deviceKeyFromDaemon(getClient: () => Promise<MgmtClient>, o: DeviceKeyOpts): Promise<true | undefined> {
  const client = await getClient().catch(() => undefined); // no config: no daemon to ask
  if (!client) return undefined;
  let info: DeviceKeyInfo & { backend: string };
  try {
    info = await client.request<DeviceKeyInfo & { backend: string }>('GET', '/confidential/device-key');
  } catch (err) {
    if (err instanceof NotRunningError) return undefined;
    throw err;
  }
  const bound = info.policy.pcrs?.[0]?.index;
  if (bound !== undefined && bound !== Number(o.pcr)) throw new PackageError('malformed', `the daemon's workload key is bound to PCR ${bound} ([measurement] runtime_pcr), not ${o.pcr}`);
  await writeDeviceKeyDir(o.out, info.backend, info);
  const nonce = createHash('sha256').update(info.publicPem).digest('hex');
  let quoted = '';
  try {
    const q = await client.request<{ files: Record<string, string> }>('POST', '/attest/quote', { nonce });
    const dir = path.join(o.out, 'quote');
    await fs.mkdir(dir, { recursive: true });
    for (const f of QUOTE_FILES) if (q.files[f] !== undefined) await writeFileAtomic(path.join(dir, f), Buffer.from(q.files[f]!, 'base64'), 0o644);
    quoted = `, with a quote over sha256(device-key.pem) = ${nonce} in ${dir}`;
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 409)) throw err;
    process.stderr.write(`warning: no quote: ${err.message}\n`);
  }
  process.stdout.write(`exported ${info.keyId} (${info.policy.description}) from the daemon → ${o.out}${quoted}\n`);
  return true;
}

async function deviceKey(getConfig: () => Promise<Config>, getClient: (() => Promise<MgmtClient>) | undefined, o: DeviceKeyOpts): Promise<void> {
  if (getClient && o.tcti === undefined && o.keyFile === undefined && (await deviceKeyFromDaemon(getClient, o))) return;
  const cfg = await getConfig().catch(() => undefined);
  const keyFile = o.keyFile ?? (cfg ? path.join(cfg.state_dir, 'confidential', 'workload-key.json') : undefined);
  if (!keyFile) throw new PackageError('malformed', 'no config: give --key-file FILE for the workload-decryption key blob');
  const pcr = Number(o.pcr);
  if (!/^\d{1,2}$/.test(o.pcr) || pcr > 23) throw new PackageError('malformed', `--pcr ${o.pcr}: a PCR index 0..23`);
  let dev: Tpm | undefined;
  try {
    dev = await Tpm.open(o.tcti ?? process.env.EDGEWARD_TPM_TCTI ?? cfg?.tpm?.tcti ?? DEFAULT_TCTI);
    const exists = await fs.stat(keyFile).then(() => true, () => false);
    if (!exists) await fs.mkdir(path.dirname(keyFile), { recursive: true, mode: 0o700 });
    const backend = exists ? await TpmTeeBackend.open(dev, keyFile) : await TpmTeeBackend.create(dev, keyFile, { pcr });
    const info = await backend.deviceKey();
    const bound = info.policy.pcrs?.[0]?.index;
    if (bound !== pcr) throw new PackageError('malformed', `the workload key in ${keyFile} is bound to PCR ${String(bound)}, not ${pcr}: remove that file to create a key bound to PCR ${pcr} (packages sealed to the old key will not open)`);
    await writeDeviceKeyDir(o.out, backend.name, info);
    process.stdout.write(`${exists ? 'exported' : 'created and exported'} ${info.keyId} (${info.policy.description}) → ${o.out}\n`);
  } catch (err) {
    throw tpmCliError(err);
  } finally {
    await dev?.close();
  }
}

export function registerConfidentialCommands(program: Command, getConfig: () => Promise<Config>, getClient?: () => Promise<MgmtClient>): void {
  const c = program.command('confidential').description('confidential workloads: packages encrypted to a device TEE/TPM key');
  c.command('seal')
    .description('encrypt a component to device keys (no daemon needed), optionally signed')
    .requiredOption('--device-key <dir>', 'device-key directory from `edgeward confidential device-key` (repeat for several devices)', (v: string, prev: string[]) => [...prev, v], [] as string[])
    .requiredOption('--in <file>', 'the component (.wasm)')
    .requiredOption('--out <file>', 'the package to write (.cwasm)')
    .option('--sign <key.pem>', 'publisher private key (ECDSA P-256 or RSA)')
    .option('--signer <cert.pem>', 'publisher public key or certificate chain (leaf first)')
    .action(action((o: SealOpts) => seal(o)));
  c.command('inspect')
    .description('show a package header, recipients, digest and signer (never the plaintext)')
    .argument('<file>')
    .option('--json', 'machine-readable output')
    .action(action((file: string, o: { json?: boolean }) => inspect(file, o.json === true)));
  c.command('device-key')
    .description("export this device's workload-decryption public key and the PCR policy it is bound to (from the daemon with a quote, else from the TPM)")
    .requiredOption('--out <dir>', 'directory to write device-key.pem and policy.json')
    .option('--tcti <tcti>', 'TPM to use directly, not through the daemon (default: [tpm] tcti)')
    .option('--key-file <file>', 'key blob (default: <state_dir>/confidential/workload-key.json; created if absent)')
    .option('--pcr <index>', 'runtime PCR to bind a new key to', String(DEFAULT_RUNTIME_PCR))
    .action(action((o: DeviceKeyOpts) => deviceKey(getConfig, getClient, o)));
}
