import { describe, expect, it } from 'vitest';
import net from 'node:net';
import { TpmTransportError, deviceOpenError, openTransport, parseTcti } from './transport.js';

describe('parseTcti', () => {
  it('parses the strings tpm2-tools accepts', () => {
    expect(parseTcti('device')).toEqual({ kind: 'device', path: '/dev/tpmrm0' });
    expect(parseTcti('device:/dev/tpm0')).toEqual({ kind: 'device', path: '/dev/tpm0' });
    expect(parseTcti('swtpm:host=127.0.0.1,port=2321')).toEqual({ kind: 'swtpm', host: '127.0.0.1', port: 2321 });
    expect(parseTcti('swtpm:port=4000')).toEqual({ kind: 'swtpm', host: 'localhost', port: 4000 });
    expect(parseTcti('mssim')).toEqual({ kind: 'mssim', host: 'localhost', port: 2321 });
  });

  it('rejects unknown TCTIs and options', () => {
    expect(() => parseTcti('tabrmd')).toThrow(/unknown TCTI "tabrmd"/);
    expect(() => parseTcti('swtpm:port=99999')).toThrow(/bad TCTI option "port=99999"/);
  });
});

describe('transport errors', () => {
  it('reports a missing device with a hint', async () => {
    const err = await openTransport('device:/nonexistent/tpmrm0').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TpmTransportError);
    expect((err as TpmTransportError).reason).toBe('no-device');
    expect((err as Error).message).toMatch(/no TPM device at \/nonexistent\/tpmrm0 \(ENOENT\)/);
  });

  it('explains permission denied with the udev rule and the tss group', () => {
    const e = Object.assign(new Error('EACCES: permission denied'), { code: 'EACCES' });
    const err = deviceOpenError('/dev/tpmrm0', e);
    expect(err.reason).toBe('permission');
    expect(err.message).toContain('permission denied opening /dev/tpmrm0');
    expect(err.message).toContain('KERNEL=="tpmrm[0-9]*", GROUP="tss", MODE="0660"');
    expect(err.message).toContain('usermod -aG tss');
  });

  it('checks the framing of what a device returns (here /dev/null and /dev/zero)', async () => {
    const cmd = Buffer.from('80010000000c0000017b0008', 'hex');
    const devNull = await openTransport('device:/dev/null');
    await expect(devNull.transmit(cmd)).rejects.toThrow(/^short TPM response from device \/dev\/null \(0 bytes\)$/);
    await devNull.close();
    const devZero = await openTransport('device:/dev/zero');
    await expect(devZero.transmit(cmd)).rejects.toThrow(/^TPM response from device \/dev\/zero says 0 bytes, got 16384$/);
    await devZero.close();
  });

  it('reports a simulator that is not listening', async () => {
    const srv = net.createServer();
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
    const port = (srv.address() as net.AddressInfo).port;
    await new Promise<void>((r) => srv.close(() => r()));
    const t = await openTransport(`swtpm:host=127.0.0.1,port=${port}`);
    const err = await t.transmit(Buffer.from('80010000000c0000017b0008', 'hex')).catch((e: unknown) => e);
    expect((err as TpmTransportError).reason).toBe('not-answering');
    expect((err as Error).message).toMatch(new RegExp(`TPM simulator not answering at 127.0.0.1:${port} \\(ECONNREFUSED\\)`));
  });

  it('times out a simulator that accepts but never answers', async () => {
    const srv = net.createServer(() => undefined);
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
    const port = (srv.address() as net.AddressInfo).port;
    const t = await openTransport(`swtpm:host=127.0.0.1,port=${port}`, 300);
    const err = await t.transmit(Buffer.from('80010000000c0000017b0008', 'hex')).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/did not answer within 300 ms/);
    await t.close();
    srv.close();
  });
});
