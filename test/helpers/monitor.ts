/**
 * Security-extension test fixtures: tiny WAT components importing `edgeward:monitor/*` (built in memory
 * like guests/adversarial), a runtime with the monitor capabilities over a hub attached to it, and an
 * instance context for calling a monitor capability's host functions as one instance would.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { componentEmbed, componentNew, parse } from '@bytecodealliance/jco';
import { core, NESTED_MODULE } from '../../guests/adversarial/components.js';
import { nestPackage } from '../../host/boundary/reference.js';
import type { Capability, HostFunction, InstanceContext } from '../../host/runtime/capabilities.js';
import type { ComponentRuntime, RuntimeOptions } from '../../host/runtime/runtime.js';
import { FindingsStore, MonitorHub, monitorCapabilities } from '../../host/capabilities/monitor/index.js';
import type { Fixture } from './runtime.js';

const MONITOR_WIT = nestPackage(readFileSync(path.join(import.meta.dirname, '../../wit/monitor/monitor.wit'), 'utf8'));

/**
 * `responder`: invoke(_, "NAME") calls `respond.stop("NAME")` (the JSON string's quotes stripped); answers
 * "ok", or the error (the refusal's text, "not-found" or "failed"). `reporter`: invoke(_, "TEXT") submits
 * a `high` finding `EW-TEST` with TEXT as its summary; answers "ok" or fails with "error".
 */
const GUESTS = {
  responder: {
    iface: 'respond',
    wat: core({
      imports: '(import "edgeward:monitor/respond@0.1.0" "stop" (func $stop (param i32 i32 i32)))',
      extra: '(data (i32.const 96) "\\"ok\\"") (data (i32.const 100) "not-found") (data (i32.const 112) "failed")',
      invokeBody: `(call $stop (i32.add (local.get $pp) (i32.const 1)) (i32.sub (local.get $pl) (i32.const 2)) (i32.const 16))
    (if (result i32) (i32.eqz (i32.load8_u (i32.const 16)))
      (then (call $ok (i32.const 96) (i32.const 4)))
      (else (if (result i32) (i32.eq (i32.load8_u (i32.const 20)) (i32.const 1))
        (then (call $err (i32.load (i32.const 24)) (i32.load (i32.const 28))))
        (else (if (result i32) (i32.eqz (i32.load8_u (i32.const 20)))
          (then (call $err (i32.const 100) (i32.const 9)))
          (else (call $err (i32.const 112) (i32.const 6))))))))`,
    }),
  },
  reporter: {
    iface: 'findings',
    wat: core({
      imports: '(import "edgeward:monitor/findings@0.1.0" "submit" (func $submit (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32)))',
      extra: '(data (i32.const 96) "EW-TEST") (data (i32.const 112) "error") (data (i32.const 120) "\\"ok\\"")',
      // rule-id, severity high (3), summary, evidence [], tags [], subject none, result pointer.
      invokeBody: `(call $submit (i32.const 96) (i32.const 7) (i32.const 3) (i32.add (local.get $pp) (i32.const 1)) (i32.sub (local.get $pl) (i32.const 2))
      (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 16))
    (if (result i32) (i32.eqz (i32.load8_u (i32.const 16)))
      (then (call $ok (i32.const 120) (i32.const 4)))
      (else (call $err (i32.const 112) (i32.const 5))))`,
    }),
  },
} as const;
export type MonitorGuest = keyof typeof GUESTS;

export async function buildMonitorGuest(name: MonitorGuest): Promise<Uint8Array> {
  const g = GUESTS[name];
  const wit = `package edgeward:montest;
world ${name}-guest { import edgeward:module/logging@0.1.0; export edgeward:module/lifecycle@0.1.0; import edgeward:monitor/${g.iface}@0.1.0; }
${MONITOR_WIT}
${NESTED_MODULE}`;
  return componentNew(await componentEmbed({ binary: await parse(g.wat), witSource: wit, world: `${name}-guest` }));
}

export async function monitorGuestFile(fx: Fixture, name: MonitorGuest): Promise<string> {
  const file = path.join(fx.dir, `${name}.wasm`);
  writeFileSync(file, await buildMonitorGuest(name));
  return file;
}

/** A runtime whose capabilities include the monitor's, over a hub attached to it. */
export async function monitorRuntime(fx: Fixture, opts: Partial<RuntimeOptions> = {}): Promise<{ rt: ComponentRuntime; hub: MonitorHub; caps: Capability[] }> {
  const hub = new MonitorHub(await FindingsStore.open(path.join(fx.dir, 'state')));
  const caps = monitorCapabilities(hub);
  const rt = await fx.runtime({ ...opts, capabilities: [...caps, ...(opts.capabilities ?? [])] });
  hub.attach(rt);
  return { rt, hub, caps };
}

/** An instance of `module` as a capability sees it; `end()` aborts its signal (the instance ended). */
export function instanceOf(module: string): InstanceContext & { end(): void; lines: string[] } {
  const ac = new AbortController();
  const lines: string[] = [];
  return {
    module, generationId: 'g', digest: `sha256:${'0'.repeat(64)}`, signer: 'unsigned', instanceId: 1,
    limits: { memory_mib: 16, call_timeout_ms: 1000, max_value_bytes: 65536 }, signal: ac.signal,
    log: (_level, m) => void lines.push(m), current: () => true, end: () => ac.abort(), lines,
  };
}

/** The host functions of the monitor interface `iface` (e.g. "events") for `instance`. */
export function functionsOf(caps: readonly Capability[], iface: string, instance: InstanceContext): Record<string, HostFunction> {
  const cap = caps.find((c) => c.name === `edgeward:monitor/${iface}`);
  if (!cap?.prepare) throw new Error(`no monitor capability ${iface}`);
  return cap.prepare(instance)[`edgeward:monitor/${iface}`]!;
}

/** The WIT error payload a host function rejected with. */
export async function witError(p: unknown): Promise<{ tag: string; val?: unknown }> {
  const err = await Promise.resolve(p).then(() => undefined, (e: unknown) => e);
  if (!err || typeof err !== 'object' || !('payload' in err)) throw new Error(`expected a WIT error, got ${String(err)}`);
  return (err as { payload: { tag: string; val?: unknown } }).payload;
}
