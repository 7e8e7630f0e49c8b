/**
 * A component's declared types kept in the sealed transpile cache (host/runtime/loader.ts): decoded once,
 * when the component is transpiled, written into the index the device key seals; a new runtime (a new
 * daemon) checks those against the host's WIT instead of decoding the bytes again. An unsealed cache
 * keeps none.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { decodeComponentTypes } from '../host/boundary/decode.js';
import { Fixture, rejection, spec } from './helpers/runtime.js';

let fx: Fixture;
beforeEach(() => { fx = new Fixture(); });
afterEach(async () => { await fx.cleanup(); });

const key = randomBytes(32);
const mac = (d: Uint8Array) => createHmac('sha256', key).update(d).digest();
const cacheSeal = { mac: async (d: Uint8Array) => new Uint8Array(mac(d)) };

describe('declared types in the sealed cache', () => {
  it('are written with the sealed index, and a new runtime checks what the index says', { timeout: 60_000 }, async () => {
    const guest = await fx.guest('echo');
    const rt = await fx.runtime({ cacheSeal });
    const d = await rt.create(spec('echo', guest));
    const dir = path.join(fx.dir, 'state', 'cache', String(d.config.settings.imageHash).slice(7));
    const index = JSON.parse(await fs.readFile(path.join(dir, 'index.json'), 'utf8'));
    expect(index.types).toEqual(decodeComponentTypes(await fs.readFile(guest)));
    await rt.close();

    // As kept, a new runtime starts it.
    const rt2 = await fx.runtime({ cacheSeal });
    await rt2.start('echo');
    expect(await rt2.invoke('echo', 'x', 'kept')).toEqual({ status: 200, payload: 'kept' });
    await rt2.close();

    // An index whose types say the lifecycle export is a function, sealed with the device key (as only
    // the daemon could): the component's bytes are unchanged, and the new runtime refuses the start on
    // the index's types, so those are what it checked.
    const lifecycle = Object.keys(index.types.exports).find((n) => n.startsWith('edgeward:module/lifecycle'))!;
    expect(lifecycle).toBeDefined();
    index.types.exports[lifecycle] = { k: 'func', params: [] };
    const forged = Buffer.from(JSON.stringify(index));
    await fs.writeFile(path.join(dir, 'index.json'), forged);
    await fs.writeFile(path.join(dir, 'index.mac'), mac(forged).toString('hex'));
    const rt3 = await fx.runtime({ cacheSeal });
    const err = await rejection(rt3.start('echo'));
    expect(err.code).toBe('type-mismatch');
    expect(err.message).toMatch(/is a func, the host calls an interface/);
  });

  it('are not kept where the cache is not sealed', { timeout: 60_000 }, async () => {
    const rt = await fx.runtime();
    const d = await rt.create(spec('echo', await fx.guest('echo')));
    const dir = path.join(fx.dir, 'state', 'cache', String(d.config.settings.imageHash).slice(7));
    expect(JSON.parse(await fs.readFile(path.join(dir, 'index.json'), 'utf8'))).not.toHaveProperty('types');
  });
});
