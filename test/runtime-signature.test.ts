/**
 * Module signatures (issue 5): detached signatures made with the real openssl CLI, checked at create and
 * at every start over the measured bytes, against the signers the device trusts (never the manifest).
 */
import { spawnSync } from 'node:child_process';
import { promises as fs, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { buildTestGuest } from '../guests/adversarial/components.js';
import { measure } from '../host/runtime/loader.js';
import { parseManifest } from '../host/runtime/manifest.js';
import { resolveManifestImages } from '../host/cli/commands/modules.js';
import { SignatureError, type SignaturePolicy } from '../host/runtime/signature.js';
import { TrustStore, type ModuleTrust } from '../host/runtime/trust.js';
import { RuntimeError } from '../host/runtime/types.js';
import { Pki } from './helpers/pki.js';
import { Fixture, spec } from './helpers/runtime.js';

let pki: Pki;
let fx: Fixture;

beforeAll(() => {
  pki = new Pki();
  pki.key('ec', 'ec');
  pki.key('rsa', 'rsa');
  pki.key('ed', 'ed25519');
  pki.key('rogue', 'ec');
  pki.ca('ca', 'Edgeward Test Signing CA');
  pki.ca('otherca', 'Some Other CA');
  pki.key('leaf', 'rsa');
  pki.cert('leaf', 'module-publisher', 'ca');
  pki.key('old', 'ec');
  pki.cert('old', 'old-publisher', 'ca', { expired: true });
  pki.key('tls', 'ec');
  pki.cert('tls', 'tls-server', 'ca', { ext: 'v3_tls' });
  pki.key('coder', 'ec');
  pki.cert('coder', 'code-signer', 'ca', { ext: 'v3_codesign' });
  pki.key('stranger', 'ec');
  pki.cert('stranger', 'stranger-publisher', 'otherca');
  // Intermediates: a proper sub-CA of the trusted CA; one that may not sign certificates; and a sub-CA
  // under a root whose pathlen 0 forbids any.
  pki.key('inter', 'ec');
  pki.cert('inter', 'Edgeward Test Intermediate', 'ca', { ext: 'v3_ca' });
  pki.key('viainter', 'ec');
  pki.cert('viainter', 'via-intermediate', 'inter');
  pki.key('nosign', 'ec');
  pki.cert('nosign', 'Not A Signing CA', 'ca', { ext: 'v3_ca_nosign' });
  pki.key('vianosign', 'ec');
  pki.cert('vianosign', 'via-nosign', 'nosign');
  pki.ca('pl0', 'Root With Pathlen 0', 'v3_ca_pl0');
  pki.key('deepinter', 'ec');
  pki.cert('deepinter', 'Forbidden Intermediate', 'pl0', { ext: 'v3_ca' });
  pki.key('viadeep', 'ec');
  pki.cert('viadeep', 'via-forbidden-intermediate', 'deepinter');
});
afterAll(() => pki.cleanup());
beforeEach(() => { fx = new Fixture(); });
afterEach(async () => { await fx.cleanup(); });

/** Trust the given PEM files (public keys or CA certificates) under `policy`. */
function trust(files: string[], policy: SignaturePolicy = 'optional'): ModuleTrust {
  return { policy, store: TrustStore.fromPem(files.map((f) => readFileSync(f, 'utf8'))) };
}

async function refusal(p: Promise<unknown>): Promise<SignatureError> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(SignatureError);
  return err as SignatureError;
}

/** The echo guest and a detached signature over it by `key`. */
async function signedEcho(key: string, mode: 'default' | 'pss' | 'ed25519' = 'default'): Promise<{ file: string; sig: string }> {
  const file = await fx.guest('echo');
  return { file, sig: pki.sign(key, file, path.join(fx.dir, `echo.${key}.sig`), mode) };
}

describe('signed modules are verified and their signer recorded', () => {
  it('ECDSA P-256 (openssl dgst -sha256 -sign, DER) by a trusted public key', async () => {
    const rt = await fx.runtime({ trust: trust([pki.file('ec.pub')]) });
    const { file, sig } = await signedEcho('ec');
    const d = await rt.create(spec('echo', file, { signature: { file: sig, signer: pki.file('ec.pub') } }));
    expect(d.status.runtimeStatus.status).toBe('running');
    expect(d.edgeward).toMatchObject({ signer: pki.spkiId('ec') });
    expect(d.edgeward).not.toHaveProperty('signerSubject');
    expect(await rt.invoke('echo', 'say', 1)).toEqual({ status: 200, payload: 1 });
    expect(rt.registration('echo')?.signer).toBe(pki.spkiId('ec'));
  });

  it('RSA PKCS#1 v1.5 by a certificate that chains to a trusted CA: SPKI id and subject recorded', async () => {
    const rt = await fx.runtime({ trust: trust([pki.file('ca.crt')]) });
    const { file, sig } = await signedEcho('leaf');
    const d = await rt.create(spec('echo', file, { signature: { file: sig, signer: pki.file('leaf.crt') } }));
    expect(d.status.runtimeStatus.status).toBe('running');
    expect(d.edgeward).toMatchObject({ signer: pki.spkiId('leaf'), signerSubject: 'CN=module-publisher' });
  });

  it('RSA-PSS, Ed25519 (pkeyutl -rawin) and a cosign-style base64 value with an inline PEM signer', async () => {
    const rt = await fx.runtime({ trust: trust([pki.file('rsa.pub'), pki.file('ed.pub'), pki.file('ec.pub')]) });
    const pss = await signedEcho('rsa', 'pss');
    expect((await rt.create(spec('pss', pss.file, { signature: { file: pss.sig, signer: pki.file('rsa.pub') } }))).edgeward).toMatchObject({ signer: pki.spkiId('rsa') });
    const ed = await signedEcho('ed', 'ed25519');
    expect((await rt.create(spec('ed', ed.file, { signature: { file: ed.sig, signer: pki.file('ed.pub') } }))).edgeward).toMatchObject({ signer: pki.spkiId('ed') });
    const ec = await signedEcho('ec');
    const value = readFileSync(ec.sig).toString('base64');
    writeFileSync(`${ec.sig}.b64`, `${value}\n`);
    expect((await rt.create(spec('inline', ec.file, { signature: { value, signer: pki.read('ec.pub') } }))).edgeward).toMatchObject({ signer: pki.spkiId('ec') });
    expect((await rt.create(spec('b64file', ec.file, { signature: { file: `${ec.sig}.b64`, signer: pki.file('ec.pub') } }))).edgeward).toMatchObject({ signer: pki.spkiId('ec') });
  });
});

describe('refused signatures', () => {
  it('one flipped byte in the component: bad-signature, an event, nothing registered', async () => {
    const rt = await fx.runtime({ trust: trust([pki.file('ec.pub')]) });
    const { file, sig } = await signedEcho('ec');
    const bytes = readFileSync(file);
    bytes[bytes.length >> 1]! ^= 0x01;
    writeFileSync(file, bytes);
    const err = await refusal(rt.create(spec('echo', file, { signature: { file: sig, signer: pki.file('ec.pub') } })));
    expect(err.reason).toBe('bad-signature');
    expect(err.code).toBe('integrity-mismatch');
    expect(err.message).toMatch(/does not verify over the component bytes/);
    expect(rt.events('echo').map((e) => e.kind)).toEqual(['signature-refused']);
    expect(rt.registration('echo')).toBeUndefined();
  });

  it('a signature by a key the device does not trust: untrusted-signer', async () => {
    const rt = await fx.runtime({ trust: trust([pki.file('ec.pub')]) });
    const { file, sig } = await signedEcho('rogue');
    const err = await refusal(rt.create(spec('echo', file, { signature: { file: sig, signer: pki.file('rogue.pub') } })));
    expect(err.reason).toBe('untrusted-signer');
    expect(err.code).toBe('denied');
    expect(err.message).toContain(`signer ${pki.spkiId('rogue')} is not a trusted signer`);
    // Naming the trusted key over a rogue signature is a bad signature, not a trusted one.
    const named = await refusal(rt.create(spec('echo', file, { signature: { file: sig, signer: pki.file('ec.pub') } })));
    expect(named.reason).toBe('bad-signature');
  });

  it('an expired signer certificate: expired-certificate', async () => {
    const rt = await fx.runtime({ trust: trust([pki.file('ca.crt')]) });
    const { file, sig } = await signedEcho('old');
    const err = await refusal(rt.create(spec('echo', file, { signature: { file: sig, signer: pki.file('old.crt') } })));
    expect(err.reason).toBe('expired-certificate');
    expect(err.message).toMatch(/certificate "CN=old-publisher" expired 2020-02-01/);
  });

  it('a certificate of the trusted CA that is not for code signing (EKU serverAuth): untrusted-signer', async () => {
    const rt = await fx.runtime({ trust: trust([pki.file('ca.crt')]) });
    const tls = await signedEcho('tls');
    const err = await refusal(rt.create(spec('tls', tls.file, { signature: { file: tls.sig, signer: pki.file('tls.crt') } })));
    expect(err.reason).toBe('untrusted-signer');
    expect(err.message).toMatch(/"CN=tls-server" is not for code signing/);
    const coder = await signedEcho('coder');
    expect((await rt.create(spec('coder', coder.file, { signature: { file: coder.sig, signer: pki.file('coder.crt') } }))).edgeward).toMatchObject({ signerSubject: 'CN=code-signer' });
  });

  it('a certificate from another CA: untrusted-signer', async () => {
    const rt = await fx.runtime({ trust: trust([pki.file('ca.crt')]) });
    const { file, sig } = await signedEcho('stranger');
    const err = await refusal(rt.create(spec('echo', file, { signature: { file: sig, signer: pki.file('stranger.crt') } })));
    expect(err.reason).toBe('untrusted-signer');
    expect(err.message).toMatch(/"CN=stranger-publisher" does not chain to a trusted signer CA/);
    // Carrying the other CA along in the chain does not help: trust comes from the device.
    const chain = `${pki.read('stranger.crt')}${pki.read('otherca.crt')}`;
    expect((await refusal(rt.create(spec('echo', file, { signature: { file: sig, signer: chain } })))).reason).toBe('untrusted-signer');
  });

  it('an intermediate CA counts only if its issuer lets it sign certificates and its path length allows it', async () => {
    const rt = await fx.runtime({ trust: trust([pki.file('ca.crt'), pki.file('pl0.crt')]) });
    const create = async (key: string) => {
      const { file, sig } = await signedEcho(key);
      return rt.create(spec(key, file, { signature: { file: sig, signer: `${pki.read(`${key}.crt`)}${pki.read(key === 'viainter' ? 'inter.crt' : key === 'vianosign' ? 'nosign.crt' : 'deepinter.crt')}` } }));
    };
    expect((await create('viainter')).edgeward).toMatchObject({ signerSubject: 'CN=via-intermediate' });
    let err = await refusal(create('vianosign'));
    expect(err.reason).toBe('untrusted-signer');
    expect(err.message).toMatch(/"CN=Not A Signing CA" may not sign certificates/);
    err = await refusal(create('viadeep'));
    expect(err.reason).toBe('untrusted-signer');
    expect(err.message).toMatch(/"CN=Root With Pathlen 0" allows 0 CA certificate\(s\) below it, the chain has 1/);
    // openssl agrees on both refusals.
    for (const [leaf, inter, root] of [['vianosign', 'nosign', 'ca'], ['viadeep', 'deepinter', 'pl0']] as const) {
      const r = spawnSync('openssl', ['verify', '-CAfile', pki.file(`${root}.crt`), '-untrusted', pki.file(`${inter}.crt`), pki.file(`${leaf}.crt`)], { encoding: 'utf8' });
      expect(r.status).not.toBe(0);
    }
  });

  it('policy "required": an unsigned module is refused; "optional": it runs as "unsigned"', async () => {
    const strict = await fx.runtime({ trust: trust([pki.file('ec.pub')], 'required') });
    const file = await fx.guest('echo');
    const err = await refusal(strict.create(spec('echo', file)));
    expect(err.reason).toBe('missing-signature');
    expect(err.message).toMatch(/not signed and this device requires signed modules/);
    await strict.close();
    const lax = await fx.runtime({ trust: trust([pki.file('ec.pub')]) });
    const d = await lax.create(spec('echo', file));
    expect(d.status.runtimeStatus.status).toBe('running');
    expect(d.edgeward).toMatchObject({ signer: 'unsigned' });
  });
});

describe('every start verifies again', () => {
  it('a swapped component with a valid signature by the trusted signer is still refused by the digest pin', async () => {
    const t = trust([pki.file('ec.pub')]);
    const rt = await fx.runtime({ trust: t });
    const { file, sig } = await signedEcho('ec');
    await rt.create(spec('echo', file, { signature: { file: sig, signer: pki.file('ec.pub') } }));
    const registered = rt.registration('echo')!;
    await rt.close();
    // The attacker holds another component validly signed by the same trusted signer, and swaps both
    // the stored bytes and the registration's signature for it.
    const other = path.join(fx.dir, 'random.wasm');
    writeFileSync(other, await buildTestGuest('random'));
    const otherSig = pki.sign('ec', other, path.join(fx.dir, 'random.sig'));
    await fs.writeFile(rt.loader.componentPath(registered.digest as `sha256:${string}`), readFileSync(other));
    const regFile = path.join(fx.dir, 'state', 'runtime', 'registry.json');
    const doc = JSON.parse(await fs.readFile(regFile, 'utf8'));
    doc.modules[0].signature.value = readFileSync(otherSig).toString('base64');
    await fs.writeFile(regFile, JSON.stringify(doc));
    const again = await fx.runtime({ trust: t });
    const err = await again.start('echo').then(() => undefined, (e: unknown) => e as RuntimeError);
    expect(err?.code).toBe('integrity-mismatch');
    expect(err?.message).toContain(`measured ${measure(readFileSync(other))} but the registration pins ${registered.digest}`);
    expect(again.events('echo').map((e) => e.kind)).toContain('integrity-violation');
    expect((await again.get('echo')).status.runtimeStatus.status).toBe('dead');
  });

  it('a signer no longer trusted, or a policy now "required", stops a registered module from starting', async () => {
    const rt = await fx.runtime({ trust: trust([pki.file('ec.pub')]) });
    const { file, sig } = await signedEcho('ec');
    await rt.create(spec('signed', file, { signature: { file: sig, signer: pki.file('ec.pub') }, desiredStatus: 'stopped' }));
    await rt.create(spec('plain', file, { desiredStatus: 'stopped' }));
    await rt.close();
    const distrusting = await fx.runtime({ trust: trust([pki.file('rsa.pub')]) });
    expect((await refusal(distrusting.start('signed'))).reason).toBe('untrusted-signer');
    expect(distrusting.events('signed').map((e) => e.kind)).toEqual(['signature-refused', 'start-failed']);
    await distrusting.close();
    const strict = await fx.runtime({ trust: trust([pki.file('ec.pub')], 'required') });
    expect((await refusal(strict.start('plain'))).reason).toBe('missing-signature');
    await strict.start('signed');
    expect((await strict.get('signed')).status.runtimeStatus.status).toBe('running');
  });
});

describe('deployments', () => {
  it('an unchanged signed module redeploys as unchanged; a new signature by another trusted signer updates it', async () => {
    const rt = await fx.runtime({ trust: trust([pki.file('ec.pub'), pki.file('ca.crt')]) });
    const { file, sig } = await signedEcho('ec');
    const first = spec('echo', file, { signature: { file: sig, signer: pki.file('ec.pub') } });
    expect((await rt.deploy([first])).created).toEqual(['echo']);
    const gen = rt.registration('echo')!.generationId;
    expect(await rt.deploy([first])).toMatchObject({ unchanged: ['echo'], failed: [] });
    const resigned = pki.sign('leaf', file, path.join(fx.dir, 'echo.leaf.sig'));
    expect(await rt.deploy([spec('echo', file, { signature: { file: resigned, signer: pki.file('leaf.crt') } })])).toMatchObject({ updated: ['echo'], failed: [] });
    const now = rt.registration('echo')!;
    expect(now).toMatchObject({ signer: pki.spkiId('leaf'), signerSubject: 'CN=module-publisher' });
    // Same bytes, another signer: a new generation, so no identity issued to the old one carries over.
    expect(now.generationId).not.toBe(gen);
    const bad = await rt.deploy([spec('echo', file, { signature: { file: sig, signer: pki.file('rogue.pub') } })]);
    expect(bad.failed).toEqual([{ module: 'echo', message: expect.stringContaining('is not a trusted signer') }]);
    expect(rt.registration('echo')!.signer).toBe(pki.spkiId('leaf'));
  });
});

describe('manifest and trust store', () => {
  it('a manifest names the signature and signer; relative paths resolve against its directory', () => {
    const [m] = parseManifest({ modules: { a: { settings: { image: 'a.wasm' }, signature: { file: 'a.sig', signer: 'pub.pem' } } } }, '/srv/deploy');
    expect(m!.signature).toEqual({ file: '/srv/deploy/a.sig', signer: '/srv/deploy/pub.pem' });
    expect(() => parseManifest({ modules: { a: { settings: { image: 'a.wasm' }, signature: { signer: 'pub.pem' } } } }, '/x')).toThrow(/exactly one of "file" or "value"/);
    // The old unverified free-form `signer` is gone: a manifest cannot claim a signer identity.
    expect(() => parseManifest({ modules: { a: { settings: { image: 'a.wasm' }, signer: 'sha256:00' } } }, '/x')).toThrow(/unrecognized key|signer/i);
  });

  it('edgeward deploy resolves signature paths against the manifest; an inline PEM signer stays inline', () => {
    const pem = pki.read('ec.pub');
    const doc = { modules: {
      a: { settings: { image: 'a.wasm' }, signature: { file: 'sig/a.sig', signer: 'keys/pub.pem' } },
      b: { settings: { image: '/abs/b.wasm' }, signature: { value: 'AAAA', signer: pem } },
    } };
    const out = resolveManifestImages(doc, '/srv/deploy') as typeof doc;
    expect(out.modules.a.signature).toEqual({ file: '/srv/deploy/sig/a.sig', signer: '/srv/deploy/keys/pub.pem' });
    expect(out.modules.b.signature).toEqual({ value: 'AAAA', signer: pem });
  });

  it('an unusable trusted-signer file is refused with its position', async () => {
    expect(() => TrustStore.fromPem([pki.read('ec.pub'), 'not a pem'])).toThrow(expect.objectContaining({ index: 1, message: 'no PEM public key or certificate found' }));
    await expect(TrustStore.load([path.join(pki.dir, 'missing.pem')])).rejects.toMatchObject({ index: 0, message: expect.stringContaining('cannot read (ENOENT)') });
  });
});
