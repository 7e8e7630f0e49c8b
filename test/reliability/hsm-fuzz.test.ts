/**
 * Reliability scenario H9, the TPM and PKCS#11 half (../shared/reference/reliability-scenarios.md): fuzz
 * what decodes bytes the TPM (or a man in the middle on its bus) sends, and the key-URI and TCTI parsers,
 * with fast-check for a bounded time. Every input ends in a decoded value or one of the layer's typed
 * errors — never another exception type (a RangeError from Buffer, a TypeError), never a hang.
 *
 * - The command layer (`Tpm`: header, handles, parameter and session areas, response HMACs, parameter
 *   decryption, retries) replays responses recorded from swtpm for real command sequences, one of them
 *   mutated (bit flips, truncation, overwritten sizes, inserted bytes) or replaced by arbitrary bytes.
 * - The transports' framing (swtpm raw and mssim) against a loopback server answering arbitrary bytes.
 * - rc.ts (`decodeRc`, `TpmError`) over every UINT32 shape; TPM2B_PUBLIC, TPMT_SIGNATURE, TPMS_ATTEST and
 *   the DPS authenticationKey parsers; RFC 7512 `pkcs11:` URIs and TCTI strings.
 */
import { constants, createHash, publicEncrypt } from 'node:crypto';
import net from 'node:net';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeyError } from '../../hsm/keys/types.js';
import { parsePkcs11Uri } from '../../hsm/keys/uri.js';
import { parseQuoteAttest } from '../../hsm/tpm/attest.js';
import { ALG, SE, digestSize } from '../../hsm/tpm/constants.js';
import { DpsImportError, parseAuthKeyBlob } from '../../hsm/tpm/dps.js';
import { SRK_HANDLE, ensureIdentity } from '../../hsm/tpm/identity.js';
import { publicKeyOf } from '../../hsm/tpm/pubkey.js';
import { Reader, TpmMarshalError } from '../../hsm/tpm/marshal.js';
import { TpmError, decodeRc } from '../../hsm/tpm/rc.js';
import { sealToPcrs, unsealWithPcrs, type SealedBlob } from '../../hsm/tpm/seal.js';
import { TpmSessionError } from '../../hsm/tpm/session.js';
import { eccSigningTemplate, hmacTemplate, rsaDecryptTemplate } from '../../hsm/tpm/templates.js';
import { Swtpm } from '../../hsm/tpm/testing/swtpm.js';
import { Tpm, TpmResetError } from '../../hsm/tpm/tpm.js';
import { TcpTransport, TpmTransportError, parseTcti, type TpmTransport } from '../../hsm/tpm/transport.js';
import { parseTpm2bPublic, readSignature, type TpmtPublic } from '../../hsm/tpm/types.js';
import { report } from '../helpers/reliability.js';

/** The errors a decoder may answer malformed input with. */
const TYPED = [TpmMarshalError, TpmError, TpmSessionError, TpmResetError, TpmTransportError, KeyError, DpsImportError];
/** Per-input bound: nothing may take longer (the command layer's retry back-off included). */
const HANG_MS = 3_000;

const tally = { execs: 0, crashes: [] as string[], hangs: 0, ms: 0 };

/** Run a fast-check campaign, adding its wall time to the tally. */
async function campaign(fn: () => Promise<void> | void): Promise<void> {
  const t0 = performance.now();
  try {
    await fn();
  } finally {
    tally.ms += performance.now() - t0;
  }
}

/** Run one input: a value or a typed error passes; anything else is a crash, recorded with the input. */
async function judge(what: string, input: unknown, fn: () => unknown): Promise<boolean> {
  tally.execs++;
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<'hang'>((resolve) => (timer = setTimeout(() => resolve('hang'), HANG_MS)));
  try {
    const out = await Promise.race([Promise.resolve().then(fn), hang]);
    if (out === 'hang') {
      tally.hangs++;
      tally.crashes.push(`${what}: no answer in ${HANG_MS} ms for ${show(input)}`);
      return false;
    }
    return true;
  } catch (err) {
    if (TYPED.some((T) => err instanceof T)) return true;
    tally.crashes.push(`${what}: ${(err as Error)?.name}: ${(err as Error)?.message} for ${show(input)}`);
    return false;
  } finally {
    clearTimeout(timer);
  }
}

function show(x: unknown): string {
  if (Buffer.isBuffer(x)) return x.toString('hex').slice(0, 200);
  return JSON.stringify(x, (_k, v) => (v?.type === 'Buffer' ? Buffer.from(v.data).toString('hex') : v))?.slice(0, 300) ?? String(x);
}

/** Answers with recorded responses in order (then TPM_RC_FAILURE), whatever the command: a TPM that lies. */
class Replay implements TpmTransport {
  readonly description = 'replay';
  private i = 0;
  constructor(private readonly responses: Buffer[]) {}
  async transmit(): Promise<Buffer> {
    return this.responses[this.i++] ?? FAILURE;
  }
  async close(): Promise<void> {}
}
const FAILURE = Buffer.from('80010000000a00000101', 'hex');

/** Records every response of the real TPM. */
class Recorder implements TpmTransport {
  responses: Buffer[] = [];
  constructor(private readonly inner: TpmTransport) {}
  get description(): string {
    return this.inner.description;
  }
  async transmit(cmd: Buffer): Promise<Buffer> {
    const rsp = await this.inner.transmit(cmd);
    this.responses.push(rsp);
    return rsp;
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

interface Scenario {
  readonly name: string;
  readonly run: (tpm: Tpm) => Promise<unknown>;
  responses: Buffer[];
}

/** Command sequences as the key backend, identity and sealing code send them; their inputs are fixed at setup. */
function scenarios(ctx: { sealed: SealedBlob; srk: TpmtPublic; ec: { priv: Buffer; pub: Buffer }; rsa: { priv: Buffer; pub: Buffer; ciphertext: Buffer }; hmac: { priv: Buffer; pub: Buffer } }): Scenario[] {
  const saltKey = { handle: SRK_HANDLE, public: ctx.srk };
  const digest = createHash('sha256').update('fuzz').digest();
  const list: Array<Omit<Scenario, 'responses'>> = [
    { name: 'GetRandom', run: (t) => t.getRandom(48) },
    { name: 'GetCapability', run: async (t) => [await t.getProperties(0x100, 32), await t.getHandles(0x81000000), await t.permanentFlags()] },
    { name: 'ReadPublic', run: (t) => t.readPublic(SRK_HANDLE) },
    { name: 'PCR_Read', run: (t) => t.pcrRead([{ hashAlg: ALG.SHA256, pcrs: [0, 1, 7, 23] }]) },
    { name: 'Create', run: (t) => t.create(SRK_HANDLE, eccSigningTemplate()) },
    {
      name: 'Load+Sign ECDSA+Flush',
      run: async (t) => {
        const k = await t.load(SRK_HANDLE, ctx.ec.priv, ctx.ec.pub);
        const sig = await t.sign(k, digest, { scheme: ALG.ECDSA, hashAlg: ALG.SHA256 });
        await t.flushContext(k.handle);
        return sig;
      },
    },
    {
      name: 'Load+RSA_Decrypt+Flush',
      run: async (t) => {
        const k = await t.load(SRK_HANDLE, ctx.rsa.priv, ctx.rsa.pub);
        const out = await t.rsaDecrypt(k, ctx.rsa.ciphertext);
        await t.flushContext(k.handle);
        return out;
      },
    },
    {
      name: 'HMAC and HMAC sequence',
      run: async (t) => {
        const k = await t.load(SRK_HANDLE, ctx.hmac.priv, ctx.hmac.pub);
        const a = await t.hmac(k, Buffer.from('short'));
        const b = await t.hmacSequence(k, Buffer.alloc(2500, 7));
        await t.flushContext(k.handle);
        return [a, b];
      },
    },
    {
      name: 'salted session, HMAC with response encryption',
      run: async (t) => {
        const k = await t.load(SRK_HANDLE, ctx.hmac.priv, ctx.hmac.pub);
        const s = await t.startAuthSession(SE.HMAC, ALG.SHA256, { saltKey });
        const out = await t.hmac(k, Buffer.from('derive'), ALG.SHA256, s.authorize(Buffer.alloc(0), { encrypt: true }));
        await t.flushContext(s.handle);
        await t.flushContext(k.handle);
        return out;
      },
    },
    {
      name: 'unseal through a salted policy session',
      run: (t) => unsealWithPcrs(t, SRK_HANDLE, ctx.sealed, { saltKey }),
    },
  ];
  return list.map((s) => ({ ...s, responses: [] }));
}

/** One mutation of one response. */
type Mutation =
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'set'; at: number; value: number }
  | { kind: 'u16'; at: number; value: number }
  | { kind: 'u32'; at: number; value: number }
  | { kind: 'insert'; at: number; bytes: Uint8Array }
  | { kind: 'replace'; bytes: Uint8Array };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('set' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('u16' as const), at: fc.nat(), value: fc.constantFrom(0, 1, 0x7fff, 0x8000, 0xffff) }),
  fc.record({ kind: fc.constant('u32' as const), at: fc.nat(), value: fc.constantFrom(0, 1, 0x80000000, 0xffffffff, 0x922, 0x100, 0x902) }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }) }),
  fc.record({ kind: fc.constant('replace' as const), bytes: fc.uint8Array({ maxLength: 64 }) }),
);

function mutate(b: Buffer, m: Mutation): Buffer {
  const out = Buffer.from(b);
  const at = b.length === 0 ? 0 : (m as { at?: number }).at! % b.length;
  switch (m.kind) {
    case 'flip':
      if (out.length > 0) out[at] = out[at]! ^ (1 << m.bit);
      return out;
    case 'truncate':
      return out.subarray(0, at);
    case 'set':
      if (out.length > 0) out[at] = m.value;
      return out;
    case 'u16':
      if (at + 2 <= out.length) out.writeUInt16BE(m.value, at);
      return out;
    case 'u32':
      if (at + 4 <= out.length) out.writeUInt32BE(m.value >>> 0, at);
      return out;
    case 'insert':
      return Buffer.concat([out.subarray(0, at), Buffer.from(m.bytes), out.subarray(at)]);
    case 'replace':
      return Buffer.from(m.bytes);
  }
}

/** Keep the header's size field in step with the length half of the time, so the parser gets past framing. */
function reframe(b: Buffer, fix: boolean): Buffer {
  if (fix && b.length >= 6) b.writeUInt32BE(b.length, 2);
  return b;
}

describe('H9: fuzzing the TPM response decoders and the key-URI parsers', () => {
  let sim: Swtpm;
  let list: Scenario[];
  beforeAll(async () => {
    sim = await Swtpm.start();
    const setup = await Tpm.open(sim.tcti);
    try {
      const id = await ensureIdentity(setup);
      const ec = await setup.create(SRK_HANDLE, eccSigningTemplate());
      const rsa = await setup.create(SRK_HANDLE, rsaDecryptTemplate());
      const hmac = await setup.create(SRK_HANDLE, hmacTemplate());
      const saltKey = { handle: SRK_HANDLE, public: id.srk.public };
      list = scenarios({
        sealed: await sealToPcrs(setup, SRK_HANDLE, Buffer.alloc(32, 9), [{ hashAlg: ALG.SHA256, pcrs: [23] }], undefined, { saltKey }),
        srk: id.srk.public,
        ec: { priv: ec.privateBytes, pub: ec.publicBytes },
        rsa: {
          priv: rsa.privateBytes, pub: rsa.publicBytes,
          ciphertext: publicEncrypt({ key: publicKeyOf(rsa.public), padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, Buffer.from('secret')),
        },
        hmac: { priv: hmac.privateBytes, pub: hmac.publicBytes },
      });
    } finally {
      await setup.close();
    }
    // Record each scenario's responses from the real TPM.
    for (const s of list) {
      const rec = new Recorder(new TcpTransport('127.0.0.1', sim.port, 'swtpm', 10_000));
      try {
        await s.run(new Tpm(rec));
      } finally {
        await rec.close();
      }
      s.responses = rec.responses;
    }
  }, 60_000);
  afterAll(() => sim?.stop());

  afterAll(() => {
    const held = tally.crashes.length === 0;
    report('H9', `TPM half: ${tally.execs} execs in ${(tally.ms / 1000).toFixed(1)} s (command layer over ${list?.length ?? 0} recorded command sequences, transports, rc, TPM2B_PUBLIC, TPMT_SIGNATURE, TPMS_ATTEST, DPS blob, pkcs11: URIs, TCTI), crashes ${tally.crashes.length}, hangs ${tally.hangs}`, held);
  });

  it('recorded sequences replay cleanly (the oracle: unmutated responses decode)', async () => {
    for (const s of list) {
      expect(s.responses.length, s.name).toBeGreaterThan(0);
      // Without sessions the replay is exact; with them the nonces differ and the HMAC check refuses: typed.
      const out = await s.run(new Tpm(new Replay(s.responses))).then(() => 'ok', (e: unknown) => (e as Error).name);
      expect(['ok', 'TpmSessionError'], s.name).toContain(out);
    }
  });

  it('the command layer: one response mutated or replaced, in every recorded sequence', { timeout: 60_000 }, async () => {
    await campaign(() => fc.assert(
      fc.asyncProperty(fc.nat(), fc.nat(), mutation, fc.boolean(), async (which, index, m, fix) => {
        const s = list[which % list.length]!;
        const responses = [...s.responses];
        const i = index % responses.length;
        responses[i] = reframe(mutate(responses[i]!, m), fix);
        return judge(`Tpm ${s.name} (response ${i} ${m.kind})`, { scenario: s.name, i, m }, () => s.run(new Tpm(new Replay(responses))));
      }),
      { numRuns: 1_000_000, interruptAfterTimeLimit: 6_000, markInterruptAsFailure: false },
    ));
    expect(tally.crashes).toEqual([]);
  });

  it('arbitrary bytes as every response', { timeout: 30_000 }, async () => {
    await campaign(() => fc.assert(
      fc.asyncProperty(fc.nat(), fc.array(fc.uint8Array({ maxLength: 300 }), { minLength: 1, maxLength: 12 }), fc.boolean(), async (which, rsps, fix) => {
        const s = list[which % list.length]!;
        const responses = rsps.map((b) => reframe(Buffer.from(b), fix));
        return judge(`Tpm ${s.name} (arbitrary)`, { scenario: s.name, responses }, () => s.run(new Tpm(new Replay(responses))));
      }),
      { numRuns: 1_000_000, interruptAfterTimeLimit: 1_500, markInterruptAsFailure: false },
    ));
    expect(tally.crashes).toEqual([]);
  });

  it('rc.ts over any UINT32; structure parsers over arbitrary and mutated bytes', { timeout: 30_000 }, async () => {
    await campaign(() => fc.assert(
      fc.property(fc.oneof(fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 0, max: 0xfff })), (rc) => {
        tally.execs++;
        const d = decodeRc(rc);
        const e = new TpmError(0x17b, rc);
        return typeof d.code === 'string' && e.rc === rc && e.message.length > 0;
      }),
      { numRuns: 20_000 },
    ));
    const realPublic = list.find((s) => s.name === 'ReadPublic')!.responses[0]!.subarray(10);
    const structures: Array<[string, (b: Buffer) => unknown, Buffer]> = [
      ['TPM2B_PUBLIC', (b) => parseTpm2bPublic(b), realPublic],
      ['TPMT_SIGNATURE', (b) => readSignature(new Reader(b), digestSize), Buffer.from('0018000b0020' + '11'.repeat(32) + '0020' + '22'.repeat(32), 'hex')],
      ['TPMS_ATTEST', (b) => parseQuoteAttest(b), Buffer.from('ff54434780180000', 'hex')],
      ['DPS authenticationKey', (b) => parseAuthKeyBlob(b), Buffer.concat([Buffer.from('0002aaaa0002bbbb0002cccc0002dddd', 'hex'), realPublic])],
    ];
    await campaign(() => fc.assert(
      fc.asyncProperty(fc.nat(), fc.oneof(fc.uint8Array({ maxLength: 600 }).map((b) => ({ raw: b })), mutation.map((m) => ({ m }))), async (which, input) => {
        const [name, parse, seed] = structures[which % structures.length]!;
        const bytes = 'raw' in input ? Buffer.from(input.raw) : mutate(seed, input.m);
        return judge(name, bytes, () => parse(bytes));
      }),
      { numRuns: 1_000_000, interruptAfterTimeLimit: 1_500, markInterruptAsFailure: false },
    ));
    expect(tally.crashes).toEqual([]);
  });

  it('pkcs11: URIs (RFC 7512) and TCTI strings', { timeout: 30_000 }, async () => {
    const uriPart = fc.oneof(
      fc.constantFrom('token=', 'object=', 'id=', 'serial=', 'slot-id=', 'type=', 'manufacturer=', 'model=', 'pin-value=', 'x='),
      fc.string({ maxLength: 12 }),
      fc.constantFrom('%', '%4', '%zz', '%41', ';', '?', '&', '=', 'private', 'secret-key', '-1', '1e3', '99999999999999999999'),
    );
    const uri = fc.oneof(
      fc.string({ maxLength: 80, unit: 'binary' }),
      fc.array(uriPart, { maxLength: 12 }).map((ps) => `pkcs11:${ps.join('')}`),
    );
    const tcti = fc.oneof(
      fc.string({ maxLength: 40 }),
      fc.tuple(fc.constantFrom('swtpm', 'mssim', 'device', 'tabrmd', ''), fc.array(fc.oneof(fc.constantFrom('host=', 'port=', ',', ':', '=', '65536', '0', '-1', '2321'), fc.string({ maxLength: 6 })), { maxLength: 6 }))
        .map(([n, ps]) => `${n}:${ps.join('')}`),
    );
    await campaign(() => fc.assert(
      fc.asyncProperty(fc.oneof(uri.map((u) => ({ u })), tcti.map((t) => ({ t }))), async (x) =>
        'u' in x ? judge('parsePkcs11Uri', x.u, () => parsePkcs11Uri(x.u)) : judge('parseTcti', x.t, () => parseTcti(x.t)),
      ),
      { numRuns: 8_000 },
    ));
    expect(tally.crashes).toEqual([]);
  });

  it('transport framing (swtpm raw and mssim) against a server answering arbitrary bytes: an answer or a typed error within the timeout', { timeout: 30_000 }, async () => {
    let answer: { bytes: Buffer; close: boolean } = { bytes: Buffer.alloc(0), close: true };
    const server = net.createServer((sock) => {
      sock.on('error', () => undefined);
      sock.on('data', () => {
        sock.write(answer.bytes);
        if (answer.close) sock.end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as net.AddressInfo).port;
    const TIMEOUT = 150;
    try {
      const real = list.find((s) => s.name === 'GetRandom')!.responses[0]!;
      const mssimFrame = (b: Buffer): Buffer => Buffer.concat([u32(b.length), b, u32(0)]);
      await campaign(() => fc.assert(
        fc.asyncProperty(
          fc.constantFrom('swtpm' as const, 'mssim' as const),
          fc.oneof(fc.uint8Array({ maxLength: 64 }).map((b) => ({ raw: b })), mutation.map((m) => ({ m }))),
          fc.boolean(),
          async (protocol, input, close) => {
            const seed = protocol === 'mssim' ? mssimFrame(real) : real;
            answer = { bytes: 'raw' in input ? Buffer.from(input.raw) : mutate(seed, input.m), close };
            const t = new TcpTransport('127.0.0.1', port, protocol, TIMEOUT);
            const t0 = performance.now();
            try {
              return await judge(`${protocol} transport`, answer, async () => {
                const rsp = await t.transmit(Buffer.from('80010000000c0000017b0008', 'hex'));
                // A response that passes framing says its own length.
                if (rsp.length < 10 || rsp.readUInt32BE(2) !== rsp.length) throw new Error(`framing let through ${rsp.toString('hex')}`);
              });
            } finally {
              await t.close();
              if (performance.now() - t0 > TIMEOUT + 1_000) tally.crashes.push(`${protocol} transport took ${(performance.now() - t0).toFixed(0)} ms`);
            }
          },
        ),
        { numRuns: 1_000_000, interruptAfterTimeLimit: 2_500, markInterruptAsFailure: false },
      ));
    } finally {
      await new Promise((r) => server.close(r));
    }
    expect(tally.crashes).toEqual([]);
  });
});

function u32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v);
  return b;
}
