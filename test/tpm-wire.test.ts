/**
 * Wire-level checks against swtpm and tpm2-tools: command parameters byte-exact with tpm2-tools (its
 * `--cphash` output hashes the same bytes we marshal), concurrent callers serialised, the mssim framing
 * (through a relay to swtpm), and a real dictionary-attack lockout decoded as TPM_RC_LOCKOUT.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Swtpm, tpm2 } from '../hsm/tpm/testing/swtpm.js';
import { Tpm, createParams, hmacParams, signParams } from '../hsm/tpm/tpm.js';
import { SRK_HANDLE } from '../hsm/tpm/identity.js';
import { startTpm, stopTpm } from '../hsm/tpm/testing/fixture.js';
import { eccSigningTemplate, hmacTemplate, srkRsaTemplate } from '../hsm/tpm/templates.js';
import { ALG, CC, RH } from '../hsm/tpm/constants.js';
import { cpHash, passwordAuth } from '../hsm/tpm/session.js';
import { Reader } from '../hsm/tpm/marshal.js';
import { TpmError } from '../hsm/tpm/rc.js';
import { TcpTransport, TpmTransportError } from '../hsm/tpm/transport.js';
import { handleName } from '../hsm/tpm/types.js';
import { report } from './helpers/reliability.js';

const HMAC_KEY = 0x81000020;
const ECC_KEY = 0x81000021;

describe('TPM wire format (swtpm + tpm2-tools)', () => {
  let sim: Swtpm;
  let tpm: Tpm;
  let hmacKey: Buffer;
  beforeAll(async () => {
    ({ sim, tpm } = await startTpm());
    hmacKey = randomBytes(32);
    for (const [h, t, data] of [[HMAC_KEY, hmacTemplate({ external: true }), hmacKey], [ECC_KEY, eccSigningTemplate(), undefined]] as const) {
      const k = await tpm.create(SRK_HANDLE, t, { data });
      const l = await tpm.load(SRK_HANDLE, k.privateBytes, k.publicBytes);
      await tpm.evictControl(l.handle, h);
      await tpm.flushContext(l.handle);
    }
  });
  afterAll(() => stopTpm({ sim, tpm }));

  async function toolsCpHash(tool: string, args: string[]): Promise<string> {
    await tpm.close();
    await tpm2(sim, tool, [...args, '--cphash', 'cp.bin'], { cwd: sim.stateDir });
    return new Reader(await fs.readFile(path.join(sim.stateDir, 'cp.bin'))).b2().toString('hex');
  }

  it('marshals CreatePrimary, Create, Sign and HMAC parameters exactly as tpm2-tools does', async () => {
    const srkName = (await tpm.readPublic(SRK_HANDLE)).name;
    const eccName = (await tpm.readPublic(ECC_KEY)).name;
    const hmacName = (await tpm.readPublic(HMAC_KEY)).name;

    const ours = cpHash(ALG.SHA256, CC.CreatePrimary, [handleName(RH.OWNER)], createParams(srkRsaTemplate())).toString('hex');
    expect(await toolsCpHash('tpm2_createprimary', ['-C', 'o'])).toBe(ours);

    const create = cpHash(ALG.SHA256, CC.Create, [srkName], createParams(eccSigningTemplate())).toString('hex');
    expect(await toolsCpHash('tpm2_create', ['-C', '0x81000001', '-G', 'ecc256:ecdsa-sha256', '-a', 'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|sign'])).toBe(create);

    const digest = createHash('sha256').update('m').digest();
    await fs.writeFile(path.join(sim.stateDir, 'digest'), digest);
    const sign = cpHash(ALG.SHA256, CC.Sign, [eccName], signParams(digest, { scheme: ALG.ECDSA, hashAlg: ALG.SHA256 })).toString('hex');
    expect(await toolsCpHash('tpm2_sign', ['-c', `0x${ECC_KEY.toString(16)}`, '-g', 'sha256', '-d', 'digest'])).toBe(sign);

    await fs.writeFile(path.join(sim.stateDir, 'msg'), 'hello tpm');
    const hmac = cpHash(ALG.SHA256, CC.HMAC, [hmacName], hmacParams(Buffer.from('hello tpm'), ALG.SHA256)).toString('hex');
    expect(await toolsCpHash('tpm2_hmac', ['-c', `0x${HMAC_KEY.toString(16)}`, '-g', 'sha256', 'msg'])).toBe(hmac);
  });

  it('serialises concurrent callers on one connection', async () => {
    const inputs = Array.from({ length: 40 }, (_, i) => Buffer.from(`message ${i}`));
    const results = await Promise.all(inputs.map((m) => tpm.hmac(HMAC_KEY, m)));
    results.forEach((r, i) => expect(r.equals(createHmac('sha256', hmacKey).update(inputs[i]!).digest())).toBe(true));
  });

  it('regression: concurrent transmits on one swtpm connection both get their own response (one used to hang)', async () => {
    await tpm.close();
    const t = new TcpTransport('127.0.0.1', sim.port, 'swtpm', 5000);
    const getRandom = (n: number): Buffer => Buffer.from(`80010000000c0000017b00${n.toString(16).padStart(2, '0')}`, 'hex');
    try {
      const [a, b] = await Promise.all([t.transmit(getRandom(4)), t.transmit(getRandom(9))]);
      expect([a.readUInt16BE(10), b.readUInt16BE(10)]).toEqual([4, 9]);
    } finally {
      await t.close();
    }
  });

  it('speaks the mssim protocol (TPM_SEND_COMMAND framing), here through a relay to swtpm', async () => {
    await tpm.close();
    const upstream = new TcpTransport('127.0.0.1', sim.port, 'swtpm');
    const frames: number[] = [];
    const relay = net.createServer((sock) => {
      let buf = Buffer.alloc(0);
      sock.on('data', async (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        while (buf.length >= 4) {
          const cmd = buf.readUInt32BE(0);
          frames.push(cmd);
          if (cmd === 20) return sock.end();
          if (cmd !== 8 || buf.length < 9 || buf.length < 9 + buf.readUInt32BE(5)) return;
          const len = buf.readUInt32BE(5);
          const body = buf.subarray(9, 9 + len);
          buf = buf.subarray(9 + len);
          const rsp = await upstream.transmit(Buffer.from(body));
          const out = Buffer.alloc(8 + rsp.length);
          out.writeUInt32BE(rsp.length, 0);
          rsp.copy(out, 4);
          sock.write(out); // trailing UINT32 acknowledgement 0 already zero-filled
        }
      });
    });
    await new Promise<void>((r) => relay.listen(0, '127.0.0.1', () => r()));
    const port = (relay.address() as net.AddressInfo).port;
    const viaMssim = await Tpm.open(`mssim:host=127.0.0.1,port=${port}`);
    try {
      expect((await viaMssim.getRandom(16)).length).toBe(16);
      expect((await viaMssim.hmac(HMAC_KEY, Buffer.from('x'))).equals(createHmac('sha256', hmacKey).update('x').digest())).toBe(true);
    } finally {
      await viaMssim.close();
      await upstream.close();
      relay.close();
    }
    expect(frames.slice(0, 2)).toEqual([8, 8]);
    expect(frames.at(-1)).toBe(20);
  });

  it('starts a simulator that was powered on but not started (TPM_RC_INITIALIZE → TPM2_Startup)', async () => {
    const cold = await Swtpm.start({ startup: false });
    const raw = new TcpTransport('127.0.0.1', cold.port, 'swtpm');
    const cmd = Buffer.from('80010000000c0000017b0008', 'hex'); // TPM2_GetRandom(8)
    try {
      expect((await raw.transmit(cmd)).readUInt32BE(6)).toBe(0x100);
      await raw.close();
      const t = await Tpm.open(cold.tcti);
      expect((await t.getRandom(8)).length).toBe(8);
      await t.close();
    } finally {
      await raw.close();
      await cold.stop();
    }
  });

  it('reports a real dictionary-attack lockout as TPM_RC_LOCKOUT with the hint', async () => {
    await tpm.close();
    await tpm2(sim, 'tpm2_dictionarylockout', ['-s', '-n', '2', '-t', '600', '-l', '600']);
    const auth = Buffer.from('right');
    const k = await tpm.create(SRK_HANDLE, eccSigningTemplate(), { userAuth: auth });
    const l = await tpm.load(SRK_HANDLE, k.privateBytes, k.publicBytes);
    const digest = Buffer.alloc(32, 1);
    const codes: string[] = [];
    for (let i = 0; i < 3; i++) {
      const err = await tpm.sign(l, digest, null, passwordAuth(Buffer.from('wrong'))).catch((e: unknown) => e);
      codes.push((err as TpmError).code);
    }
    const locked = await tpm.sign(l, digest, null, passwordAuth(auth)).catch((e: unknown) => e);
    await tpm.flushContext(l.handle);
    expect(codes.slice(0, 2)).toEqual(['TPM_RC_AUTH_FAIL', 'TPM_RC_AUTH_FAIL']);
    expect((locked as TpmError).code).toBe('TPM_RC_LOCKOUT');
    expect((locked as Error).message).toMatch(/^TPM2_Sign failed: TPM_RC_LOCKOUT \[rc 0x921\]: the TPM is in dictionary-attack lockout/);    report('H7', `lockout after ${codes.filter((c) => c === 'TPM_RC_AUTH_FAIL').length} bad authorisations (swtpm, maxTries 2): typed TPM_RC_LOCKOUT; the key layer makes 0 retries`);
  });

  it('says "not answering" when the simulator goes away, and reconnects once it is back', async () => {
    expect((await tpm.getRandom(4)).length).toBe(4); // connection open
    await sim.stopProcess();
    const err = await tpm.getRandom(4).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TpmTransportError);
    expect((err as TpmTransportError).reason).toBe('not-answering');
    expect((err as Error).message).toMatch(new RegExp(`^TPM simulator not answering at 127\\.0\\.0\\.1:${sim.port} \\((connection closed by the simulator|ECONNREFUSED|ECONNRESET|EPIPE)`));
    await sim.restart();
    expect((await tpm.getRandom(4)).length).toBe(4);
  });
});
