import { describe, expect, it } from 'vitest';
import { planLinks, shadowed } from '../runtime/capabilities.js';
import { edgewardCapabilities } from './index.js';

const BUILTIN_CAPABILITIES = edgewardCapabilities();

const FS_IMPORTS = ['wasi:filesystem/types@0.2.3', 'wasi:filesystem/preopens@0.2.3'];

describe('wasi:filesystem linking', () => {
  it('links the data directory when granted, even next to stdio\'s empty placeholder', () => {
    const plan = planLinks('m', [...FS_IMPORTS, 'wasi:cli/stdout@0.2.3'], ['wasi:cli/stdio', 'wasi:filesystem/data'], BUILTIN_CAPABILITIES);
    if (!plan.ok) throw new Error(plan.message);
    const names = plan.capabilities.map((c) => c.name).sort();
    expect(names).toEqual(['wasi:cli/stdio', 'wasi:filesystem/data']);
    const stdio = plan.capabilities.find((c) => c.name === 'wasi:cli/stdio')!;
    expect(shadowed(stdio, plan.capabilities).sort()).toEqual(['wasi:filesystem/preopens', 'wasi:filesystem/types']);
  });

  it('keeps stdio\'s placeholder (no preopens) when only stdio is granted', () => {
    const plan = planLinks('m', FS_IMPORTS, ['wasi:cli/stdio'], BUILTIN_CAPABILITIES);
    if (!plan.ok) throw new Error(plan.message);
    expect(plan.capabilities.map((c) => c.name)).toEqual(['wasi:cli/stdio']);
    expect(shadowed(plan.capabilities[0]!, plan.capabilities)).toEqual([]);
  });

  it('names wasi:filesystem/data when nothing providing the filesystem is granted', () => {
    expect(planLinks('m', FS_IMPORTS, [], BUILTIN_CAPABILITIES)).toEqual({
      ok: false,
      message: 'module "m" imports "wasi:filesystem/types@0.2.3", which is not granted: grant "wasi:filesystem/data" is missing',
    });
  });
});

/** What guests/fetcher (componentize-js, `http` feature) imports, as jco lists it. */
const FETCHER_IMPORTS = [
  'edgeward:module/logging@0.1.0', 'wasi:io/poll@0.2.12', 'wasi:io/error@0.2.12', 'wasi:io/streams@0.2.12',
  'wasi:http/types@0.2.10', 'wasi:http/outgoing-handler@0.2.10',
];

describe('wasi:http/outgoing-handler linking', () => {
  it('links only logging and the http grant (which brings wasi:io) for a fetch guest', () => {
    const plan = planLinks('m', FETCHER_IMPORTS, ['wasi:http/outgoing-handler'], BUILTIN_CAPABILITIES);
    if (!plan.ok) throw new Error(plan.message);
    expect(plan.capabilities.map((c) => c.name).sort()).toEqual(['edgeward:module/logging', 'wasi:http/outgoing-handler']);
  });

  it('names wasi:http/outgoing-handler, not the wasi:io it drags in, when nothing is granted', () => {
    expect(planLinks('m', FETCHER_IMPORTS, [], BUILTIN_CAPABILITIES)).toEqual({
      ok: false,
      message: 'module "m" imports "wasi:http/types@0.2.10", which is not granted: grant "wasi:http/outgoing-handler" is missing',
    });
    expect(planLinks('m', FETCHER_IMPORTS, ['wasi:cli/stdio'], BUILTIN_CAPABILITIES)).toMatchObject({ ok: false, message: expect.stringContaining('grant "wasi:http/outgoing-handler" is missing') });
  });

  it('refuses wasi:sockets: no socket grant exists, and the message points to wasi:http/outgoing-handler', () => {
    for (const grants of [[], ['wasi:http/outgoing-handler']]) {
      expect(planLinks('m', ['wasi:sockets/tcp@0.2.3', ...FETCHER_IMPORTS], grants, BUILTIN_CAPABILITIES)).toEqual({
        ok: false,
        message: 'module "m" imports "wasi:sockets/tcp@0.2.3", which is not granted: no socket grant exists; outbound HTTP(S) to named hosts is "wasi:http/outgoing-handler" (build the guest without sockets)',
      });
    }
  });

  it('hands the private host interface to the worker module only: it is not a linkable import', () => {
    expect(planLinks('m', ['edgeward-private:http'], ['wasi:http/outgoing-handler'], BUILTIN_CAPABILITIES)).toMatchObject({ ok: false });
  });
});
