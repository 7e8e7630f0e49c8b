/**
 * Events for operators (issue 15): `GET /events` and `edgeward events [-f]` against a real daemon. A module
 * refused at run time (a path leaving its data directory) is a `denied-call`; `since` continues from a seq;
 * `-f` streams a new event and ends cleanly when the daemon stops; the daemon's own `config-applied`,
 * `provisioning` and `key-created` are there; a flood of refusals is limited per instance with the count
 * kept. The capabilities' reports (wasi:http to a host not granted, edgeward:hsm/keys across namespaces, a
 * key created) are checked on the host functions themselves.
 */
import { spawn } from 'node:child_process';
import { promises as fsp, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestGuest } from '../guests/adversarial/components.js';
import { createMgmtClient } from '../host/cli/client.js';
import type { ApiEvent } from '../host/api/management/events.js';
import type { EventsAnswer } from '../host/cli/commands/events.js';
import { EventLimiter, INSTANCE_EVENTS_PER_SECOND } from '../host/runtime/events.js';
import { eventsRoutes, FOLLOW_QUEUE } from '../host/api/management/events.js';
import { FindingsStore, MonitorHub } from '../host/capabilities/monitor/index.js';
import type { InstanceContext } from '../host/runtime/capabilities.js';
import { outgoingSender } from '../host/capabilities/http/host.js';
import { prepareHsmKeys } from '../host/capabilities/hsm-keys/index.js';
import { configSchema } from '../host/config/schema.js';
import { openKeyService } from '../hsm/keys/index.js';
import { CLI, envFor, runCli, startDaemon, stopDaemon, tempHome, waitUntil, type DaemonHandle } from './helpers/cli.js';

const NOT_PERMITTED = '31'; // the fs guest answers a wasi:filesystem error as its index (FS_ERROR_CODES)

type Client = ReturnType<typeof createMgmtClient>;

const escape = (client: Client) => client.request<{ status: number; payload: unknown }>('POST', '/modules/fsg/invoke', { methodName: 'r', payload: '../outside' });

async function events(client: Client, query = ''): Promise<EventsAnswer> {
  return client.request<EventsAnswer>('GET', `/events${query}`);
}

/**
 * One daemon for the tests of this describe, in order (one start and one deploy: they cost seconds each on
 * a busy machine): no cloud, the `fs` test guest deployed as `fsg` and granted its data directory.
 */
describe('GET /events and edgeward events', () => {
  let home: { home: string; cleanup: () => void };
  let env: NodeJS.ProcessEnv;
  let daemon: DaemonHandle | undefined;
  let client: Client;

  beforeAll(async () => {
    home = tempHome('ew-ev-');
    env = envFor(home.home);
    writeFileSync(path.join(home.home, 'config.toml'), '[provisioning]\nsource = "none"\n');
    const wasm = path.join(home.home, 'fsg.wasm');
    writeFileSync(wasm, await buildTestGuest('fs'));
    const manifest = path.join(home.home, 'manifest.json');
    writeFileSync(manifest, JSON.stringify({ modules: { fsg: { settings: { image: wasm }, capabilities: ['wasi:filesystem/data'] } } }));
    daemon = await startDaemon(env);
    client = createMgmtClient(path.join(home.home, 'run', 'mgmt.sock'));
    await client.request('PUT', '/modules', JSON.parse(await fsp.readFile(manifest, 'utf8')));
  }, 60_000);
  afterAll(async () => {
    if (daemon) await stopDaemon(daemon, 'SIGKILL');
    home.cleanup();
  });

  it("a path escape at run time is a denied-call in GET /events and `edgeward events --json`; the daemon's config-applied, provisioning and key-created are there; since continues", async () => {
    const start = await events(client);
    const daemonKinds = start.events.filter((e) => e.module === null).map((e) => e.kind);
    expect(daemonKinds).toEqual(expect.arrayContaining(['config-applied', 'provisioning']));
    expect(start.events.find((e) => e.kind === 'config-applied')!.message).toMatch(/applied at start .*provisioning none/);
    expect(start.events.find((e) => e.kind === 'provisioning')!.message).toContain('source none');
    expect(start.events.filter((e) => e.kind === 'denied-call')).toEqual([]);

    const refused = await escape(client);
    expect(refused).toEqual({ status: 422, payload: { code: 'guest-error', message: NOT_PERMITTED } });
    const cli = await runCli(['events', '--json', '--kind', 'denied-call'], env);
    expect(cli.code).toBe(0);
    const denied = (JSON.parse(cli.stdout) as EventsAnswer).events;
    expect(denied).toEqual([expect.objectContaining({ module: 'fsg', kind: 'denied-call', message: expect.stringContaining('"../outside" refused (not-permitted)') })]);
    const text = await runCli(['events', '--module', 'fsg'], env);
    expect(text.stdout).toMatch(/ fsg +denied-call +wasi:filesystem: "\.\.\/outside" refused/);
    expect(text.stdout).not.toContain('config-applied'); // --module keeps fsg's events only

    // The keys route: a new key is one key-created (module null); creating it again is none.
    const cursor = (await events(client)).cursor;
    expect((await runCli(['keys', 'create', 'ops-key', '--type', 'ec-p256'], env)).code).toBe(0);
    await client.request('POST', '/keys', { id: 'ops-key', type: 'ec-p256' });
    await client.request('POST', '/modules/fsg/stop');
    const after = await events(client, `?since=${cursor}`);
    expect(after.events.every((e) => e.seq > cursor)).toBe(true);
    expect(after.events.map((e) => [e.module, e.kind])).toEqual([[null, 'key-created'], ['fsg', 'stopped']]);
    expect(after.events[0]!.message).toContain('"ops-key" (ec-p256)');
    expect(after.missed).toBe(0);
    await expect(events(client, '?kind=nonsense')).rejects.toThrow('unknown event kind "nonsense"');

    // `config apply` of a changed config: one config-applied naming what applied and what waits for a restart.
    writeFileSync(path.join(home.home, 'config.toml'), '[provisioning]\nsource = "none"\n[log]\nlevel = "debug"\n');
    const applied = await runCli(['config', 'apply'], env);
    expect(applied.code, applied.stderr).toBe(0);
    const reloaded = (await events(client, `?since=${after.cursor}&kind=config-applied`)).events;
    expect(reloaded).toEqual([expect.objectContaining({ module: null, kind: 'config-applied', message: 'config reloaded from the state directory: applied log.level' })]);
  }, 60_000);

  it('a flood of refused calls is limited per instance: at most 10 events a second plus one count, and no refusal goes uncounted', async () => {
    await client.request('POST', '/modules/fsg/start');
    const before = (await events(client)).cursor;
    const FLOOD = 150;
    const t0 = Date.now();
    for (let i = 0; i < FLOOD; i++) expect((await escape(client)).payload).toMatchObject({ message: NOT_PERMITTED });
    const seconds = Math.ceil((Date.now() - t0) / 1000);
    // The count of the last window is told when it ends (at most a second later).
    const told = (list: ApiEvent[]) => list.reduce((n, e) => n + (/^(\d+) more denied calls suppressed/.exec(e.message) ? Number(/^(\d+)/.exec(e.message)![1]) : 1), 0);
    let denied: ApiEvent[] = [];
    for (const end = Date.now() + 5_000; Date.now() < end; await new Promise((r) => setTimeout(r, 100))) {
      denied = (await events(client, `?since=${before}&module=fsg&kind=denied-call`)).events;
      if (told(denied) === FLOOD) break;
    }
    expect(told(denied)).toBe(FLOOD);
    expect(denied.length).toBeLessThanOrEqual((seconds + 1) * (INSTANCE_EVENTS_PER_SECOND + 1));
    expect(denied.length).toBeLessThan(FLOOD / 2);
    expect(denied.some((e) => /more denied calls suppressed \(at most 10 events a second per instance\)/.test(e.message))).toBe(true);
  }, 60_000);

  it('`edgeward events -f` streams a new event within seconds and ends cleanly when the daemon stops', async () => {
    const cursor = (await events(client)).cursor;
    const child = spawn(process.execPath, [CLI, 'events', '-f', '--json', '--since', String(cursor - 1)], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c) => (out += c));
    child.stderr.on('data', (c) => (err += c));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    try {
      await waitUntil('the backlog line', () => out.includes(`"seq":${cursor},`), 10_000);
      await client.request('POST', '/modules/fsg/stop');
      await waitUntil('the stopped event on the stream', () => out.includes('"kind":"stopped"'), 5_000);
      const lines = out.trim().split('\n').map((l) => JSON.parse(l) as ApiEvent);
      expect(lines.map((e) => e.seq)).toEqual([...lines.map((e) => e.seq)].sort((a, b) => a - b));
      expect(lines.at(-1)).toMatchObject({ module: 'fsg', kind: 'stopped', message: 'stopped by request' });

      await stopDaemon(daemon!);
      daemon = undefined;
      expect(await Promise.race([exited, new Promise((r) => setTimeout(() => r('still running'), 10_000))])).toBe(0);
      expect(err).toContain('the daemon closed the event stream');
    } finally {
      child.kill('SIGKILL');
    }
  }, 60_000);
});

describe('denied-call and key-created reports of the capabilities', () => {
  function reporting(module: string): { ctx: InstanceContext; denied: string[]; created: string[] } {
    const denied: string[] = [];
    const created: string[] = [];
    const ctx: InstanceContext = {
      module, generationId: 'g', digest: 'sha256:0', signer: 'unsigned', instanceId: 1,
      limits: { memory_mib: 16, call_timeout_ms: 2_000, max_value_bytes: 4096 },
      log: () => undefined, current: () => true,
      denied: (m) => void denied.push(m), keyCreated: (m) => void created.push(m),
    };
    return { ctx, denied, created };
  }

  it('wasi:http/outgoing-handler to a host not granted reports a denied call, without the userinfo of the authority', async () => {
    const r = reporting('m');
    const send = outgoingSender(r.ctx, { hosts: ['127.0.0.1:1'], maxResponseBytes: 4096, callTimeoutMs: 2_000 });
    expect(await send({ method: 'GET', scheme: 'https', authority: 'admin:hunter2@evil.example', pathWithQuery: '/', headers: [] })).toEqual({ error: { tag: 'HTTP-request-denied' } });
    expect(r.denied).toEqual(['wasi:http/outgoing-handler: GET https "(userinfo withheld)@evil.example" refused: not in network.hosts']);
    expect(r.denied.join()).not.toContain('hunter2');
  });

  it("edgeward:hsm/keys: a key created is reported once (not when it existed); another module's handle is a denied call", async () => {
    const stateDir = await fsp.mkdtemp(path.join(os.tmpdir(), 'ew-ev-keys-'));
    const config = configSchema.parse({
      hostname: 'h', state_dir: stateDir, provisioning: { source: 'none' },
      connect: { management_uri: 'unix:///x/m.sock', workload_uri: 'unix:///x/w.sock' },
      listen: { management_uri: 'unix:///x/m.sock', workload_uri: 'unix:///x/w.sock' },
    });
    const service = await openKeyService({ config, stateDir, logger: pino({ level: 'silent' }) });
    try {
      const a = reporting('alpha');
      const b = reporting('beta');
      const alpha = prepareHsmKeys(service, 'alpha', a.ctx);
      const beta = prepareHsmKeys(service, 'beta', b.ctx);
      const handle = await alpha.createKeyPair('mine', 'ec-p256');
      await alpha.createKeyPair('mine', 'ec-p256');
      expect(a.created).toEqual(['edgeward:hsm/keys: key "mine" (ec-p256) created']);
      await expect(beta.sign(handle, 'ecdsa-sha256', new Uint8Array([1]))).rejects.toMatchObject({ payload: { tag: 'access-denied' } });
      expect(b.denied).toEqual(["edgeward:hsm/keys sign: access denied (a key outside this module's namespace)"]);
      expect(b.denied.join()).not.toContain(handle);
      expect(a.denied).toEqual([]);
    } finally {
      await service.close();
      await fsp.rm(stateDir, { recursive: true, force: true });
    }
  });

  it('EventLimiter passes 10 a second and tells the rest in one count when the window ends', async () => {
    const out: string[] = [];
    const lim = new EventLimiter((m) => out.push(m), 'denied calls');
    for (let i = 0; i < 25; i++) lim.offer(`refusal ${i}`);
    expect(out).toHaveLength(INSTANCE_EVENTS_PER_SECOND);
    await waitUntil('the count', () => out.length === INSTANCE_EVENTS_PER_SECOND + 1, 2_000);
    expect(out.at(-1)).toBe('15 more denied calls suppressed (at most 10 events a second per instance)');
  });
});

describe('GET /events?follow=true on a hub (no daemon)', () => {
  /** Lines of a streamed body as they arrive. */
  function reader(res: Response): { lines: Record<string, unknown>[]; done: Promise<void> } {
    const lines: Record<string, unknown>[] = [];
    const decoder = new TextDecoder();
    let pending = '';
    const done = (async () => {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        pending += decoder.decode(chunk, { stream: true });
        const parts = pending.split('\n');
        pending = parts.pop() ?? '';
        for (const p of parts) lines.push(JSON.parse(p) as Record<string, unknown>);
      }
    })();
    return { lines, done };
  }

  it('writes a heartbeat when idle, counts what a slow client lost, and ends with an `end` line on close', async () => {
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'ew-ev-hub-'));
    try {
      const hub = new MonitorHub(await FindingsStore.open(dir));
      const route = eventsRoutes(hub);
      const res = await route.app.request('/?follow=true&heartbeat=1&module=m');
      expect(res.headers.get('content-type')).toContain('application/x-ndjson');
      const r = reader(res);
      await waitUntil('a heartbeat', () => r.lines.find((l) => 'heartbeat' in l), 3_000);
      // More than the client's queue at once, before the stream can write any: the oldest are dropped and counted.
      for (let i = 0; i < FOLLOW_QUEUE + 50; i++) hub.note('m', 'quarantined', `q${i}`);
      hub.note('other', 'quarantined', 'filtered out');
      await waitUntil('the last event', () => r.lines.find((l) => l.message === `q${FOLLOW_QUEUE + 49}`), 3_000);
      const evs = r.lines.filter((l) => typeof l.seq === 'number');
      expect(evs).toHaveLength(FOLLOW_QUEUE);
      expect(evs[0]).toMatchObject({ module: 'm', kind: 'quarantined', message: 'q50' });
      expect(r.lines.find((l) => l.dropped === 50)).toBeDefined();
      expect(r.lines.some((l) => l.module === 'other')).toBe(false);
      await route.close();
      await r.done;
      expect(r.lines.at(-1)).toEqual({ end: 'the daemon is stopping or restarting', cursor: FOLLOW_QUEUE + 51 });
      expect((await route.app.request('/?follow=true')).status).toBe(503);
    } finally {
      await fsp.rm(dir, { recursive: true, force: true });
    }
  });
});
