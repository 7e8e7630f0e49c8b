/** A deploy names every missing grant at once (planLinks), each once, with the imports that need it. */
import { describe, expect, it } from 'vitest';
import { edgewardCapabilities } from '../host/capabilities/index.js';
import { planLinks } from '../host/runtime/capabilities.js';

const CAPABILITIES = edgewardCapabilities();

/** What guests/notes (componentize-js, a world importing wasi:filesystem) imports, in the order the runtime lists them. */
const NOTES_IMPORTS = [
  'edgeward:module/logging', 'wasi:cli/stderr', 'wasi:cli/stdin', 'wasi:cli/stdout', 'wasi:clocks/wall-clock',
  'wasi:filesystem/preopens', 'wasi:filesystem/types', 'wasi:io/error', 'wasi:io/poll', 'wasi:io/streams',
];

describe('missing grants', () => {
  it('names every missing grant once, with the imports needing it (wasi:io and the filesystem under the stdio that links them)', () => {
    expect(planLinks('notes', NOTES_IMPORTS, [], CAPABILITIES)).toEqual({
      ok: false,
      message: 'module "notes" imports interfaces that are not granted: '
        + 'grant "wasi:cli/stdio" is missing (for "wasi:cli/stderr", "wasi:cli/stdin", "wasi:cli/stdout", "wasi:filesystem/preopens", "wasi:filesystem/types", "wasi:io/error", "wasi:io/poll", "wasi:io/streams"); '
        + 'grant "wasi:clocks" is missing (for "wasi:clocks/wall-clock")',
    });
  });

  it('names only what is still missing, in the one-grant form when one grant is', () => {
    expect(planLinks('notes', [...NOTES_IMPORTS, 'wasi:random/random'], ['wasi:cli/stdio'], CAPABILITIES)).toEqual({
      ok: false,
      message: 'module "notes" imports interfaces that are not granted: '
        + 'grant "wasi:clocks" is missing (for "wasi:clocks/wall-clock"); grant "wasi:random" is missing (for "wasi:random/random")',
    });
    expect(planLinks('notes', NOTES_IMPORTS, ['wasi:filesystem/data', 'wasi:clocks'], CAPABILITIES)).toEqual({
      ok: false,
      message: 'module "notes" imports "wasi:cli/stderr", which is not granted: grant "wasi:cli/stdio" is missing',
    });
    const plan = planLinks('notes', NOTES_IMPORTS, ['wasi:cli/stdio', 'wasi:clocks', 'wasi:filesystem/data'], CAPABILITIES);
    expect(plan.ok && plan.capabilities.map((c) => c.name).sort()).toEqual(['edgeward:module/logging', 'wasi:cli/stdio', 'wasi:clocks', 'wasi:filesystem/data']);
  });

  it('tells an import no grant provides first: the guest must be rebuilt whatever the manifest says', () => {
    expect(planLinks('m', ['wasi:sockets/tcp@0.2.3', 'wasi:random/random@0.2.3', 'example:x/y'], [], CAPABILITIES)).toEqual({
      ok: false,
      message: 'module "m" imports interfaces that are not granted: '
        + 'no socket grant exists; outbound HTTP(S) to named hosts is "wasi:http/outgoing-handler" (build the guest without sockets) (for "wasi:sockets/tcp@0.2.3"); '
        + 'no Edgeward capability provides it (for "example:x/y")',
    });
  });
});
