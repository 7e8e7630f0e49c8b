/**
 * Capability `wasi:http/outgoing-handler`: outbound HTTP/HTTPS to the hosts a registration names under
 * `network.hosts`, and nowhere else.
 *
 * configure — at deploy: the grant needs hosts and hosts need the grant; every pattern parses
 *             (hosts.ts);
 * prepare   — `outgoingSender` compiles THIS instance's allow-list and closes over it (no global state);
 * call      — worker.mjs builds the wasi:http resources in the sandbox; host.ts checks the authority
 *             before any DNS lookup or connect, then makes the request (no redirects, body capped).
 *
 * The worker side also provides wasi:io (error, poll, streams) with the shared classes of io/worker.mjs,
 * so a module granted only this capability gets the streams its bodies need.
 */
import { GrantError, type Capability } from '../../runtime/capabilities.js';
import { outgoingSender } from './host.js';
import { parseHostPattern } from './hosts.js';
import { MAX_NETWORK_HOSTS } from '../../runtime/registry.js';

export const HTTP_OUTGOING_GRANT = 'wasi:http/outgoing-handler';
/** Must match HOST_INTERFACE in worker.mjs: the host's `send`, handed to the worker module, never to the guest. */
export const HTTP_HOST_INTERFACE = 'edgeward-private:http';

/** What a registration carries for this grant. */
export interface NetworkGrant {
  readonly hosts: readonly string[];
}

/**
 * The deploy-time check (configure phase): the grant without hosts, or hosts without the grant, is
 * refused, naming both; so is a pattern that does not parse. Returns the reason, or undefined if fine.
 */
export function checkNetworkGrant(module: string, capabilities: readonly string[], network: NetworkGrant | undefined): string | undefined {
  const granted = capabilities.includes(HTTP_OUTGOING_GRANT);
  const hosts = network?.hosts ?? [];
  if (granted && hosts.length === 0) return `module "${module}": capability "${HTTP_OUTGOING_GRANT}" needs "network": {"hosts": [...]} naming the hosts it may reach`;
  if (!granted && network !== undefined) return `module "${module}": "network.hosts" is set but capability "${HTTP_OUTGOING_GRANT}" is not granted`;
  if (hosts.length > MAX_NETWORK_HOSTS) return `module "${module}": more than ${MAX_NETWORK_HOSTS} network.hosts`;
  for (const h of hosts) {
    const p = parseHostPattern(h);
    if (typeof p === 'string') return `module "${module}": network.hosts: ${p}`;
  }
  return undefined;
}

export const httpOutgoingCapability: Capability = {
  name: HTTP_OUTGOING_GRANT,
  interfaces: ['wasi:http/outgoing-handler', 'wasi:http/types', 'wasi:io/error', 'wasi:io/poll', 'wasi:io/streams'],
  workerModule: 'host/capabilities/http/worker.mjs',
  insteadOf: { prefix: 'wasi:sockets/', advice: `no socket grant exists; outbound HTTP(S) to named hosts is "${HTTP_OUTGOING_GRANT}" (build the guest without sockets)` },
  configure(request) {
    const refused = checkNetworkGrant(request.module, request.grants, request.network);
    if (refused) throw new GrantError(refused);
  },
  prepare(instance) {
    const send = outgoingSender(instance, {
      hosts: instance.network?.hosts ?? [],
      maxResponseBytes: instance.limits.max_value_bytes,
      callTimeoutMs: instance.limits.call_timeout_ms,
    });
    return { [HTTP_HOST_INTERFACE]: { send: send as (...args: unknown[]) => unknown } };
  },
};
