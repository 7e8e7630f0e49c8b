/**
 * Confidential package format: seal → parse → verify → unwrap with a software device key → the plaintext
 * digest matches; tampering with the header, ciphertext or signature is refused; openssl verifies the
 * publisher's signature independently; the plaintext never appears in the package.
 */
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { constants, generateKeyPairSync, privateDecrypt, randomBytes, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openPackage, sealPackage, verifyPackage } from '../host/runtime/confidential/package.js';
import { PackageError, PREAMBLE_BYTES, parsePackage } from '../host/runtime/confidential/format.js';
import { TrustStore } from '../host/runtime/trust.js';
import { keyIdOf } from '../hsm/tee/port.js';
import { envFor, runCli, tempHome } from './helpers/cli.js';
import { readFileSync } from 'node:fs';

const MARKER = 'CONFIDENTIAL-MARKER-7f3a9c';
const plaintext = Buffer.concat([Buffer.from('\0asm\x01\0\0\0'), Buffer.from(MARKER), randomBytes(4096), Buffer.from(MARKER)]);
const device = generateKeyPairSync('rsa', { modulusLength: 2048 });
const other = generateKeyPairSync('rsa', { modulusLength: 2048 });
const publisher = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
const publisherPem = publisher.publicKey.export({ type: 'spki', format: 'pem' }).toString();
const trust = { policy: 'required' as const, store: TrustStore.fromPem([publisherPem]) };

const softUnwrap = (priv: KeyObject) => async (wrapped: Buffer) => privateDecrypt({ key: priv, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, wrapped);
const sealed = (): Buffer => sealPackage({ plaintext, recipients: [{ publicKey: device.publicKey }, { publicKey: other.publicKey }], signer: { key: publisher.privateKey, signerPem: publisherPem } });
const refusal = async (p: Promise<unknown> | (() => unknown)): Promise<string> => {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    return e instanceof PackageError ? e.reason : ((e as { reason?: string }).reason ?? String(e));
  }
  return 'accepted';
};

describe('confidential package', () => {
  it('seals to two devices; each opens it in memory and the plaintext digest matches; no plaintext in the package', async () => {
    const bytes = sealed();
    expect(bytes.includes(Buffer.from(MARKER))).toBe(false);
    const pkg = parsePackage(bytes);
    expect(pkg.header.recipients.map((r) => r.keyId)).toEqual([keyIdOf(device.publicKey), keyIdOf(other.publicKey)]);
    expect((await verifyPackage(pkg, trust)).signer).toBe(keyIdOf(publisher.publicKey));
    expect((await openPackage(pkg, keyIdOf(device.publicKey), softUnwrap(device.privateKey))).equals(plaintext)).toBe(true);
    expect((await openPackage(pkg, keyIdOf(other.publicKey), softUnwrap(other.privateKey))).equals(plaintext)).toBe(true);
    const third = generateKeyPairSync('rsa', { modulusLength: 2048 });
    expect(await refusal(openPackage(pkg, keyIdOf(third.publicKey), softUnwrap(third.privateKey)))).toBe('not-a-recipient');
    // Another device's private key cannot open this device's entry.
    expect(await refusal(openPackage(pkg, keyIdOf(device.publicKey), softUnwrap(other.privateKey)))).not.toBe('accepted');
  });

  it('openssl dgst -sha256 -verify checks the publisher signature over header + ciphertext', () => {
    const bytes = sealed();
    const pkg = parsePackage(bytes);
    const dir = mkdtempSync(path.join(os.tmpdir(), 'ew-cpkg-'));
    try {
      writeFileSync(path.join(dir, 'region'), pkg.signedRegion);
      writeFileSync(path.join(dir, 'sig'), Buffer.from(pkg.signature!.value, 'base64'));
      writeFileSync(path.join(dir, 'pub.pem'), publisherPem);
      const out = execFileSync('openssl', ['dgst', '-sha256', '-verify', path.join(dir, 'pub.pem'), '-signature', path.join(dir, 'sig'), path.join(dir, 'region')]).toString();
      expect(out).toContain('Verified OK');
      const bad = Buffer.from(pkg.signedRegion);
      bad[bad.length - 1]! ^= 1;
      writeFileSync(path.join(dir, 'region'), bad);
      expect(() => execFileSync('openssl', ['dgst', '-sha256', '-verify', path.join(dir, 'pub.pem'), '-signature', path.join(dir, 'sig'), path.join(dir, 'region')], { stdio: 'pipe' })).toThrow();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses a tampered header, ciphertext or signature, and an untrusted signer', async () => {
    const bytes = sealed();
    const hLen = bytes.readUInt32BE(10);
    const header = bytes.subarray(PREAMBLE_BYTES, PREAMBLE_BYTES + hLen).toString();
    const at = PREAMBLE_BYTES + header.indexOf('"createdAt":"') + 13;
    const h = Buffer.from(bytes);
    h[at] = h[at] === 0x31 ? 0x32 : 0x31; // still valid JSON, different date
    expect(await refusal(verifyPackage(parsePackage(h), trust))).toBe('bad-signature');
    const c = Buffer.from(bytes);
    c[PREAMBLE_BYTES + hLen + 10]! ^= 0x01;
    expect(await refusal(verifyPackage(parsePackage(c), trust))).toBe('bad-signature');
    // Even past a (hypothetically skipped) signature check, GCM refuses the changed ciphertext.
    expect(await refusal(openPackage(parsePackage(c), keyIdOf(device.publicKey), softUnwrap(device.privateKey)))).toBe('decrypt-failed');
    const pkg = parsePackage(bytes);
    const sig = Buffer.from(pkg.signature!.value, 'base64');
    sig[sig.length - 1]! ^= 1;
    expect(await refusal(verifyPackage({ ...pkg, signature: { ...pkg.signature!, value: sig.toString('base64') } }, trust))).toBe('bad-signature');
    expect(await refusal(verifyPackage(pkg, { policy: 'required', store: TrustStore.empty() }))).toBe('untrusted-signer');
    const unsigned = sealPackage({ plaintext, recipients: [{ publicKey: device.publicKey }] });
    expect(await refusal(verifyPackage(parsePackage(unsigned), trust))).toBe('missing-signature');
  });

  it('never trusts sizes: bad magic, version, header length, truncation and trailing bytes are typed refusals', async () => {
    const bytes = sealed();
    const mut = (f: (b: Buffer) => Buffer | void): Buffer => {
      const b = Buffer.from(bytes);
      return f(b) ?? b;
    };
    expect(await refusal(() => parsePackage(mut((b) => void (b[0] = 0x41))))).toBe('malformed');
    expect(await refusal(() => parsePackage(mut((b) => void b.writeUInt16BE(2, 8))))).toBe('unsupported-version');
    expect(await refusal(() => parsePackage(mut((b) => void b.writeUInt32BE(0xffffffff, 10))))).toBe('too-large');
    expect(await refusal(() => parsePackage(mut((b) => void b.writeUInt32BE(b.readUInt32BE(10) - 1, 10))))).toBe('malformed');
    expect(await refusal(() => parsePackage(bytes.subarray(0, bytes.length - 1)))).toBe('malformed');
    expect(await refusal(() => parsePackage(Buffer.concat([bytes, Buffer.from([0])])))).toBe('malformed');
    expect(await refusal(() => parsePackage(bytes.subarray(0, 12)))).toBe('malformed');
    expect(parsePackage(bytes).header.plaintext.size).toBe(plaintext.length);
  });

  it('refuses to seal to a key that is not RSA-2048', () => {
    const ec = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    expect(() => sealPackage({ plaintext, recipients: [{ publicKey: ec.publicKey }] })).toThrow(/RSA-2048/);
  });

  it('CLI: seal to two device-key dirs without a daemon, inspect (text and --json) shows recipients and signer, never plaintext', async () => {
    const { home, cleanup } = tempHome('ew-cseal-');
    try {
      const env = envFor(home);
      const dirs = [device, other].map((k, i) => {
        const d = path.join(home, `dev${i}`);
        execFileSync('mkdir', ['-p', d]);
        writeFileSync(path.join(d, 'device-key.pem'), k.publicKey.export({ type: 'spki', format: 'pem' }));
        return d;
      });
      writeFileSync(path.join(home, 'app.wasm'), plaintext);
      writeFileSync(path.join(home, 'key.pem'), publisher.privateKey.export({ type: 'pkcs8', format: 'pem' }));
      writeFileSync(path.join(home, 'signer.pem'), publisherPem);
      const out = path.join(home, 'app.cwasm');
      const r = await runCli(['confidential', 'seal', '--device-key', dirs[0]!, '--device-key', dirs[1]!, '--in', path.join(home, 'app.wasm'), '--out', out, '--sign', path.join(home, 'key.pem'), '--signer', path.join(home, 'signer.pem')], env);
      expect(r.code).toBe(0);
      expect(r.stderr).toContain('has no policy.json'); // the publisher is told it cannot see the binding
      const bytes = readFileSync(out);
      expect(bytes.includes(Buffer.from(MARKER))).toBe(false);
      const pkg = parsePackage(bytes);
      expect((await openPackage(pkg, keyIdOf(other.publicKey), softUnwrap(other.privateKey))).equals(plaintext)).toBe(true);
      const j = await runCli(['confidential', 'inspect', out, '--json'], env);
      expect(j.code).toBe(0);
      const info = JSON.parse(j.stdout) as { recipients: { keyId: string }[]; signer: { keyId: string; signatureValid: boolean }; plaintext: { digest: string }; signedLength: number };
      expect(info.recipients.map((x) => x.keyId)).toEqual([keyIdOf(device.publicKey), keyIdOf(other.publicKey)]);
      expect(info.signer).toMatchObject({ keyId: keyIdOf(publisher.publicKey), signatureValid: true });
      expect(info.plaintext.digest).toBe(pkg.header.plaintext.digest);
      expect(info.signedLength).toBe(pkg.signedRegion.length);
      expect(j.stdout).not.toContain(MARKER);
      const t = await runCli(['confidential', 'inspect', out], env);
      expect(t.stdout).toMatch(/recipients: 2/);
      expect(t.stdout).toContain('signature valid');
      const bad = Buffer.from(bytes);
      bad[info.signedLength - 1]! ^= 1;
      writeFileSync(out, bad);
      const tb = await runCli(['confidential', 'inspect', out], env);
      expect(tb.code).toBe(1);
      expect(tb.stdout).toContain('INVALID');
      const missing = await runCli(['confidential', 'seal', '--device-key', path.join(home, 'nope'), '--in', path.join(home, 'app.wasm'), '--out', out], env);
      expect(missing.code).toBe(1);
      expect(missing.stderr).toContain('device-key.pem');
    } finally {
      cleanup();
    }
  }, 60_000);
});
