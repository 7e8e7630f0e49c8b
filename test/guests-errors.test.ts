/**
 * Guest errors: a JS Error thrown from a componentize-js guest's export (guests/adversarial/thrower,
 * built through guests/build.mjs and its export wrapper) is the module's answer, not a trap: invoke
 * answers `{status: 422, payload: {code: "guest-error", message}}`, the message and stack go to the
 * module log, the instance keeps running; a start that throws leaves a clear status and log; the API
 * and the CLI show the guest's message. A real WebAssembly trap (the WAT `crash` guest) stays a trap.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { createAdaptorServer } from '@hono/node-server';
import { Command } from 'commander';
import { Hono } from 'hono';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { errorHandler } from '../host/api/errors.js';
import { modulesRoutes } from '../host/api/management/modules.js';
import { createMgmtClient } from '../host/cli/client.js';
import { registerModuleCommands } from '../host/cli/commands/modules.js';
import { silentLogger } from '../host/log.js';
import type { ComponentRuntime } from '../host/runtime/runtime.js';
import { ROOT } from './helpers/cli.js';
import { Fixture, moduleLogLines, rejection, spec, waitFor } from './helpers/runtime.js';

const THROWER_DIR = path.join(ROOT, 'guests', 'adversarial', 'thrower');
const THROWER = path.join(THROWER_DIR, 'dist', 'thrower.wasm');

beforeAll(() => {
  // Cached by source hash: a no-op when the guest is up to date (else ~10-30 s of componentize-js).
  const r = spawnSync(process.execPath, [path.join(ROOT, 'guests', 'build.mjs'), THROWER_DIR], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`building the thrower guest failed:\n${r.stderr}`);
}, 120_000);

let fx: Fixture;
beforeEach(() => { fx = new Fixture(); });
afterEach(async () => { await fx.cleanup(); });

const status = async (rt: ComponentRuntime, name: string) => (await rt.get(name)).status.runtimeStatus;

describe('an Error thrown from invoke', () => {
  it('answers 422 guest-error with its message, logs message and stack, and the instance keeps running', async () => {
    const rt = await fx.runtime();
    await rt.create(spec('thrower', THROWER, { restartPolicy: 'always' }));
    expect(await rt.invoke('thrower', 'kaboom', null)).toEqual({ status: 422, payload: { code: 'guest-error', message: 'kaboom' } });
    expect(await rt.invoke('thrower', 'kaboom', { message: 'disk on fire' })).toEqual({ status: 422, payload: { code: 'guest-error', message: 'disk on fire' } });
    // An Error the engine throws (TypeError) is the same kind of answer.
    const typeError = await rt.invoke('thrower', 'type', null);
    expect(typeError).toMatchObject({ status: 422, payload: { code: 'guest-error', message: expect.stringMatching(/null/) } });
    // A thrown string is the author's own `err` answer, as before, and not logged as a failure.
    expect(await rt.invoke('thrower', 'refuse', null)).toEqual({ status: 422, payload: { code: 'guest-error', message: 'refused' } });

    // Same instance, no crash, no restart.
    expect(await rt.invoke('thrower', 'echo', { still: 'here' })).toEqual({ status: 200, payload: { still: 'here' } });
    const d = await rt.get('thrower');
    expect(d.status.runtimeStatus.status).toBe('running');
    expect(d.edgeward).toMatchObject({ restartCount: 0, crashCount: 0 });
    expect(rt.events('thrower').map((e) => e.kind)).toEqual(['created', 'started']);

    const lines = await moduleLogLines(rt, 'thrower');
    const at = lines.findIndex((l) => /ERROR lifecycle\.invoke threw Error: kaboom$/.test(l));
    expect(at).toBeGreaterThanOrEqual(0);
    // The stack follows, naming the guest's own function that threw.
    expect(lines[at + 1]).toMatch(/ERROR .*explode@/);
    expect(lines.some((l) => /ERROR lifecycle\.invoke threw Error: disk on fire$/.test(l))).toBe(true);
    expect(lines.some((l) => /ERROR lifecycle\.invoke threw TypeError: /.test(l))).toBe(true);
    expect(lines.some((l) => /refused/.test(l))).toBe(false);
  });
});

describe('an Error thrown from start', () => {
  it('refuses the start with a guest-error that names the message, in the status and the log', async () => {
    const rt = await fx.runtime();
    const err = await rejection(rt.create(spec('thrower', THROWER, { env: { THROW_AT_START: 'no config for you' } })));
    expect(err.code).toBe('guest-error');
    expect(err.message).toBe('module "thrower" refused to start: its start answered: no config for you');
    expect(await status(rt, 'thrower')).toEqual({ status: 'failed', description: err.message });
    const lines = await moduleLogLines(rt, 'thrower');
    const at = lines.findIndex((l) => /ERROR lifecycle\.start threw Error: no config for you$/.test(l));
    expect(at).toBeGreaterThanOrEqual(0);
    expect(lines[at + 1]).toMatch(/ERROR .*start@/);
    expect(lines.some((l) => l.includes('start-failed') && l.includes('no config for you'))).toBe(true);
    expect(lines.some((l) => /trap/i.test(l))).toBe(false);
  });

  it('is restarted with back-off under on-failure, and the description says why', async () => {
    const rt = await fx.runtime({ backoff: { coolOffUnitMs: 60_000 } });
    await rejection(rt.create(spec('thrower', THROWER, { restartPolicy: 'on-failure', env: { THROW_AT_START: 'later' } })));
    const s = await status(rt, 'thrower');
    expect(s.status).toBe('failed');
    expect(s.description).toMatch(/^backoff: module "thrower" refused to start: its start answered: later; restarting after /);
  });
});

describe('a trap', () => {
  it('stays a trap: the instance ends and is restarted, and the API shows the trap', async () => {
    const rt = await fx.runtime({ backoff: { coolOffUnitMs: 50 } });
    await rt.create(spec('crash', await fx.guest('crash'), { restartPolicy: 'on-failure' }));
    const err = await rejection(rt.invoke('crash', 'x', null));
    expect(err.code).toBe('failed');
    expect(err.message).toMatch(/^module "crash" trapped: RuntimeError: .*unreachable/);
    await waitFor(async () => (await rt.get('crash')).edgeward?.restartCount === 1 && (await status(rt, 'crash')).status === 'running');
    expect((await rt.get('crash')).edgeward).toMatchObject({ crashCount: 1 });
    expect(rt.events('crash').map((e) => e.kind)).toContain('crashed');
  });
});

describe('through the management API and the CLI', () => {
  const servers: { close(cb: () => void): void }[] = [];
  afterAll(async () => { for (const s of servers) await new Promise<void>((r) => s.close(() => r())); });

  /** The management module routes on a Unix socket, and a function running one CLI command against them. */
  async function serve(rt: ComponentRuntime) {
    const app = new Hono();
    app.route('/modules', modulesRoutes(rt));
    app.onError(errorHandler(silentLogger()));
    const sock = path.join(fx.dir, 'mgmt.sock');
    const server = createAdaptorServer({ fetch: app.fetch });
    await new Promise<void>((r) => server.listen(sock, r));
    servers.push(server);
    const cli = async (...args: string[]) => {
      const out: string[] = [];
      const err: string[] = [];
      const program = new Command().exitOverride();
      registerModuleCommands(program, async () => createMgmtClient(sock));
      const [write, writeErr, code] = [process.stdout.write.bind(process.stdout), process.stderr.write.bind(process.stderr), process.exitCode];
      process.stdout.write = ((c: string) => { out.push(c); return true; }) as typeof process.stdout.write;
      process.stderr.write = ((c: string) => { err.push(c); return true; }) as typeof process.stderr.write;
      process.exitCode = undefined;
      try {
        await program.parseAsync(['node', 'edgeward', ...args]);
        return { stdout: out.join(''), stderr: err.join(''), exitCode: process.exitCode ?? 0 };
      } finally {
        process.stdout.write = write;
        process.stderr.write = writeErr;
        process.exitCode = code;
      }
    };
    const post = (p: string, body?: unknown) => app.request(p, { method: 'POST', headers: { 'content-type': 'application/json' }, body: body === undefined ? '' : JSON.stringify(body) });
    return { cli, post };
  }

  it('invoke: HTTP 200 with the 422 guest-error answer; the CLI prints the message and exits 1', async () => {
    const rt = await fx.runtime();
    await rt.create(spec('thrower', THROWER));
    const { cli, post } = await serve(rt);
    const res = await post('/modules/thrower/invoke', { methodName: 'kaboom' });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 422, payload: { code: 'guest-error', message: 'kaboom' } });

    expect(await cli('invoke', 'thrower', 'kaboom')).toEqual({ stdout: '', stderr: 'error: module "thrower" answered kaboom with guest-error (422): kaboom\n', exitCode: 1 });
    expect(await cli('invoke', 'thrower', 'kaboom', '--json')).toEqual({ stdout: '{"status":422,"payload":{"code":"guest-error","message":"kaboom"}}\n', stderr: '', exitCode: 1 });
    expect(await cli('invoke', 'thrower', 'echo', '{"a":1}')).toEqual({ stdout: '{"a":1}\n', stderr: '', exitCode: 0 });
    expect((await status(rt, 'thrower')).status).toBe('running');
  });

  it('start: 422 with the guest message; a trap: 500 with the trap message, not "internal error"', async () => {
    const rt = await fx.runtime({ backoff: { coolOffUnitMs: 60_000 } });
    await rt.create(spec('thrower', THROWER, { desiredStatus: 'stopped', env: { THROW_AT_START: 'kaboom' } }));
    const { cli, post } = await serve(rt);
    const res = await post('/modules/thrower/start');
    expect(res.status).toBe(422);
    expect(await res.json()).toEqual({ message: 'module "thrower" refused to start: its start answered: kaboom' });
    expect(await cli('start', 'thrower')).toMatchObject({ stderr: 'error: the daemon refused the request (422): module "thrower" refused to start: its start answered: kaboom\n', exitCode: 1 });

    await rt.create(spec('crash', await fx.guest('crash')));
    const r = await cli('invoke', 'crash', 'x');
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/^error: the daemon refused the request \(500\): module "crash" trapped: RuntimeError: .*unreachable/);
  });
});
