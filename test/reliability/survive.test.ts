/**
 * D1 (reliability scenarios, issue 11): the daemon survives its own bugs. A host capability that throws,
 * a sandbox worker that posts malformed messages, a module log that cannot be written and a guest whose
 * logging import is mistyped each end ONE instance (a trap, cause in the daemon log only), never the
 * process; another module keeps answering. In the real daemon (test/helpers/faulty-daemon.mjs) the
 * management API keeps answering too, and the last-resort policy counts an unhandled rejection and an
 * uncaught exception in `system status --json`, and exits when its state is not intact.
 *
 * Faults are injected BELOW the deploy-time import type check (a capability with a bug, messages on the
 * worker's channel), so these tests keep their meaning once that check refuses the mistyped guest.
 */
import fc from 'fast-check';
import { chmodSync, linkSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, watch, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { EventEmitter, once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Hono } from 'hono';
import { serveOnUnixSocket } from '../../host/api/serve.js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildFallible, buildMistypedLogging } from '../../guests/adversarial/mistyped.js';
import { createLogger } from '../../host/log.js';
import { FAULT_EXIT_CODE, FAULT_WINDOW_MS, LastResort, MAX_FAULTS_PER_MINUTE } from '../../host/daemon/last-resort.js';
import { checkReply } from '../../host/runtime/sandbox/index.js';
import type { Capability } from '../../host/runtime/capabilities.js';
import type { ComponentRuntime } from '../../host/runtime/runtime.js';
import { MGMT_API_VERSION } from '../../host/api/versions.js';
import { Fixture, moduleLogLines, spec, waitFor } from '../helpers/runtime.js';
import { ROOT, envFor, runCli, startDaemon, stopDaemon, tempHome, type DaemonHandle } from '../helpers/cli.js';
import { report } from '../helpers/reliability.js';
import { testInterfaces } from '../helpers/wit.js';

const CALLS = 100;
const HOST_DETAIL = '/var/lib/edgeward/secret-path';

/** A WIT error (`payload`) is the guest's answer; x === 4 rejects WITHOUT one: a host bug. */
const fallible: Capability = {
  name: 'edgeward:test/fallible',
  interfaces: ['edgeward:test/fallible'],
  types: await testInterfaces(),
  prepare: () => ({
    'edgeward:test/fallible': {
      attempt: (x: unknown) => {
        const n = x as number;
        if (n === 3) return Promise.reject(Object.assign(new Error('async refusal'), { payload: 'three is refused' }));
        if (n === 4) return Promise.reject(new RangeError(`async host bug at ${HOST_DETAIL}`));
        if (n > 5) throw Object.assign(new Error('refusal'), { payload: `too big: ${n}` });
        return n * 2;
      },
    },
  }),
};

/** `edgeward:test/echo.echo` with a bug: every call throws. */
const throwingEcho: Capability = {
  name: 'edgeward:test/echo',
  interfaces: ['edgeward:test/echo'],
  types: await testInterfaces(),
  prepare: () => ({ 'edgeward:test/echo': { echo: () => { throw new TypeError(`injected host bug at ${HOST_DETAIL}`); } } }),
};

/** The running instance's worker, to post on the channel the daemon's thread listens to (fault injection). */
function workerOf(rt: ComponentRuntime, name: string): NodeJS.EventEmitter {
  const inst = (rt as unknown as { instances: Map<string, { worker: NodeJS.EventEmitter }> }).instances.get(name);
  if (!inst) throw new Error(`${name} is not running`);
  return inst.worker;
}

async function moduleLog(rt: ComponentRuntime, name: string): Promise<string> {
  return (await moduleLogLines(rt, name)).join('\n');
}

describe('D1: a host-side fault ends one instance, never the daemon (in-process runtime)', () => {
  let fx: Fixture;
  let rt: ComponentRuntime;
  const daemonLog: string[] = [];

  beforeAll(async () => {
    fx = new Fixture();
    const logger = createLogger('info', [{ write: (s: string) => void daemonLog.push(s) }]);
    rt = await fx.runtime({ logger, capabilities: [throwingEcho, fallible] });
    await rt.create(spec('other', await fx.guest('echo')));
    await rt.create(spec('faulty', await fx.guest('hostcall'), { capabilities: ['edgeward:test/echo'] }));
    const file = path.join(fx.dir, 'fallible.wasm');
    writeFileSync(file, await buildFallible());
    await rt.create(spec('fallible', file, { capabilities: ['edgeward:test/fallible'] }));
  });
  afterAll(async () => { await fx.cleanup(); });

  it('checkReply refuses every malformed worker message and never throws (property)', () => {
    fc.assert(fc.property(fc.anything(), fc.constantFrom('log', 'ok', 'exit', 'started', 'trap'), fc.anything(), (junk, t, field) => {
      for (const m of [junk, { t, level: field, message: field }, { t, id: field }, { t, code: field, value: field }, { t, timings: field }]) {
        const r = checkReply(m);
        if (typeof r === 'string') continue;
        // Accepted: every field has the JS type the handler relies on.
        expect(['log', 'loaded', 'started', 'ok', 'guest-error', 'trap', 'exit', 'start-failed']).toContain(r.t);
        if (r.t === 'log') expect(['trace', 'debug', 'info', 'warn', 'error']).toContain(r.level);
        if (r.t === 'log') expect(typeof r.message).toBe('string');
        for (const v of [r.message, r.value]) expect(v === undefined || typeof v === 'string').toBe(true);
        expect(r.id === undefined || Number.isSafeInteger(r.id)).toBe(true);
        expect(r.code === undefined || Number.isSafeInteger(r.code)).toBe(true);
      }
    }), { numRuns: 2000 });
    expect(checkReply({ t: 'log', level: true, message: 'x' })).toMatch(/"level" is boolean true/);
    expect(checkReply({ t: 'ended', id: 1, message: 'x' })).toMatch(/unknown kind/);
    expect(checkReply({ t: 'log', level: 'warn', message: 'x' })).toEqual({ t: 'log', level: 'warn', message: 'x' });
  });

  it(`a throwing capability traps its caller as internal ${CALLS}×; another module answers every call meanwhile`, async () => {
    const before = daemonLog.length;
    let trappedInternal = 0;
    let otherOk = 0;
    const faultyCalls = (async () => {
      for (let i = 0; i < CALLS; i++) {
        if (!rt.isActive('faulty')) await rt.start('faulty');
        const err = await rt.invoke('faulty', 'x', 'abc').then(() => undefined, (e: Error) => e);
        if (err && /internal error in capability edgeward:test\/echo\.echo/.test(err.message)) trappedInternal++;
      }
    })();
    const otherCalls = (async () => {
      for (let i = 0; i < CALLS * 2; i++) {
        const r = await rt.invoke('other', 'ping', { i });
        if (r.status === 200 && (r.payload as { i: number }).i === i) otherOk++;
        await new Promise((res) => setImmediate(res));
      }
    })();
    await Promise.all([faultyCalls, otherCalls]);
    expect(trappedInternal).toBe(CALLS);
    expect(otherOk).toBe(CALLS * 2);
    // An event per internal error; its message (mirrored to the module log) names the place only.
    const internal = rt.events('faulty').filter((e) => e.kind === 'internal-error');
    expect(internal).toHaveLength(CALLS);
    expect(internal[0]!.message).toMatch(/^internal error in capability edgeward:test\/echo\.echo; instance \d+ trapped/);
    const crashed = rt.events('faulty').filter((e) => e.kind === 'crashed');
    expect(crashed.at(-1)!.message).toBe('internal error in capability edgeward:test/echo.echo');
    // The cause, stack included, is in the daemon log, and only there.
    const logged = daemonLog.slice(before).map((l) => JSON.parse(l) as { level: number; where?: string; err?: { message: string; stack: string } });
    const causes = logged.filter((l) => l.where === 'capability edgeward:test/echo.echo' && l.err);
    expect(causes).toHaveLength(CALLS);
    expect(causes[0]!.level).toBe(50);
    expect(causes[0]!.err!.message).toContain(HOST_DETAIL);
    expect(causes[0]!.err!.stack).toMatch(/\n\s+at /);
    const modLog = await moduleLog(rt, 'faulty');
    expect(modLog).toContain('internal error in capability edgeward:test/echo.echo');
    expect(modLog).not.toContain(HOST_DETAIL);
    expect(modLog).not.toContain('TypeError');
    report('D1', `in-process: throwing capability ${trappedInternal}/${CALLS} calls trapped as internal, other module answered ${otherOk}/${CALLS * 2}, cause in the daemon log only`);
  }, 120_000);

  it("a capability's WIT error (payload) stays the guest's answer; an exception without one is internal", async () => {
    const ring = () => rt.events('fallible').filter((e) => e.kind === 'internal-error').length;
    // JSON payload lengths: 1 → 2; "abcdefgh" (10) → sync WIT error; "a" (3) → async WIT error.
    expect(await rt.invoke('fallible', 'x', 1)).toEqual({ status: 200, payload: 2 });
    expect(await rt.invoke('fallible', 'x', 'abcdefgh')).toEqual({ status: 422, payload: { code: 'guest-error', message: 'too big: 10' } });
    expect(await rt.invoke('fallible', 'x', 'a')).toEqual({ status: 422, payload: { code: 'guest-error', message: 'three is refused' } });
    expect(rt.isActive('fallible')).toBe(true);
    expect(ring()).toBe(0);
    // "ab" (4): a rejection without payload is a host bug, even on the async path.
    await expect(rt.invoke('fallible', 'x', 'ab')).rejects.toThrow(/internal error in capability edgeward:test\/fallible\.attempt/);
    expect(ring()).toBe(1);
    await rt.start('fallible');
    expect(await rt.invoke('fallible', 'x', 12)).toEqual({ status: 200, payload: 4 });
  });

  it('a malformed message from a sandbox worker traps that instance (reason in its module log), nothing throws', async () => {
    const bad: unknown[] = [
      { t: 'log', level: true, message: 'x' },
      { t: 'log', level: 'info', message: { toString: 1 } },
      { t: 'log', level: 'loud', message: 'x' },
      null,
      'a string',
      [],
      { t: 'ended', id: 1, message: 'forged' },
      { t: 'ok', id: '1', value: 'x' },
      { t: 'exit', code: 'x' },
      { t: 'started', id: 1, timings: null },
      { t: 'nope' },
    ];
    await rt.create(spec('victim', await fx.guest('echo')));
    let trapped = 0;
    for (const m of bad) {
      if (!rt.isActive('victim')) await rt.start('victim');
      workerOf(rt, 'victim').emit('message', m);
      await waitFor(() => !rt.isActive('victim'));
      const last = rt.events('victim').filter((e) => e.kind === 'crashed').at(-1);
      if (last?.message.startsWith('sandbox worker sent an invalid message: ')) trapped++;
      expect((await rt.invoke('other', 'ping', 1)).status).toBe(200);
    }
    expect(trapped).toBe(bad.length);
    expect(await moduleLog(rt, 'victim')).toContain('sandbox worker sent an invalid message: log "level" is boolean true');
  });

  it('a module log that cannot be written traps the instance as internal (logging), the runtime carries on', async () => {
    await rt.create(spec('chatty', await fx.guest('chatty')));
    // A directory where module.log should be: every append fails with EISDIR from now on.
    const file = path.join(fx.dir, 'state', 'logs', 'modules', 'chatty', 'module.log');
    rmSync(file, { force: true });
    mkdirSync(file);
    await expect(rt.invoke('chatty', 'x', 'abc')).rejects.toThrow(/internal error in capability edgeward:module\/logging\.log/);
    expect(rt.events('chatty').map((e) => e.kind)).toContain('internal-error');
    expect(rt.isActive('chatty')).toBe(false);
    expect((await rt.invoke('other', 'ping', 1)).status).toBe(200);
  });

  it('the mistyped-logging guest (bool level) is trapped at start or refused at deploy; the process lives', async () => {
    const file = path.join(fx.dir, 'mistyped.wasm');
    writeFileSync(file, await buildMistypedLogging());
    const err = await rt.create(spec('mistyped', file)).then(() => undefined, (e: Error) => e);
    expect(err?.message).toMatch(/sandbox worker sent an invalid message: log "level" is boolean true|edgeward:module\/logging\.log/);
    expect(rt.isActive('mistyped')).toBe(false);
    expect((await rt.invoke('other', 'ping', 1)).status).toBe(200);
  });
});

describe('no process-wide state across an await: the socket is bound privately, the umask never changes', () => {
  let dir: string;
  beforeAll(() => { dir = mkdtempSync(path.join(os.tmpdir(), 'ew-sock-')); });
  afterAll(() => { rmSync(dir, { recursive: true, force: true }); });

  it('serveOnUnixSocket: umask unchanged throughout, socket never seen wider than its mode, stale replaced, live refused', async () => {
    const run = path.join(dir, 'run');
    mkdirSync(run);
    const sockPath = path.join(run, 't.sock');
    const app = new Hono().get('/', (c) => c.text('ok'));
    const before = process.umask(0); // the most permissive inherited umask: only the private directory protects the bind
    // Every change of the umask while sockets are bound (a worker thread or a file write of the daemon
    // during such a window would inherit it; the window spans awaits, so other continuations run in it).
    const umaskChanges: unknown[] = [];
    const realUmask = process.umask.bind(process);
    process.umask = ((...mask: unknown[]) => {
      if (mask.length > 0) umaskChanges.push(mask[0]);
      return (realUmask as (...a: unknown[]) => number)(...mask);
    }) as typeof process.umask;
    const seenModes = new Set<number>();
    const watcher = watch(run, () => {
      const st = statSync(sockPath, { throwIfNoEntry: false });
      if (st) seenModes.add(st.mode & 0o777);
    });
    try {
      for (let i = 0; i < 20; i++) {
        const s = await serveOnUnixSocket(app, sockPath, 0o600);
        seenModes.add(statSync(sockPath).mode & 0o777);
        await s.close();
      }
      // A stale socket (its server gone, the file left): replaced. A live one: refused.
      const stale = net.createServer().listen(path.join(run, 'live.sock'));
      await once(stale, 'listening');
      chmodSync(path.join(run, 'live.sock'), 0o600); // (bound under umask 0: the watcher would see the test's own 777)
      linkSync(path.join(run, 'live.sock'), sockPath);
      await new Promise<void>((r) => stale.close(() => r()));
      const live = await serveOnUnixSocket(app, sockPath, 0o600);
      expect(statSync(sockPath).mode & 0o777).toBe(0o600);
      const answer = await new Promise<string>((resolve, reject) => http.get({ socketPath: sockPath, path: '/' }, (res) => { let t = ''; res.on('data', (c) => (t += c)); res.on('end', () => resolve(t)); }).on('error', reject));
      expect(answer).toBe('ok');
      await expect(serveOnUnixSocket(app, sockPath, 0o600)).rejects.toThrow(/in use by another process/);
      await live.close();
    } finally {
      watcher.close();
      process.umask = realUmask as typeof process.umask;
      process.umask(before);
    }
    expect(umaskChanges).toEqual([]);
    expect([...seenModes]).toEqual([0o600]);
    expect(readdirSync(run)).toEqual([]);
    report('A8', `in-process: 21 binds under umask 0, umask changed ${umaskChanges.length} times, socket mode only ever 600, stale socket replaced, live one refused, no bind directory left`);
  });
});

describe('the last-resort policy (daemon/last-resort.ts)', () => {
  /** A policy on its own emitter, with a logger that keeps lines and an exit that records codes. */
  const harness = (notIntact: () => string | undefined) => {
    const lines: { level: number; msg: string; fault?: { message: string; name: string } }[] = [];
    const exits: number[] = [];
    const faults: string[] = [];
    let t = 0;
    const logger = createLogger('info', [{ write: (s: string) => void lines.push(JSON.parse(s)) }]);
    const policy = new LastResort({ logger: () => logger, notIntact, exit: (c) => void exits.push(c), onFault: (f) => void faults.push(f.kind), now: () => t });
    const target = new EventEmitter();
    const uninstall = policy.install(target);
    return { policy, target, uninstall, lines, exits, faults, tick: (ms: number) => (t += ms) };
  };

  it(`keeps serving up to ${MAX_FAULTS_PER_MINUTE} faults a minute, whatever was thrown; exits with 70 beyond, while starting or stopping`, async () => {
    const h = harness(() => undefined);
    const thrown: unknown[] = [null, undefined, Symbol('s'), 42, 'text password=hunter2', new Error('sig=c2ln&se=1 SharedAccessKey=QUJD')];
    for (const v of thrown.slice(0, MAX_FAULTS_PER_MINUTE)) {
      h.target.emit('unhandledRejection', v);
      h.tick(1_000);
    }
    h.tick(FAULT_WINDOW_MS); // the window slides: older faults no longer count
    h.target.emit('uncaughtException', thrown[5]);
    expect(h.exits).toEqual([]);
    expect(h.policy.status()).toMatchObject({ uncaughtExceptions: 1, unhandledRejections: MAX_FAULTS_PER_MINUTE, last: { kind: 'uncaught-exception', name: 'Error' } });
    expect(h.faults).toHaveLength(MAX_FAULTS_PER_MINUTE + 1);
    const text = JSON.stringify(h.lines);
    for (const secret of ['hunter2', 'c2ln', 'QUJD']) expect(text).not.toContain(secret);
    expect(text).toContain('SharedAccessKey=<redacted>');
    for (let i = 0; i < MAX_FAULTS_PER_MINUTE; i++) h.target.emit('unhandledRejection', new Error(`burst ${i}`));
    await waitFor(() => h.exits.length > 0);
    expect(h.exits).toEqual([FAULT_EXIT_CODE]);
    expect(h.lines.at(-1)).toMatchObject({ level: 60, msg: `unhandled-rejection: more than ${MAX_FAULTS_PER_MINUTE} faults within a minute; exiting with code ${FAULT_EXIT_CODE}` });
    h.uninstall();
    expect(h.target.listenerCount('uncaughtException') + h.target.listenerCount('unhandledRejection')).toBe(0);

    for (const phase of ['the daemon was starting', 'the daemon was stopping']) {
      const p = harness(() => phase);
      p.target.emit('uncaughtException', new Error('during a phase'));
      await waitFor(() => p.exits.length > 0);
      expect(p.exits).toEqual([FAULT_EXIT_CODE]);
      expect(p.faults).toEqual([]);
      expect(p.lines.at(-1)!.msg).toBe(`uncaught-exception: ${phase}; exiting with code ${FAULT_EXIT_CODE}`);
    }
  });
});

/** A request on the management socket; JSON in and out. */
function mgmt(sock: string, method: string, p: string, body?: unknown): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const sep = p.includes('?') ? '&' : '?';
    const req = http.request({ socketPath: sock, method, path: `${p}${sep}api-version=${MGMT_API_VERSION}`, headers: { 'content-type': 'application/json' } }, (res) => {
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : undefined }));
    });
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

const FAULTY_DAEMON = [path.join(ROOT, 'test', 'helpers', 'faulty-daemon.mjs')];
const moduleSpec = (name: string, image: string, capabilities: string[] = []) => ({ name, type: 'wasm', config: { settings: { image } }, restartPolicy: 'never', capabilities });

describe('D1: the real daemon survives a throwing capability and uncaught faults', () => {
  let home: string;
  let cleanup: () => void;
  let env: NodeJS.ProcessEnv;
  let daemon: DaemonHandle | undefined;
  let sock: string;
  let fx: Fixture;

  beforeAll(() => { fx = new Fixture(); });
  afterAll(async () => { await fx.cleanup(); });
  afterEach(async () => {
    if (daemon) await stopDaemon(daemon, 'SIGKILL');
    daemon = undefined;
    cleanup();
  });
  const prepare = (extra: Record<string, string> = {}) => {
    ({ home, cleanup } = tempHome());
    env = envFor(home, extra);
    sock = path.join(home, 'run', 'mgmt.sock');
    writeFileSync(path.join(home, 'config.toml'), '[provisioning]\nsource = "none"\n[runtime]\n');
  };
  const status = async () => JSON.parse((await runCli(['system', 'status', '--json'], env)).stdout);

  it('throwing capability, mistyped guest, an unhandled rejection and an uncaught exception: same pid, API answers, faults counted', async () => {
    prepare();
    daemon = await startDaemon(env, [], undefined, 30_000, FAULTY_DAEMON);
    const pid = daemon.child.pid;
    expect((await mgmt(sock, 'POST', '/modules', moduleSpec('other', await fx.guest('echo')))).status).toBe(201);
    expect((await mgmt(sock, 'POST', '/modules', moduleSpec('faulty', await fx.guest('hostcall'), ['edgeward:test/echo']))).status).toBe(201);
    const n = 30;
    let trapped = 0;
    let otherOk = 0;
    let apiOk = 0;
    for (let i = 0; i < n; i++) {
      if (i > 0) expect((await mgmt(sock, 'POST', '/modules/faulty/start')).status).toBe(204);
      const [f, o, s] = await Promise.all([
        mgmt(sock, 'POST', '/modules/faulty/invoke', { methodName: 'x', payload: 'abc' }),
        mgmt(sock, 'POST', '/modules/other/invoke', { methodName: 'ping', payload: { i } }),
        mgmt(sock, 'GET', '/system/status'),
      ]);
      if (f.status === 500) trapped++; // the API hides a failed call's cause ("internal error"); the logs name it
      if (o.status === 200 && o.body.payload.i === i) otherOk++;
      if (s.status === 200 && s.body.pid === pid) apiOk++;
    }
    expect({ trapped, otherOk, apiOk }).toEqual({ trapped: n, otherOk: n, apiOk: n });
    // Each call ended as internal: the cause, stack included, in the daemon log; the module log names the place only.
    const causes = readFileSync(path.join(home, 'state', 'logs', 'edgeward.log'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l))
      .filter((l) => l.where === 'capability edgeward:test/echo.echo' && l.level === 50);
    expect(causes).toHaveLength(n);
    expect(causes[0].err.message).toContain('injected host bug');
    expect(causes[0].err.stack).toMatch(/\n\s+at /);
    const modLog = (await runCli(['logs', 'faulty', '--tail', 'all'], env)).stdout;
    expect(modLog.match(/crashed: internal error in capability edgeward:test\/echo\.echo/g)).toHaveLength(n);
    expect(modLog).not.toContain('secret-path');

    // The mistyped-logging guest: trapped at start or refused at deploy; the daemon is the same process.
    const mistyped = path.join(fx.dir, 'mistyped.wasm');
    writeFileSync(mistyped, await buildMistypedLogging());
    const m = await mgmt(sock, 'POST', '/modules', moduleSpec('mistyped', mistyped));
    expect(m.status).toBeGreaterThanOrEqual(400);

    // Last resort: one unhandled rejection, one uncaught exception; counted, and the daemon keeps answering.
    daemon.child.kill('SIGUSR2');
    await waitFor(async () => (await status()).faults?.unhandledRejections === 1, 10_000);
    daemon.child.kill('SIGHUP');
    await waitFor(async () => (await status()).faults?.uncaughtExceptions === 1, 10_000);
    const st = await status();
    expect(st).toMatchObject({ running: true, pid, faults: { unhandledRejections: 1, uncaughtExceptions: 1, last: { kind: 'uncaught-exception', name: 'RangeError' } } });
    expect((await runCli(['system', 'status'], env)).stdout).toMatch(/Faults survived: 1 uncaught exception\(s\), 1 unhandled rejection\(s\)/);
    expect((await mgmt(sock, 'POST', '/modules/other/invoke', { methodName: 'ping', payload: 1 })).status).toBe(200);
    // Logged without the secret-looking values of the messages.
    const after = readFileSync(path.join(home, 'state', 'logs', 'edgeward.log'), 'utf8');
    expect(after).toContain('unhandled-rejection caught by the last-resort handler');
    expect(after).toContain('token=<redacted>');
    expect(after).not.toContain('abc123');
    expect(daemon.child.exitCode).toBeNull();
    expect(daemon.child.pid).toBe(pid);
    report('D1', `daemon: throwing capability ${trapped}/${n} calls trapped as internal, other module answered ${otherOk}/${n}, management API answered ${apiOk}/${n}, mistyped guest → HTTP ${m.status}, daemon pid unchanged, last-resort count ${st.faults.unhandledRejections + st.faults.uncaughtExceptions} (1 rejection, 1 exception)`);
    expect(await stopDaemon(daemon)).toBe(0);
  }, 180_000);

  it('more faults than the limit within a minute: the daemon exits with 70 instead of serving on', async () => {
    prepare({ EW_FAULTS_PER_SIGNAL: '6' });
    daemon = await startDaemon(env, [], undefined, 30_000, FAULTY_DAEMON);
    daemon.child.kill('SIGUSR2');
    expect(await daemon.exited).toBe(70);
    expect(readFileSync(path.join(home, 'state', 'logs', 'edgeward.log'), 'utf8')).toContain('more than 5 faults within a minute; exiting with code 70');
  }, 60_000);

  it('a fault while the daemon starts: it exits with 70 (state not intact)', async () => {
    prepare({ EW_FAULT_AT_START: '1' });
    const child = spawn(process.execPath, FAULTY_DAEMON, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c) => (out += c));
    child.stderr.on('data', (c) => (out += c));
    const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
    expect(code).toBe(70);
    // On stderr before the daemon's logger exists, in its log after.
    expect(out).toContain('unhandled-rejection: the daemon was starting; exiting with code 70');
  }, 60_000);
});
