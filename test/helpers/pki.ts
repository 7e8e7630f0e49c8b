/**
 * Test PKI made with the real `openssl` CLI: signing keys (EC P-256, RSA, Ed25519), CAs, signer
 * certificates (valid, expired), and detached signatures as `openssl dgst -sha256 -sign` writes them.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const CNF = `[req]
distinguished_name = dn
prompt = no
[dn]
CN = x
[v3_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[v3_ca_pl0]
basicConstraints = critical,CA:TRUE,pathlen:0
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[v3_ca_nosign]
basicConstraints = critical,CA:TRUE
keyUsage = critical,digitalSignature
[v3_leaf]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
[v3_tls]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
[v3_codesign]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = codeSigning
[ca]
default_ca = ca_default
[ca_default]
database = index.txt
new_certs_dir = .
serial = serial
default_md = sha256
policy = policy_any
email_in_dn = no
unique_subject = no
[policy_any]
commonName = supplied
`;

export type KeyAlg = 'ec' | 'rsa' | 'ed25519';

/**
 * A self-signed EC P-256 server certificate for 127.0.0.1 (SAN IP), made by openssl in `dir`: `key.pem`
 * and `cert.pem`, returned as PEM; `cert` is also the CA a client must trust.
 */
export function loopbackServerCert(dir: string): { key: Buffer; cert: Buffer; certFile: string } {
  const keyFile = path.join(dir, 'key.pem');
  const certFile = path.join(dir, 'cert.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1',
    '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', keyFile, '-out', certFile], { stdio: 'ignore' });
  return { key: readFileSync(keyFile), cert: readFileSync(certFile), certFile };
}

export class Pki {
  readonly dir = mkdtempSync(path.join(os.tmpdir(), 'ew-pki-'));

  constructor() {
    writeFileSync(this.file('cnf'), CNF);
    writeFileSync(this.file('index.txt'), '');
    writeFileSync(this.file('serial'), '01\n');
  }

  file(name: string): string {
    return path.join(this.dir, name);
  }

  openssl(args: string[]): Buffer {
    return execFileSync('openssl', args, { cwd: this.dir, stdio: ['ignore', 'pipe', 'pipe'] });
  }

  /** `<name>.key` (private) and `<name>.pub` (SPKI PEM); returns the .pub path. */
  key(name: string, alg: KeyAlg): string {
    const opts = alg === 'ec' ? ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'] : alg === 'rsa' ? ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048'] : ['-algorithm', 'ed25519'];
    this.openssl(['genpkey', ...opts, '-out', `${name}.key`]);
    this.openssl(['pkey', '-in', `${name}.key`, '-pubout', '-out', `${name}.pub`]);
    return this.file(`${name}.pub`);
  }

  /** `sha256:<hex>` of the key's DER SubjectPublicKeyInfo, computed by openssl. */
  spkiId(name: string): string {
    const der = this.openssl(['pkey', '-in', `${name}.key`, '-pubout', '-outform', 'DER']);
    writeFileSync(this.file(`${name}.spki.der`), der);
    const out = this.openssl(['dgst', '-sha256', '-r', `${name}.spki.der`]).toString('utf8');
    return `sha256:${out.split(' ')[0]}`;
  }

  /** A self-signed CA `<name>.crt` over a new EC key (`ext` v3_ca_pl0: pathlen 0). */
  ca(name: string, cn: string, ext: 'v3_ca' | 'v3_ca_pl0' = 'v3_ca'): string {
    this.key(name, 'ec');
    this.openssl(['req', '-x509', '-new', '-config', 'cnf', '-extensions', ext, '-key', `${name}.key`, '-subj', `/CN=${cn}`, '-days', '30', '-out', `${name}.crt`]);
    return this.file(`${name}.crt`);
  }

  /**
   * A signer certificate `<name>.crt` for key `<name>.key`, issued by `ca`; `expired` backdates it to 2020;
   * `ext` picks its extensions (default: digitalSignature, no extended key usage).
   */
  cert(name: string, cn: string, ca: string, opts: { expired?: boolean; ext?: 'v3_leaf' | 'v3_tls' | 'v3_codesign' | 'v3_ca' | 'v3_ca_nosign' } = {}): string {
    const ext = opts.ext ?? 'v3_leaf';
    this.openssl(['req', '-new', '-config', 'cnf', '-key', `${name}.key`, '-subj', `/CN=${cn}`, '-out', `${name}.csr`]);
    if (opts.expired) {
      this.openssl(['ca', '-batch', '-config', 'cnf', '-cert', `${ca}.crt`, '-keyfile', `${ca}.key`, '-in', `${name}.csr`, '-out', `${name}.crt`,
        '-startdate', '20200101000000Z', '-enddate', '20200201000000Z', '-extfile', 'cnf', '-extensions', ext, '-notext']);
    } else {
      this.openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.crt`, '-CAkey', `${ca}.key`, '-CAcreateserial', '-days', '30', '-extfile', 'cnf', '-extensions', ext, '-out', `${name}.crt`]);
    }
    return this.file(`${name}.crt`);
  }

  /**
   * A detached signature over `file` with `<key>.key`, written to `<out>`: `openssl dgst -sha256 -sign`
   * (ECDSA DER, RSA PKCS#1 v1.5 or PSS), or `pkeyutl -sign -rawin` for Ed25519.
   */
  sign(key: string, file: string, out: string, mode: 'default' | 'pss' | 'ed25519' = 'default'): string {
    if (mode === 'ed25519') this.openssl(['pkeyutl', '-sign', '-rawin', '-inkey', `${key}.key`, '-in', file, '-out', out]);
    else this.openssl(['dgst', '-sha256', '-sign', `${key}.key`, ...(mode === 'pss' ? ['-sigopt', 'rsa_padding_mode:pss'] : []), '-out', out, file]);
    return out;
  }

  read(name: string): string {
    return readFileSync(this.file(name), 'utf8');
  }

  cleanup(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
