/**
 * Security extensions at run time (issue 15): a granted extension sees the inventory and the event stream
 * (a denied call of another module among them), submits findings that `GET /findings` and `edgeward
 * findings` list, and stops or quarantines another module but never itself; subscription handles work only
 * for the instance that made them; a full queue counts what it dropped.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { findingsRoutes } from '../host/api/management/findings.js';
import { renderFindings, type FindingsAnswer } from '../host/cli/commands/findings.js';
import { FindingsStore } from '../host/capabilities/monitor/index.js';
import { TrustStore, type ModuleTrust } from '../host/runtime/trust.js';
import { Pki } from './helpers/pki.js';
import { Fixture, rejection, spec, waitFor } from './helpers/runtime.js';
import { functionsOf, instanceOf, monitorGuestFile, monitorRuntime, witError, type MonitorGuest } from './helpers/monitor.js';

let pki: Pki;
let fx: Fixture;
beforeAll(() => { pki = new Pki(); pki.key('vendor', 'ec'); });
afterAll(() => pki.cleanup());
beforeEach(() => { fx = new Fixture(); });
afterEach(async () => { await fx.cleanup(); });

const trust = (): ModuleTrust => ({ policy: 'optional', store: TrustStore.empty(), extensions: TrustStore.fromPem([readFileSync(pki.file('vendor.pub'), 'utf8')]) });

/** Deploy `guest` as a security extension signed by the trusted vendor, granted `grants`. */
async function deployExtension(rt: Awaited<ReturnType<typeof monitorRuntime>>['rt'], name: string, guest: MonitorGuest, grants: string[]) {
  const file = await monitorGuestFile(fx, guest);
  const signature = { file: pki.sign('vendor', file, path.join(fx.dir, `${guest}.sig`)), signer: pki.file('vendor.pub') };
  return rt.create(spec(name, file, { kind: 'security-extension', capabilities: grants, signature }));
}

const ALL = { kinds: [], modules: [] };

describe('inventory and events', () => {
  it('a subscription sees another module denied at deploy, typed; the inventory shows modules and their changes', async () => {
    const { rt, caps } = await monitorRuntime(fx, { trust: trust() });
    const agent = instanceOf('agent');
    const events = functionsOf(caps, 'events', agent);
    const inventory = functionsOf(caps, 'inventory', agent);
    const sub = await events.subscribe!({ kinds: ['denied-call', 'created', 'stopped'], modules: [] }, 16) as number;
    const snap0 = await inventory.snapshot!() as { cursor: bigint; modules: unknown[]; daemon: { version: string } };
    expect(snap0.modules).toEqual([]);
    expect(snap0.daemon.version).toMatch(/^\d+\.\d+\.\d+/);

    const echo = await fx.guest('echo');
    await rt.create(spec('worker', echo));
    await rejection(rt.create(spec('sneaky', await fx.guest('hostcall'))));
    const got = await events.next!(sub, 10) as { module?: string; detail: { tag: string; val: unknown }; seq: bigint }[];
    expect(got.map((e) => [e.module, e.detail.tag])).toEqual([['worker', 'created'], ['sneaky', 'denied-call']]);
    expect(String(got[1]!.detail.val)).toContain('edgeward:test/echo');
    expect(got[1]!.seq).toBeGreaterThan(got[0]!.seq);

    const snap = await inventory.snapshot!() as { cursor: bigint; modules: { name: string; kind: string; digest: string; signer: string; grants: string[]; state: string; restarts: number }[] };
    expect(snap.modules).toEqual([expect.objectContaining({ name: 'worker', kind: 'module', signer: 'unsigned', grants: [], state: 'running', restarts: 0, digest: expect.stringMatching(/^sha256:/) })]);
    await rt.stop('worker');
    const changes = await inventory.changes!(snap.cursor, 10) as { cursor: bigint; changed: { module: string; info?: { state: string } }[] };
    expect(changes.changed).toEqual([{ module: 'worker', info: expect.objectContaining({ state: 'stopped' }) }]);
    expect((await inventory.changes!(changes.cursor, 10) as { changed: unknown[] }).changed).toEqual([]);
    expect(await witError(inventory.changes!(changes.cursor + 5n, 10))).toEqual({ tag: 'cursor-expired' });
  });

  it('a subscription number works only for the instance that made it, and only while it runs', async () => {
    const { caps } = await monitorRuntime(fx, { trust: trust() });
    const a = instanceOf('agent-a');
    const b = instanceOf('agent-b');
    const subA = await functionsOf(caps, 'events', a).subscribe!(ALL, 4);
    const eventsB = functionsOf(caps, 'events', b);
    expect(await witError(eventsB.next!(subA, 1))).toEqual({ tag: 'invalid-handle' });
    expect(await witError(eventsB.dropped!(subA))).toEqual({ tag: 'invalid-handle' });
    expect(await witError(eventsB.unsubscribe!(subA))).toEqual({ tag: 'invalid-handle' });
    const eventsA2 = functionsOf(caps, 'events', a);
    expect(await witError(eventsA2.next!(subA, 1))).toEqual({ tag: 'invalid-handle' });
    const eventsA = functionsOf(caps, 'events', a);
    const mine = await eventsA.subscribe!(ALL, 4);
    expect(await eventsA.next!(mine, 1)).toEqual([]);
    a.end();
    expect(await witError(eventsA.next!(mine, 1))).toEqual({ tag: 'invalid-handle' });
  });

  it('a full queue drops its oldest events and counts them; capacity, filters and the subscription count are bounded', async () => {
    const { rt, caps } = await monitorRuntime(fx, { trust: trust() });
    const events = functionsOf(caps, 'events', instanceOf('agent'));
    const sub = await events.subscribe!({ kinds: ['created'], modules: [] }, 2);
    const echo = await fx.guest('echo');
    for (const n of ['m1', 'm2', 'm3', 'm4', 'm5']) await rt.create(spec(n, echo));
    const got = await events.next!(sub, 100) as { module: string }[];
    expect(got.map((e) => e.module)).toEqual(['m4', 'm5']);
    expect(await events.dropped!(sub)).toBe(3n);
    expect((await events.recent!({ kinds: ['created'], modules: ['m2'] }, 10) as unknown[]).length).toBe(1);
    expect((await witError(events.subscribe!(ALL, 0))).tag).toBe('invalid-argument');
    expect((await witError(events.subscribe!(ALL, 1025))).tag).toBe('invalid-argument');
    expect((await witError(events.subscribe!({ kinds: ['nope'], modules: [] }, 1))).tag).toBe('invalid-argument');
    expect((await witError(events.subscribe!({ kinds: [], modules: Array(65).fill('m') }, 1))).tag).toBe('limit-exceeded');
    for (let i = 1; i < 8; i++) await events.subscribe!(ALL, 1);
    expect((await witError(events.subscribe!(ALL, 1))).tag).toBe('limit-exceeded');
  });

  it('measurements answer unavailable (no measured launch yet)', async () => {
    const { caps } = await monitorRuntime(fx, { trust: trust() });
    const m = functionsOf(caps, 'measurements', instanceOf('agent'));
    expect((await witError(m.pcrs!())).tag).toBe('unavailable');
    expect((await witError(m.eventLog!())).tag).toBe('unavailable');
  });
});

describe('findings and responses through the component boundary', () => {
  it('a granted extension submits a finding (source from the instance) that GET /findings and `edgeward findings` list', async () => {
    const { rt, hub } = await monitorRuntime(fx, { trust: trust() });
    await deployExtension(rt, 'reporter', 'reporter', ['edgeward:monitor/findings']);
    expect(await rt.invoke('reporter', 'report', 'denied call seen')).toEqual({ status: 200, payload: 'ok' });
    const [f] = hub.findings.list().findings;
    expect(f).toMatchObject({ id: 'f-1', source: 'reporter', ruleId: 'EW-TEST', severity: 'high', summary: 'denied call seen', evidence: [], tags: [] });
    const res = await findingsRoutes(hub.findings).request('/');
    const body = await res.json() as FindingsAnswer;
    expect(body.findings.map((x) => x.summary)).toEqual(['denied call seen']);
    expect(renderFindings(body)).toMatch(/f-1 .* high +reporter +EW-TEST +- +denied call seen/);
    // Kept on disk atomically: a store opened again (a daemon restart) has it.
    expect((await FindingsStore.open(path.join(fx.dir, 'state'))).list().findings).toEqual([f]);
  });

  it('respond.stop stops another module, never the extension itself; quarantine marks and reports it', async () => {
    const { rt, caps, hub } = await monitorRuntime(fx, { trust: trust() });
    await rt.create(spec('victim', await fx.guest('echo')));
    await deployExtension(rt, 'agent', 'responder', ['edgeward:monitor/respond']);
    expect(await rt.invoke('agent', 'stop', 'agent')).toEqual({ status: 422, payload: { code: 'guest-error', message: expect.stringContaining('cannot stop or quarantine itself') } });
    expect(await rt.invoke('agent', 'stop', 'nobody')).toEqual({ status: 422, payload: { code: 'guest-error', message: expect.stringContaining('not-found') } });
    expect(await rt.invoke('agent', 'stop', 'victim')).toEqual({ status: 200, payload: 'ok' });
    await waitFor(async () => (await rt.get('victim')).status.runtimeStatus.status === 'stopped');
    expect((await rt.get('agent')).status.runtimeStatus.status).toBe('running');

    const other = instanceOf('agent');
    await rt.start('victim');
    const events = functionsOf(caps, 'events', other);
    const sub = await events.subscribe!({ kinds: ['quarantined'], modules: [] }, 4);
    const respond = functionsOf(caps, 'respond', other);
    await respond.quarantine!('victim', 'tampered');
    const inv = await functionsOf(caps, 'inventory', other).snapshot!() as { modules: { name: string; state: string }[] };
    expect(inv.modules.find((m) => m.name === 'victim')?.state).toBe('quarantined');
    expect(((await events.next!(sub, 4)) as { detail: { tag: string } }[]).map((e) => e.detail.tag)).toEqual(['quarantined']);
    expect(await witError(respond.stop!('agent'))).toEqual({ tag: 'refused', val: expect.stringContaining('itself') });
    // Redeployed (replaced), the module loses its quarantine mark.
    await rt.update(spec('victim', await fx.guest('random'), { capabilities: ['wasi:random'] }));
    await waitFor(() => hub.findings.quarantined('victim') === undefined);
  });

  it('an unreadable findings store is a clear start-up error', async () => {
    const dir = path.join(fx.dir, 'state2');
    await FindingsStore.open(dir);
    writeFileSync(path.join(dir, 'monitor', 'findings.json'), '{"version": 2}', { mode: 0o600 });
    await expect(FindingsStore.open(dir)).rejects.toThrow(/is not a findings store Edgeward wrote .*move it away/);
  });

  it('findings are checked against their caps before they are kept', async () => {
    const { caps, hub } = await monitorRuntime(fx, { trust: trust() });
    const findings = functionsOf(caps, 'findings', instanceOf('agent'));
    const ok = { ruleId: 'R1', severity: 'low', summary: 's', evidence: [['k', 'v']], tags: ['t'] };
    expect(await findings.submit!(ok)).toBe('f-1');
    expect((await witError(findings.submit!({ ...ok, evidence: Array(33).fill(['k', 'v']) }))).tag).toBe('limit-exceeded');
    expect((await witError(findings.submit!({ ...ok, evidence: [['k', 'v'.repeat(1025)]] }))).tag).toBe('limit-exceeded');
    expect((await witError(findings.submit!({ ...ok, ruleId: 'bad id' }))).tag).toBe('invalid-argument');
    expect((await witError(findings.submit!({ ...ok, summary: 'two\nlines' }))).tag).toBe('invalid-argument');
    expect((await witError(findings.submit!({ ...ok, subject: '../x' }))).tag).toBe('invalid-argument');
    expect((await witError(findings.submit!({ ...ok, severity: 'urgent' }))).tag).toBe('invalid-argument');
    expect(hub.findings.list().findings).toHaveLength(1);
  });
});
