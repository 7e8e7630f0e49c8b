/**
 * PKCS#11-specific properties against a real SoftHSM2 token: what pkcs11-tool sees, token-side attributes,
 * startup failures (H4), RFC 7512 URIs, concurrency (H2) and the reconciliation of orphans H1 relies on (the
 * kill -9 rounds themselves are in test/reliability/hsm-crash.test.ts).
 */
import { createPublicKey, verify as cryptoVerify } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import pkcs11js from 'pkcs11js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StartupError } from '../host/errors.js';
import { DAEMON_CALLER, KeyError, openKeyService, type KeyService } from '../hsm/keys/index.js';
import { acquireLibrary, releaseLibrary } from '../hsm/pkcs11/library.js';
import { pkcs11Tool, startSoftHsm, withRawSession, type SoftHsm, type SoftHsmToken } from '../hsm/testing/softhsm.js';
import { makeConfig, tempDir } from './helpers/keys.js';
import { report } from './helpers/reliability.js';

const p = pkcs11js;
const MSG = Buffer.from('message to sign');
const PIN = '73519046';

let hsm: SoftHsm;
let token: SoftHsmToken;
let stateDir: string;
let keys: KeyService;

function p11Config(over: Record<string, unknown> = {}) {
  return makeConfig(stateDir, { backend: 'pkcs11', pkcs11: { library: hsm.library, token_label: token.label, pin: token.pin, sessions: 4, ...over } });
}

/** A logger whose every line is kept, to prove the PIN never reaches it. */
function captureLogger(): { logger: pino.Logger; lines: string[] } {
  const lines: string[] = [];
  const stream = new Writable({ write(chunk: Buffer, _enc, cb) { lines.push(chunk.toString()); cb(); } });
  return { logger: pino({ level: 'trace' }, stream), lines };
}

async function startupError(p: Promise<unknown>): Promise<StartupError> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(StartupError);
  expect((err as StartupError).exitCode).toBe(2);
  return err as StartupError;
}

/** Read CKA_* attributes of every object labelled `label`, through our own raw session. */
function rawAttributes(label: string): Array<{ cls: number; sensitive?: boolean; extractable?: boolean; token: boolean }> {
  return withRawSession(hsm.library, token.label, false, (m, s) => {
    m.C_FindObjectsInit(s, [{ type: p.CKA_LABEL, value: label }]);
    const objs = m.C_FindObjects(s, 16);
    m.C_FindObjectsFinal(s);
    const bool = (b: unknown) => (b as Buffer)[0] === 1;
    return objs.map((o) => {
      const [cls, tok] = m.C_GetAttributeValue(s, o, [{ type: p.CKA_CLASS }, { type: p.CKA_TOKEN }]);
      const c = (cls!.value as Buffer).readUIntLE(0, 4);
      if (c === p.CKO_PUBLIC_KEY) return { cls: c, token: bool(tok!.value) };
      const [sen, ext] = m.C_GetAttributeValue(s, o, [{ type: p.CKA_SENSITIVE }, { type: p.CKA_EXTRACTABLE }]);
      return { cls: c, token: bool(tok!.value), sensitive: bool(sen!.value), extractable: bool(ext!.value) };
    });
  });
}

beforeAll(async () => {
  hsm = await startSoftHsm();
  hsm.activate();
  token = await hsm.initToken('edgeward-p11', PIN);
  await hsm.initToken('other-token', '24682468');
  stateDir = await tempDir('edgeward-keys-p11t-');
  keys = await openKeyService({ config: p11Config(), stateDir, logger: pino({ level: 'silent' }) });
});

afterAll(async () => {
  await keys?.close();
  if (stateDir) await fs.rm(stateDir, { recursive: true, force: true });
  await hsm?.cleanup();
});

describe('PKCS#11 backend on SoftHSM2', () => {
  it('keys appear in pkcs11-tool --list-objects with readable labels, sensitive and never extractable', async () => {
    await keys.createKeyPair(DAEMON_CALLER, { id: 'device-id' }, 'ec-p256');
    await keys.createSecretKey(DAEMON_CALLER, { id: 'master' }, 'hmac-sha256');
    await keys.createKeyPair({ kind: 'module', module: 'hello' }, { id: 'k1' }, 'rsa-2048');
    const out = await pkcs11Tool(hsm, ['--token-label', token.label, '--list-objects', '--login', '--pin', PIN]);
    for (const label of ['edgeward/edgeward/device-id', 'edgeward/edgeward/master', 'edgeward/module.hello/k1']) expect(out).toContain(`label:      ${label}`);
    const privBlock = out.split(/\n(?=\S)/).find((b) => b.startsWith('Private Key Object') && b.includes('edgeward/edgeward/device-id'))!;
    expect(privBlock).toMatch(/Access:\s+.*\bsensitive\b/);
    expect(privBlock).toMatch(/never extractable/);
    for (const label of ['edgeward/edgeward/device-id', 'edgeward/edgeward/master', 'edgeward/module.hello/k1']) {
      const attrs = rawAttributes(label);
      expect(attrs.length).toBeGreaterThan(0);
      for (const a of attrs) {
        expect(a.token).toBe(true);
        if (a.cls !== p.CKO_PUBLIC_KEY) expect([a.sensitive, a.extractable]).toEqual([true, false]);
      }
    }
    expect(out).not.toContain('edgeward-pending/');
  });

  it('1,000 concurrent sign calls all succeed; a sample verifies with node:crypto', async () => {
    const h = await keys.createKeyPair(DAEMON_CALLER, { id: 'busy' }, 'ec-p256');
    const pub = createPublicKey({ key: await keys.getPublicKey(DAEMON_CALLER, h), format: 'der', type: 'spki' });
    const msgs = Array.from({ length: 1000 }, (_, i) => Buffer.from(`message ${i}`));
    // A 1 ms ticker: the longest gap between its ticks is the longest time the event loop was held (a figure
    // for the report; timing is the benchmark's business). The assertion counts turns of the event loop
    // during the burst with a setImmediate chain: the pool hands sessions on synchronously for at most
    // MAX_HANDOFF_RUN_MS, then through setImmediate, so the loop turns all through the burst. Without that
    // yield the 1000 signs run back to back in a handful of macrotasks, whatever the machine's load.
    let last = performance.now();
    let maxDelayMs = 0;
    const ticker = setInterval(() => {
      const now = performance.now();
      maxDelayMs = Math.max(maxDelayMs, now - last);
      last = now;
    }, 1);
    let turns = 0;
    let counting = true;
    const turn = () => {
      if (!counting) return;
      turns++;
      setImmediate(turn);
    };
    setImmediate(turn);
    const t0 = performance.now();
    const results = await Promise.allSettled(msgs.map((m) => keys.sign(DAEMON_CALLER, h, 'ecdsa-sha256', m)));
    const ms = performance.now() - t0;
    counting = false;
    await new Promise((r) => setTimeout(r, 5)); // let the ticker see the end of a stall
    clearInterval(ticker);
    report('H2', `1000 concurrent signs on SoftHSM2 in ${ms.toFixed(0)} ms (${(1000 / (ms / 1000)).toFixed(0)} sig/s), event loop turned ${turns} times during the burst, max event-loop delay ${maxDelayMs.toFixed(1)} ms, ${results.filter((r) => r.status === 'rejected').length} errors`);
    // At least one turn per 10 ms of burst (MAX_HANDOFF_RUN_MS is 2 ms), capped at 20: a stalled pool gives 0.
    expect(turns).toBeGreaterThanOrEqual(Math.min(20, Math.floor(ms / 10)));
    const failed = results.filter((r) => r.status === 'rejected');
    expect(failed).toEqual([]);
    const sigs = results.map((r) => (r as PromiseFulfilledResult<Buffer>).value);
    for (let i = 0; i < 1000; i += 37) expect(cryptoVerify('sha256', msgs[i]!, pub, sigs[i]!)).toBe(true);
    expect(cryptoVerify('sha256', msgs[1]!, pub, sigs[0]!)).toBe(false);
  });

  it('concurrent create-or-load of one id creates one key', async () => {
    const handles = await Promise.all(Array.from({ length: 8 }, () => keys.createKeyPair(DAEMON_CALLER, { id: 'raced' }, 'ec-p256')));
    const pubs = await Promise.all(handles.map((h) => keys.getPublicKey(DAEMON_CALLER, h)));
    expect(new Set(pubs.map((b) => b.toString('hex'))).size).toBe(1);
    expect(rawAttributes('edgeward/edgeward/raced')).toHaveLength(2);
  });

  it('an RFC 7512 URI names a key made outside Edgeward; its public key matches what pkcs11-tool exports', async () => {
    await pkcs11Tool(hsm, ['--token-label', token.label, '--login', '--pin', PIN, '--keypairgen', '--key-type', 'EC:prime256v1', '--label', 'external key', '--id', 'a1b2']);
    const der = path.join(stateDir, 'ext-pub.der');
    await pkcs11Tool(hsm, ['--token-label', token.label, '--read-object', '--type', 'pubkey', '--id', 'a1b2', '-o', der]);
    const toolPub = createPublicKey({ key: await fs.readFile(der), format: 'der', type: 'spki' });
    const h = await keys.loadKeyByUri(DAEMON_CALLER, `pkcs11:token=${token.label};object=external%20key;type=private`);
    const sig = await keys.sign(DAEMON_CALLER, h, 'ecdsa-sha256', MSG);
    expect(cryptoVerify('sha256', MSG, toolPub, sig)).toBe(true);
    const byId = await keys.loadKeyByUri(DAEMON_CALLER, 'pkcs11:id=%a1%b2');
    expect(cryptoVerify('sha256', MSG, toolPub, await keys.sign(DAEMON_CALLER, byId, 'ecdsa-sha256', MSG))).toBe(true);
    const err = await keys.loadKeyByUri({ kind: 'module', module: 'hello' }, `pkcs11:object=external%20key`).catch((e: unknown) => e);
    expect((err as KeyError).tag).toBe('access-denied');
    const other = await keys.loadKeyByUri(DAEMON_CALLER, 'pkcs11:token=other-token;object=external%20key').catch((e: unknown) => e);
    expect((other as KeyError).tag).toBe('not-found');
    const pin = await keys.loadKeyByUri(DAEMON_CALLER, `pkcs11:object=x?pin-value=${PIN}`).catch((e: unknown) => e);
    expect((pin as KeyError).tag).toBe('invalid-argument');
    expect((pin as KeyError).message).not.toContain(PIN);
  });

  it('the token can be chosen by serial, and the PIN read from pin_file', async () => {
    const pinFile = path.join(stateDir, 'pin');
    await fs.writeFile(pinFile, `${PIN}\n`, { mode: 0o600 });
    const cfg = makeConfig(stateDir, { backend: 'pkcs11', pkcs11: { library: hsm.library, token_serial: token.serial, pin_file: pinFile, sessions: 2 } });
    const k2 = await openKeyService({ config: cfg, stateDir, logger: pino({ level: 'silent' }) });
    try {
      expect((await k2.listKeys(DAEMON_CALLER)).map((k) => k.id)).toContain('device-id');
    } finally {
      await k2.close();
    }
  });
});

describe('startup failures are StartupError exit 2 and never show the PIN (H4)', () => {
  it('wrong PIN', async () => {
    const { logger, lines } = captureLogger();
    const wrong = '99990000';
    const cfg = makeConfig(stateDir, { backend: 'pkcs11', pkcs11: { library: hsm.library, token_label: 'other-token', pin: wrong } });
    const err = await startupError(openKeyService({ config: cfg, stateDir, logger }));
    expect(err.message).toMatch(/wrong PIN/);
    expect(err.message).toContain('other-token');
    expect(err.message).not.toContain(wrong);
    expect(lines.join('')).not.toContain(wrong);    report('H4', 'wrong PIN, missing library, non-library file, missing token: StartupError (exit 2) with a clear message; PIN found in logs 0 times');
  });

  it('missing library', async () => {
    const err = await startupError(openKeyService({ config: p11Config({ library: '/nonexistent/libnothing.so' }), stateDir, logger: pino({ level: 'silent' }) }));
    expect(err.message).toBe('PKCS#11 library not found: /nonexistent/libnothing.so');
  });

  it('a file that is not a PKCS#11 library', async () => {
    const bogus = path.join(stateDir, 'not-a-lib.so');
    await fs.writeFile(bogus, 'hello');
    const err = await startupError(openKeyService({ config: p11Config({ library: bogus }), stateDir, logger: pino({ level: 'silent' }) }));
    expect(err.message).toMatch(/^cannot load PKCS#11 library /);
  });

  it('missing token', async () => {
    const { logger, lines } = captureLogger();
    const err = await startupError(openKeyService({ config: p11Config({ token_label: 'no-such-token' }), stateDir, logger }));
    expect(err.message).toMatch(/token with label "no-such-token" not found/);
    expect(err.message).toContain('"edgeward-p11"');
    expect(err.message).not.toContain(PIN);
    expect(lines.join('')).not.toContain(PIN);
  });
});

describe('crash safety (H1)', () => {
  it('a secret key is generated under a pending label and relabelled once its value is written', async () => {
    // SoftHSM2's C_GenerateKey commits the template (label included) and the key's value in two
    // transactions; killed between them, a key generated under its final label was listed with no value and
    // failed every MAC (CKR_KEY_SIZE_RANGE, "internal error"): seen under H1, 3 in 200 kills of a bare loop.
    // The label C_GenerateKey receives must therefore be a pending one, which reconcile removes.
    const m = acquireLibrary(hsm.library); // the instance the open store uses
    const labels: string[] = [];
    const generate = m.C_GenerateKeyAsync;
    m.C_GenerateKeyAsync = function (this: typeof m, s, mech, template) {
      labels.push(String(template.find((a) => a.type === p.CKA_LABEL)?.value));
      return generate.call(this, s, mech, template);
    } as typeof m.C_GenerateKeyAsync;
    try {
      const h = await keys.createSecretKey(DAEMON_CALLER, { id: 'two-phase' }, 'hmac-sha256');
      expect(labels).toEqual([expect.stringMatching(/^edgeward-pending\/edgeward\/edgeward\/two-phase\/[0-9a-f]{32}$/)]);
      expect(await keys.sign(DAEMON_CALLER, h, 'hmac-sha256', MSG)).toHaveLength(32);
      expect(rawAttributes('edgeward/edgeward/two-phase').map((o) => o.cls)).toEqual([p.CKO_SECRET_KEY]);
      expect(rawAttributes(labels[0]!)).toEqual([]);
    } finally {
      m.C_GenerateKeyAsync = generate;
      releaseLibrary(hsm.library);
    }
  });

  it('orphans — a lone half and a pending pair — are reconciled at open; the id can then be created', async () => {
    withRawSession(hsm.library, token.label, true, (m, s) => {
      const ec = Buffer.from('06082a8648ce3d030107', 'hex');
      const pair = (pubLabel: string, privLabel: string) =>
        m.C_GenerateKeyPair(s, { mechanism: p.CKM_EC_KEY_PAIR_GEN },
          [{ type: p.CKA_TOKEN, value: true }, { type: p.CKA_LABEL, value: pubLabel }, { type: p.CKA_EC_PARAMS, value: ec }],
          [{ type: p.CKA_TOKEN, value: true }, { type: p.CKA_PRIVATE, value: true }, { type: p.CKA_LABEL, value: privLabel }]);
      // Killed between the two relabels: public final, private still pending.
      pair('edgeward/edgeward/half', 'edgeward-pending/edgeward/edgeward/half/00');
      // Killed right after generation.
      pair('edgeward-pending/edgeward/edgeward/fresh/01', 'edgeward-pending/edgeward/edgeward/fresh/01');
      // A secret key killed before its relabel (complete or not, it was never acknowledged).
      m.C_GenerateKey(s, { mechanism: p.CKM_GENERIC_SECRET_KEY_GEN }, [
        { type: p.CKA_CLASS, value: p.CKO_SECRET_KEY }, { type: p.CKA_KEY_TYPE, value: p.CKK_GENERIC_SECRET },
        { type: p.CKA_TOKEN, value: true }, { type: p.CKA_PRIVATE, value: true }, { type: p.CKA_ID, value: Buffer.from('02') },
        { type: p.CKA_LABEL, value: 'edgeward-pending/edgeward/edgeward/mac/02' }, { type: p.CKA_VALUE_LEN, value: 32 }]);
      // Another application's complete key with neither label nor ID: not a fragment, must survive.
      m.C_GenerateKeyPair(s, { mechanism: p.CKM_EC_KEY_PAIR_GEN },
        [{ type: p.CKA_TOKEN, value: true }, { type: p.CKA_EC_PARAMS, value: ec }],
        [{ type: p.CKA_TOKEN, value: true }, { type: p.CKA_PRIVATE, value: true }]);
    });
    const k2 = await openKeyService({ config: p11Config({ sessions: 2 }), stateDir, logger: pino({ level: 'silent' }) });
    try {
      const out = await pkcs11Tool(hsm, ['--token-label', token.label, '--list-objects', '--login', '--pin', PIN]);
      expect(out).not.toContain('edgeward-pending/');
      expect(out).not.toContain('edgeward/edgeward/half');
      const unlabelled = out.split(/\n(?=\S)/).filter((b) => /^\s*label:\s*$/m.test(b));
      expect(unlabelled.map((b) => b.split(';')[0]).sort()).toEqual(['Private Key Object', 'Public Key Object']);
      expect((await k2.loadKey(DAEMON_CALLER, { id: 'half' }).catch((e: KeyError) => e) as KeyError).tag).toBe('not-found');
      const h = await k2.createKeyPair(DAEMON_CALLER, { id: 'half' }, 'ec-p256');
      expect(await k2.sign(DAEMON_CALLER, h, 'ecdsa-sha256', MSG)).toBeInstanceOf(Buffer);
    } finally {
      await k2.close();
    }
  });
});
