/**
 * The key service's one authorizer: a closed set of operations, decided from who the caller is (never from
 * what it says about itself) and the `[[principal]]` grants. Anything not explicitly allowed is denied.
 *
 * - The daemon may do anything (it is the service's owner, like uid 0 in aziot-keyd).
 * - uid 0 may do anything, as in aziot-keyd (`key/aziot-keyd/src/lib.rs`, "uid 0 always").
 * - A module may do anything in its own namespace except name foreign keys by URI.
 * - A principal (by module name or uid) may create, load and use the daemon-namespace key ids its `keys`
 *   patterns match (`*` and `?` wildcards, as aziot's principal `keys`), never delete or list them.
 */
import type { PrincipalOptions } from '../support/options.js';
import { DAEMON_NAMESPACE, moduleNamespace, type Caller, type KeyOperation, type Namespace } from './types.js';

export interface KeyTarget {
  readonly namespace: Namespace;
  /** Absent for namespace-wide operations (list) and URI loads. */
  readonly id?: string;
}

export type Authorizer = (caller: Caller, op: KeyOperation, target: KeyTarget) => boolean;

/** aziot-style wildcard match: `*` any run, `?` one character, everything else literal. */
export function wildcardMatch(pattern: string, id: string): boolean {
  const re = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${re}$`).test(id);
}

export function createAuthorizer(principals: readonly PrincipalOptions[]): Authorizer {
  const grantedTo = (match: (p: PrincipalOptions) => boolean, id: string | undefined): boolean =>
    id !== undefined && principals.some((p) => match(p) && p.keys.some((k) => wildcardMatch(k, id)));

  const principalMayUse = (op: KeyOperation, granted: boolean): boolean => {
    switch (op) {
      case 'create':
      case 'load':
      case 'use':
        return granted;
      case 'import':
      case 'delete':
      case 'list':
      case 'load-uri':
        return false;
      default:
        return assertNever(op);
    }
  };

  return (caller, op, target) => {
    switch (caller.kind) {
      case 'daemon':
        return true;
      case 'user':
        if (caller.uid === 0) return true;
        return target.namespace === DAEMON_NAMESPACE && principalMayUse(op, grantedTo((p) => p.uid === caller.uid, target.id));
      case 'module':
        if (target.namespace === moduleNamespace(caller.module)) return op !== 'load-uri';
        return target.namespace === DAEMON_NAMESPACE && principalMayUse(op, grantedTo((p) => p.module === caller.module, target.id));
      default:
        return assertNever(caller);
    }
  };
}

function assertNever(x: never): never {
  throw new Error(`unreachable: ${JSON.stringify(x)}`);
}
