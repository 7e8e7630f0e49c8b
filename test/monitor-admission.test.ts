/**
 * Security extensions' admission (issue 15): `edgeward:monitor/*` grants only for kind
 * `security-extension`, and an extension only from a signer of `[security_extensions] trusted_signers`,
 * under the "required" policy whatever `[modules] signature_policy` says. Signatures made with openssl.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { configSchema } from '../host/config/schema.js';
import { signerProblems } from '../host/daemon/preflight.js';
import { SignatureError, type SignaturePolicy } from '../host/runtime/signature.js';
import { TrustStore, type ModuleTrust } from '../host/runtime/trust.js';
import { Pki } from './helpers/pki.js';
import { Fixture, rejection, spec } from './helpers/runtime.js';
import { monitorGuestFile, monitorRuntime } from './helpers/monitor.js';

let pki: Pki;
let fx: Fixture;
beforeAll(() => {
  pki = new Pki();
  pki.key('vendor', 'ec');
  pki.key('publisher', 'ec');
});
afterAll(() => pki.cleanup());
beforeEach(() => { fx = new Fixture(); });
afterEach(async () => { await fx.cleanup(); });

const store = (...keys: string[]) => TrustStore.fromPem(keys.map((k) => readFileSync(pki.file(`${k}.pub`), 'utf8')));
/** `publisher` trusted for modules, `vendor` for security extensions (unless told otherwise). */
function trust(policy: SignaturePolicy = 'optional', extensions = store('vendor')): ModuleTrust {
  return { policy, store: store('publisher'), extensions };
}

async function signedResponder(key: string): Promise<{ file: string; signature: { file: string; signer: string } }> {
  const file = await monitorGuestFile(fx, 'responder');
  return { file, signature: { file: pki.sign(key, file, path.join(fx.dir, `responder.${key}.sig`)), signer: pki.file(`${key}.pub`) } };
}

const extensionSpec = (name: string, file: string, over = {}) =>
  spec(name, file, { kind: 'security-extension', capabilities: ['edgeward:monitor/respond'], ...over });

describe('who may hold edgeward:monitor grants', () => {
  it('a plain module asking for a monitor grant is refused at deploy, naming the grant and the rule', async () => {
    const { rt } = await monitorRuntime(fx, { trust: trust() });
    const { file, signature } = await signedResponder('vendor');
    const err = await rejection(rt.create(spec('sneaky', file, { capabilities: ['edgeward:monitor/respond'], signature })));
    expect(err.code).toBe('denied');
    expect(err.message).toContain('"edgeward:monitor/respond"');
    expect(err.message).toContain('kind "security-extension"');
    expect(err.message).toContain('[security_extensions] trusted_signers');
    expect(rt.registration('sneaky')).toBeUndefined();
    expect(rt.events('sneaky').map((e) => e.kind)).toEqual(['denied']);
    // Importing a monitor interface without asking for the grant: told the kind rule, not to add the grant.
    const quiet = await rejection(rt.create(spec('quiet', file)));
    expect(quiet.message).toBe('module "quiet" is of kind "module" and asks for "edgeward:monitor/respond", which only a component of kind "security-extension" may be granted (set "kind": "security-extension" and sign it with a signer listed in [security_extensions] trusted_signers)');
  });

  it('a security extension signed by a trusted extension signer is admitted and runs', async () => {
    const { rt } = await monitorRuntime(fx, { trust: trust() });
    const { file, signature } = await signedResponder('vendor');
    const d = await rt.create(extensionSpec('agent', file, { signature }));
    expect(d.status.runtimeStatus.status).toBe('running');
    expect(d.edgeward).toMatchObject({ kind: 'security-extension', signer: pki.spkiId('vendor'), capabilities: ['edgeward:monitor/respond'] });
  });

  it('an extension whose signer is trusted only for modules ([modules]) is refused as untrusted', async () => {
    const { rt } = await monitorRuntime(fx, { trust: trust('required') });
    const { file, signature } = await signedResponder('publisher');
    const err = await rejection(rt.create(extensionSpec('agent', file, { signature })));
    expect(err).toBeInstanceOf(SignatureError);
    expect((err as SignatureError).reason).toBe('untrusted-signer');
    expect(err.message).toContain('[security_extensions] trusted_signers');
    expect(rt.registration('agent')).toBeUndefined();
  });

  it('an unsigned extension is refused under signature_policy "optional"; with no extension signers, none runs', async () => {
    const { rt } = await monitorRuntime(fx, { trust: trust('optional') });
    const file = await monitorGuestFile(fx, 'responder');
    const err = await rejection(rt.create(extensionSpec('agent', file)));
    expect((err as SignatureError).reason).toBe('missing-signature');
    expect(err.message).toContain('whatever [modules] signature_policy says');
    const { rt: bare } = await monitorRuntime(fx, { trust: trust('optional', TrustStore.empty()) });
    const { signature } = await signedResponder('vendor');
    expect(((await rejection(bare.create(extensionSpec('agent2', file, { signature })))) as SignatureError).reason).toBe('untrusted-signer');
  });

  it('[security_extensions] is a config table: trusted_signers paths only, strict', () => {
    const base = { hostname: 'h', state_dir: '/tmp/x', provisioning: { source: 'none' }, connect: { management_uri: 'unix:///a', workload_uri: 'unix:///b' }, listen: { management_uri: 'unix:///a', workload_uri: 'unix:///b' } };
    expect(configSchema.parse(base).security_extensions).toEqual({ trusted_signers: [] });
    expect(configSchema.parse({ ...base, security_extensions: { trusted_signers: ['file:///etc/v.pem'] } }).security_extensions.trusted_signers).toEqual(['file:///etc/v.pem']);
    expect(configSchema.safeParse({ ...base, security_extensions: { trusted_signers: ['relative.pem'] } }).success).toBe(false);
    expect(configSchema.safeParse({ ...base, security_extensions: { signature_policy: 'optional' } }).success).toBe(false);
  });

  it('the start-up preflight (config apply, system restart) reads the extension signers as the daemon does', async () => {
    const base = { hostname: 'h', state_dir: '/tmp/x', provisioning: { source: 'none' }, connect: { management_uri: 'unix:///a', workload_uri: 'unix:///b' }, listen: { management_uri: 'unix:///a', workload_uri: 'unix:///b' } };
    const missing = path.join(fx.dir, 'gone.pem');
    const config = configSchema.parse({ ...base, security_extensions: { trusted_signers: [pki.file('vendor.pub'), missing] } });
    expect(await signerProblems(config)).toEqual([{ path: 'security_extensions.trusted_signers.1', message: expect.stringContaining(`${missing}: cannot read (ENOENT)`) }]);
  });
});
