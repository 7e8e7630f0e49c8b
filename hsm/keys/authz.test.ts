import { describe, expect, it } from 'vitest';
import { createAuthorizer, wildcardMatch } from './authz.js';

const authorize = createAuthorizer([
  { name: 'hub', module: 'edgehub', keys: ['aziot-edged-ca', 'shared-*'] },
  { name: 'svc', uid: 1001, keys: ['svc-?'] },
]);

describe('key authorizer (deny by default)', () => {
  it('wildcards follow aziot: * any run, ? one char, the rest literal', () => {
    expect(wildcardMatch('shared-*', 'shared-x.y')).toBe(true);
    expect(wildcardMatch('a?c', 'abc')).toBe(true);
    expect(wildcardMatch('a?c', 'abbc')).toBe(false);
    expect(wildcardMatch('a.c', 'abc')).toBe(false);
  });

  it('daemon and uid 0 may do anything', () => {
    expect(authorize({ kind: 'daemon' }, 'delete', { namespace: 'module.x', id: 'k' })).toBe(true);
    expect(authorize({ kind: 'user', uid: 0 }, 'list', { namespace: 'edgeward' })).toBe(true);
  });

  it('a module owns its namespace, but may not load foreign URIs', () => {
    const m = { kind: 'module', module: 'edgehub' } as const;
    for (const op of ['create', 'load', 'import', 'use', 'delete', 'list'] as const) expect(authorize(m, op, { namespace: 'module.edgehub', id: 'k' })).toBe(true);
    expect(authorize(m, 'load-uri', { namespace: 'module.edgehub' })).toBe(false);
    expect(authorize(m, 'use', { namespace: 'module.other', id: 'k' })).toBe(false);
    expect(authorize({ kind: 'module', module: 'edgehubx' }, 'use', { namespace: 'module.edgehub', id: 'k' })).toBe(false);
  });

  it('principals grant create/load/use on matching daemon ids only, never delete/import/list', () => {
    const m = { kind: 'module', module: 'edgehub' } as const;
    expect(authorize(m, 'use', { namespace: 'edgeward', id: 'aziot-edged-ca' })).toBe(true);
    expect(authorize(m, 'create', { namespace: 'edgeward', id: 'shared-1' })).toBe(true);
    expect(authorize(m, 'use', { namespace: 'edgeward', id: 'device-id' })).toBe(false);
    expect(authorize(m, 'delete', { namespace: 'edgeward', id: 'aziot-edged-ca' })).toBe(false);
    expect(authorize(m, 'import', { namespace: 'edgeward', id: 'shared-1' })).toBe(false);
    expect(authorize(m, 'list', { namespace: 'edgeward' })).toBe(false);
    expect(authorize({ kind: 'user', uid: 1001 }, 'use', { namespace: 'edgeward', id: 'svc-a' })).toBe(true);
    expect(authorize({ kind: 'user', uid: 1001 }, 'use', { namespace: 'edgeward', id: 'svc-ab' })).toBe(false);
    expect(authorize({ kind: 'user', uid: 1002 }, 'use', { namespace: 'edgeward', id: 'svc-a' })).toBe(false);
    expect(authorize({ kind: 'user', uid: 1001 }, 'use', { namespace: 'module.edgehub', id: 'svc-a' })).toBe(false);
  });
});
