/**
 * `edgeward:monitor/respond`: an extension stops or quarantines another module. Never itself, never
 * another security extension (one vendor's agent does not switch off another's), never the daemon (not a
 * module name). A quarantine is a stop, a mark in the findings store (kept until the module is redeployed
 * or removed), an event and a finding naming the extension and its reason.
 */
import type { InstanceContext } from '../../runtime/capabilities.js';
import { RuntimeError } from '../../runtime/errors.js';
import type * as Wit from './generated/interfaces/edgeward-monitor-respond.js';
import { guestString, MonitorErrorPayload } from './errors.js';
import type { MonitorHub } from './hub.js';

export const MAX_REASON = 512;

const refused = (why: string) => new MonitorErrorPayload<Wit.RespondError>({ tag: 'refused', val: why });

/** The target module, once it is known to be one the caller may act on. */
async function target(hub: MonitorHub, caller: string, v: unknown): Promise<string> {
  const name = guestString(v, 'module', 64);
  if (name === caller) throw refused('a security extension cannot stop or quarantine itself');
  const d = (await hub.rt().list()).find((m) => m.name === name);
  if (!d) throw new MonitorErrorPayload<Wit.RespondError>({ tag: 'not-found' });
  if (d.edgeward?.['kind'] === 'security-extension') throw refused('a security extension cannot stop or quarantine another security extension');
  return name;
}

async function stopIt(hub: MonitorHub, instance: Pick<InstanceContext, 'log'>, name: string): Promise<void> {
  try {
    await hub.rt().stop(name);
  } catch (err) {
    if (err instanceof RuntimeError && err.code === 'not-found') throw new MonitorErrorPayload<Wit.RespondError>({ tag: 'not-found' });
    instance.log('warn', `could not stop "${name}": ${(err as Error).message}`);
    throw new MonitorErrorPayload<Wit.RespondError>({ tag: 'failed' });
  }
}

export function respondFunctions(hub: MonitorHub, instance: Pick<InstanceContext, 'module' | 'log'>) {
  return {
    async stop(module: unknown): Promise<void> {
      const name = await target(hub, instance.module, module);
      instance.log('warn', `stopping module "${name}"`);
      await stopIt(hub, instance, name);
    },
    async quarantine(module: unknown, reason: unknown): Promise<void> {
      const why = guestString(reason, 'reason', MAX_REASON);
      const name = await target(hub, instance.module, module);
      instance.log('warn', `quarantining module "${name}": ${why}`);
      await stopIt(hub, instance, name);
      try {
        await hub.findings.quarantine(name, { by: instance.module, reason: why });
        await hub.findings.add({ source: instance.module, ruleId: 'edgeward:quarantine', severity: 'high', summary: `module "${name}" quarantined by "${instance.module}"`, evidence: [['reason', why]], tags: ['response'], subject: name });
      } catch (err) {
        instance.log('warn', `quarantine of "${name}" could not be recorded: ${(err as Error).message}`);
        throw new MonitorErrorPayload<Wit.RespondError>({ tag: 'failed' });
      }
      hub.note(name, 'quarantined', `quarantined by "${instance.module}": ${why}`);
    },
  };
}
