/**
 * Issue 14, "a memory budget you can see": the runtime's memory budget (host/runtime/memory-budget.ts)
 * reports each module's linear memory and worker heap as its worker measures them, the component code
 * shared by modules of one digest once, and never waits on a worker busy in a guest call; the daemon's
 * `system status` carries it (`--json`) and prints it.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { buildTestGuest } from '../guests/adversarial/components.js';
import { WASM_PAGE_BYTES } from '../host/runtime/wasm-memory.js';
import { checkReply } from '../host/runtime/sandbox/index.js';
import type { MemoryBudget, ModuleMemory } from '../host/status.js';
import { Fixture, rejection, spec, TEST_LIMITS } from './helpers/runtime.js';
import { daemonHomePerTest, modulesStarted, runCli, startDaemon } from './helpers/cli.js';

const MIB = 1024 * 1024;

function share(b: MemoryBudget, name: string): ModuleMemory {
  const m = b.modules.find((x) => x.name === name);
  if (!m) throw new Error(`no memory figures for ${name}: ${JSON.stringify(b.modules.map((x) => x.name))}`);
  return m;
}

it('a worker\'s memory answer is checked like every worker message: whole non-negative byte counts only', () => {
  const memory = { linear: 65536, heapUsed: 1, heapTotal: 2, heapLimit: 3, external: 0 };
  expect(checkReply({ id: 7, t: 'memory', memory })).toEqual({ id: 7, t: 'memory', memory });
  for (const bad of [undefined, null, [], { ...memory, linear: -1 }, { ...memory, heapUsed: 1.5 }, { ...memory, external: '0' }, { linear: 1 }]) {
    expect(checkReply({ id: 7, t: 'memory', memory: bad })).toBe('"memory" is malformed');
  }
  expect(checkReply({ id: 7, t: 'ok', value: '', memory: 'x' })).toBe('"memory" is malformed');
});

describe('memory budget of a runtime', () => {
  let fx: Fixture;
  beforeEach(() => {
    fx = new Fixture();
  });
  afterEach(async () => {
    await fx.cleanup();
  });

  it('a module whose linear memory grew shows it; an idle one shows its one page; heaps are capped', async () => {
    const rt = await fx.runtime();
    const [echo, bomb] = [await fx.guest('echo'), await fx.guest('membomb')];
    await rt.create(spec('idle', echo));
    await rt.create(spec('grower', bomb));
    const before = await rt.memoryBudget();
    expect(share(before, 'grower').linearBytes).toBe(WASM_PAGE_BYTES);
    // membomb grows one page at a time until its ceiling refuses, and answers how many pages it reached.
    const pages = Number((await rt.invoke('grower', 'grow', null)).payload);
    expect(pages).toBe((TEST_LIMITS.memory_mib * MIB) / WASM_PAGE_BYTES);
    const after = await rt.memoryBudget();
    expect(share(after, 'grower')).toMatchObject({ state: 'ok', linearBytes: pages * WASM_PAGE_BYTES });
    expect(share(after, 'idle')).toMatchObject({ state: 'ok', linearBytes: WASM_PAGE_BYTES });
    for (const m of after.modules) {
      expect(m.heapUsedBytes).toBeGreaterThan(0);
      expect(m.heapUsedBytes!).toBeLessThan(m.heapLimitBytes!);
      // The worker's resourceLimits (pool.ts: 64 MiB old + young generation), not V8's default of GBs.
      expect(m.heapLimitBytes!).toBeLessThan(96 * MIB);
    }
    expect(after.daemon.rss).toBeGreaterThan(after.daemon.heapUsed);
  }, 30_000);

  it('modules of one digest share its code, counted once; another digest is its own entry', async () => {
    const rt = await fx.runtime();
    const [echo, bomb] = [await fx.guest('echo'), await fx.guest('membomb')];
    await rt.create(spec('a', echo));
    await rt.create(spec('b', echo));
    await rt.create(spec('c', bomb));
    const b = await rt.memoryBudget();
    expect(b.code).toHaveLength(2);
    const shared = b.code.find((c) => c.modules.length === 2)!;
    expect(shared).toMatchObject({ modules: ['a', 'b'], bytes: statSync(echo).size });
    expect(share(b, 'a')).toMatchObject({ codeBytes: statSync(echo).size, codeSharedBy: 2 });
    expect(share(b, 'c')).toMatchObject({ codeBytes: statSync(bomb).size, codeSharedBy: 1 });
  }, 30_000);

  it('a module spinning in a guest call does not hold the budget up: its figures are unknown (busy)', async () => {
    const rt = await fx.runtime();
    await rt.create(spec('idle', await fx.guest('echo')));
    await rt.create(spec('spinner', await fx.guest('spin'), { limits: { call_timeout_ms: 3_000 } }));
    const spinning = rejection(rt.invoke('spinner', 'spin', null));
    await new Promise((r) => setTimeout(r, 100)); // the worker is inside the guest's loop
    const t0 = performance.now();
    const b = await rt.memoryBudget(200);
    const took = performance.now() - t0;
    expect(took).toBeLessThan(1_000);
    expect(share(b, 'spinner')).toMatchObject({ state: 'busy', linearBytes: null, heapUsedBytes: null });
    expect(share(b, 'idle')).toMatchObject({ state: 'ok', linearBytes: WASM_PAGE_BYTES });
    // The probe did not end the instance: the call runs on to its own deadline.
    expect((await spinning).code).toBe('timeout');
  }, 30_000);
});

describe('memory budget in `edgeward system status`', () => {
  const t = daemonHomePerTest();

  it('--json carries the memory object; the text prints daemon RSS and each module', async () => {
    writeFileSync(path.join(t.home, 'echo.wasm'), await buildTestGuest('echo'));
    writeFileSync(path.join(t.home, 'membomb.wasm'), await buildTestGuest('membomb'));
    const manifest = path.join(t.home, 'manifest.json');
    writeFileSync(manifest, JSON.stringify({ modules: { echo: { settings: { image: './echo.wasm' } }, grower: { settings: { image: './membomb.wasm' } } } }));
    writeFileSync(path.join(t.home, 'config.toml'), `[provisioning]\nsource = "none"\n[runtime]\ndeployment = "${manifest}"\n`);
    t.daemon = await startDaemon(t.env);
    expect(await modulesStarted(t.env)).toEqual(['echo', 'grower']);
    const grown = await runCli(['invoke', 'grower', 'grow', 'null'], t.env);
    expect(grown.code, grown.stderr).toBe(0);

    const json = await runCli(['system', 'status', '--json'], t.env);
    expect(json.code, json.stderr).toBe(0);
    const memory = (JSON.parse(json.stdout) as { memory: MemoryBudget }).memory;
    expect(memory.daemon.rss).toBeGreaterThan(20 * MIB);
    expect(share(memory, 'echo')).toMatchObject({ state: 'ok', linearBytes: WASM_PAGE_BYTES });
    expect(share(memory, 'grower').linearBytes).toBe(Number(grown.stdout.trim()) * WASM_PAGE_BYTES);
    expect(memory.code.map((c) => c.modules)).toEqual(expect.arrayContaining([['echo'], ['grower']]));

    const text = await runCli(['system', 'status'], t.env);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/^Memory: daemon RSS \d+\.\d MiB/m);
    expect(text.stdout).toMatch(/^\s+MODULE\s+LINEAR MEMORY\s+WORKER HEAP\s+OFF-HEAP\s+SHARED CODE$/m);
    expect(text.stdout).toMatch(/^\s+echo\s+64\.0 KiB\s+\d+\.\d MiB of \d+\.\d MiB\s+\d+\.\d [KM]iB\s+\d+\.\d KiB$/m);
    expect(text.stdout).toMatch(/^\s+grower\s+\d+\.\d MiB\s+/m);
  }, 90_000);
});
