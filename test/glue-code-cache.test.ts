/**
 * The glue's V8 code cache kept in the sealed transpile cache (host/runtime/glue-code-store.ts): made by
 * the rehearsal after a module's first start and written beside its transpile under the device key's MAC;
 * a new runtime (a new daemon) takes it at its first start and rehearses nothing; a cache file changed on
 * disk is not used (and is replaced); an unsealed cache and a confidential module keep none.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { clearGlueCodeCaches, glueCacheStats } from '../host/runtime/sandbox/glue-cache.js';
import { Fixture, spec, waitFor } from './helpers/runtime.js';

let fx: Fixture;
beforeEach(() => {
  fx = new Fixture();
  clearGlueCodeCaches();
});
afterEach(async () => {
  await fx.cleanup();
  clearGlueCodeCaches();
});

const key = randomBytes(32);
const cacheSeal = { mac: async (d: Uint8Array) => new Uint8Array(createHmac('sha256', key).update(d).digest()) };

describe('the glue code cache on disk', () => {
  it('is written after the first start where the cache is sealed; the next runtime takes it and rehearses nothing; a changed file is not used', { timeout: 60_000 }, async () => {
    const rt = await fx.runtime({ cacheSeal });
    const d = await rt.create(spec('echo', await fx.guest('echo')));
    const dir = path.join(fx.dir, 'state', 'cache', String(d.config.settings.imageHash).slice(7));
    const file = path.join(dir, 'glue.v8cache');
    await waitFor(() => existsSync(`${file}.mac`), 15_000);
    expect(glueCacheStats.rehearsals).toBeGreaterThan(0);
    const kept = await fs.readFile(file);
    expect(kept.length).toBeGreaterThan(10_000); // a rehearsed cache (echo's: ~95 KB), not a compile-only one
    await rt.close();

    // A new daemon: nothing in memory. Its first start takes the verified cache from disk.
    clearGlueCodeCaches();
    const before = { ...glueCacheStats };
    const rt2 = await fx.runtime({ cacheSeal });
    await rt2.start('echo');
    expect(await rt2.invoke('echo', 'x', 'from disk')).toEqual({ status: 200, payload: 'from disk' });
    await new Promise((r) => setTimeout(r, 300)); // past the rehearsal's delay
    expect(glueCacheStats.fromDisk - before.fromDisk).toBe(1);
    expect(glueCacheStats.rehearsals - before.rehearsals).toBe(0);
    await rt2.close();

    // One byte changed on disk: its MAC no longer matches, it is not used, and a rehearsal replaces it.
    kept[kept.length >> 1]! ^= 0x01;
    await fs.writeFile(file, kept);
    clearGlueCodeCaches();
    const mid = { ...glueCacheStats };
    const rt3 = await fx.runtime({ cacheSeal });
    await rt3.start('echo');
    expect(await rt3.invoke('echo', 'x', 'rebuilt')).toEqual({ status: 200, payload: 'rebuilt' });
    await waitFor(async () => !(await fs.readFile(file)).equals(kept), 15_000);
    expect(glueCacheStats.fromDisk - mid.fromDisk).toBe(0);
    expect(glueCacheStats.rehearsals - mid.rehearsals).toBe(1);
  });

  it('is not kept where the transpile cache is not sealed', { timeout: 60_000 }, async () => {
    const before = glueCacheStats.rehearsals;
    const rt = await fx.runtime();
    const d = await rt.create(spec('echo', await fx.guest('echo')));
    const dir = path.join(fx.dir, 'state', 'cache', String(d.config.settings.imageHash).slice(7));
    await waitFor(() => glueCacheStats.rehearsals === before + 1, 15_000);
    await new Promise((r) => setTimeout(r, 500)); // whatever it would write, written
    expect((await fs.readdir(dir)).filter((f) => f.startsWith('glue.'))).toEqual([]);
  });
});
