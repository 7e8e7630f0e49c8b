/**
 * W1: the deploy-time import type check. Components are made from WIT worlds with jco (a dummy core
 * module under the declared types), so each test states exactly what the component declares; they are
 * never run. The acceptance test deploys through the real runtime.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { componentEmbed, componentNew } from '@bytecodealliance/jco';
import { afterAll, describe, expect, it } from 'vitest';
import { checkBoundary, componentTypes } from './check.js';
import { decodeComponentTypes } from './decode.js';
import { nestPackage } from './reference.js';
import { Fixture, spec } from '../../test/helpers/runtime.js';
import { FS_ERROR_CODES } from '../../guests/adversarial/components.js';
import { RuntimeError } from '../runtime/types.js';
import { report } from '../../test/helpers/reliability.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const LIFECYCLE = nestPackage(readFileSync(path.join(root, 'wit/module/module.wit'), 'utf8'));

/** A component whose world imports `imports` (WIT lines) and exports the real lifecycle, from `packages`. */
async function component(packages: string, worldBody: string): Promise<Uint8Array> {
  const witSource = `package edgeward:probe;\nworld probe {\n${worldBody}\n}\n${packages}`;
  return componentNew(await componentEmbed({ dummy: true, witSource, world: 'probe' }));
}

/** The logging interface with the level parameter declared as `levelType`. */
const logging = (body: string) => `package edgeward:module@0.1.0 {
  interface logging { ${body} }
  interface lifecycle {
    start: func(config: string) -> result<_, string>;
    stop: func();
    invoke: func(method: string, payload: string) -> result<string, string>;
  }
}`;

function verdict(bytes: Uint8Array): string | undefined {
  const types = componentTypes('m', bytes);
  try {
    checkBoundary('m', types);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

const EXPORT_LIFECYCLE = 'export edgeward:module/lifecycle@0.1.0;';
let refused = 0;
let cases = 0;
const expectRefused = (got: string | undefined, want: string) => {
  cases++;
  expect(got).toBe(want);
  if (got !== undefined) refused++;
};

describe('W1: import type check against the host WIT', () => {
  it('accepts the real module world (the host WIT itself)', async () => {
    const bytes = await component(LIFECYCLE, `import edgeward:module/logging@0.1.0;\n${EXPORT_LIFECYCLE}`);
    expect(verdict(bytes)).toBeUndefined();
  });

  it('refuses a bool where the host has the level enum, naming interface, function and parameter', async () => {
    const bytes = await component(logging('log: func(level: bool, message: string);'), `import edgeward:module/logging@0.1.0;\n${EXPORT_LIFECYCLE}`);
    expectRefused(verdict(bytes), 'module "m": import type mismatch: edgeward:module/logging.log: parameter "level": expected enum level, got bool');
  });

  it('refuses an enum with its cases in another order (the ABI is the index)', async () => {
    const bytes = await component(logging('enum level { debug, trace, info, warn, error }\nlog: func(level: level, message: string);'), `import edgeward:module/logging@0.1.0;\n${EXPORT_LIFECYCLE}`);
    expectRefused(verdict(bytes), 'module "m": import type mismatch: edgeward:module/logging.level: enum level: case 1: expected "trace", got "debug"');
  });

  it('refuses a function the host does not define, and a renamed or missing parameter', async () => {
    const extra = await component(logging('enum level { trace, debug, info, warn, error }\nlog: func(level: level, message: string);\nshout: func(message: string);'), `import edgeward:module/logging@0.1.0;\n${EXPORT_LIFECYCLE}`);
    expectRefused(verdict(extra), 'module "m": import type mismatch: edgeward:module/logging.shout: the host does not define this function');
    const renamed = await component(logging('enum level { trace, debug, info, warn, error }\nlog: func(level: level, text: string);'), `import edgeward:module/logging@0.1.0;\n${EXPORT_LIFECYCLE}`);
    expectRefused(verdict(renamed), 'module "m": import type mismatch: edgeward:module/logging.log: parameter 2: expected "message", got "text"');
    const fewer = await component(logging('log: func(message: string);'), `import edgeward:module/logging@0.1.0;\n${EXPORT_LIFECYCLE}`);
    expectRefused(verdict(fewer), 'module "m": import type mismatch: edgeward:module/logging.log: expected 2 parameter(s) (level, message), got 1 (message)');
  });

  it('allows a subset of an interface (wasi:random with one of its functions)', async () => {
    const wasi = 'package wasi:random@0.2.3 { interface random { get-random-u64: func() -> u64; } }';
    const ok = await component(`${wasi}\n${LIFECYCLE}`, `import wasi:random/random@0.2.3;\n${EXPORT_LIFECYCLE}`);
    expect(verdict(ok)).toBeUndefined();
    const wrong = await component(`package wasi:random@0.2.3 { interface random { get-random-u64: func() -> s64; } }\n${LIFECYCLE}`, `import wasi:random/random@0.2.3;\n${EXPORT_LIFECYCLE}`);
    expectRefused(verdict(wrong), 'module "m": import type mismatch: wasi:random/random.get-random-u64: result: expected u64, got s64');
  });

  it('compares records, variants, lists and resources recursively (wasi:filesystem, wasi:io)', async () => {
    const fs = (readType: string, codes = FS_ERROR_CODES) => `package wasi:filesystem@0.2.3 {
      interface types {
        type filesize = u64;
        enum error-code { ${codes.join(', ')} }
        resource descriptor { read: func(length: filesize, offset: filesize) -> result<${readType}, error-code>; }
      }
    }`;
    const wrongList = await component(`${fs('tuple<list<u16>, bool>')}\n${LIFECYCLE}`, `import wasi:filesystem/types@0.2.3;\n${EXPORT_LIFECYCLE}`);
    expectRefused(verdict(wrongList), 'module "m": import type mismatch: wasi:filesystem/types.[method]descriptor.read: result: result<tuple<list<u8>, bool>, enum error-code> ok: tuple<list<u8>, bool> element 0: list<u8>: expected u8, got u16');
    // The host's error-code has 37 cases; a guest declaring two is refused at the first case that is missing.
    const shortEnum = await component(`${fs('tuple<list<u8>, bool>', ['access', 'would-block'])}\n${LIFECYCLE}`, `import wasi:filesystem/types@0.2.3;\n${EXPORT_LIFECYCLE}`);
    expectRefused(verdict(shortEnum), 'module "m": import type mismatch: wasi:filesystem/types.error-code: enum error-code: case "already" is missing');
    // A resource is nominal: a descriptor that the guest says comes from another interface is not the host's.
    const foreign = await component(`package wasi:io@0.2.3 { interface error { resource error; } }
      package wasi:filesystem@0.2.3 { interface preopens { use wasi:io/error@0.2.3.{error as descriptor}; get-directories: func() -> list<tuple<descriptor, string>>; } }
      ${LIFECYCLE}`, `import wasi:filesystem/preopens@0.2.3;\n${EXPORT_LIFECYCLE}`);
    expectRefused(verdict(foreign), 'module "m": import type mismatch: wasi:filesystem/preopens.descriptor: expected resource descriptor, got resource error');
  });

  it('checks the exports the host calls (lifecycle)', async () => {
    const pkg = `package edgeward:module@0.1.0 {
      interface logging { enum level { trace, debug, info, warn, error } log: func(level: level, message: string); }
      interface lifecycle { start: func(config: string) -> result<_, string>; stop: func(); invoke: func(method: string, payload: string) -> result<u32, string>; }
    }`;
    const bytes = await component(pkg, `import edgeward:module/logging@0.1.0;\n${EXPORT_LIFECYCLE}`);
    expectRefused(verdict(bytes), 'module "m": export type mismatch: edgeward:module/lifecycle.invoke: result: result<string, string> ok: expected string, got u32');
  });

  it('accepts the sample guests built with componentize-js (WASI 0.2.10 and 0.2.12 imports)', () => {
    for (const g of ['hello', 'console', 'fetcher', 'runaway']) {
      const bytes = new Uint8Array(readFileSync(path.join(root, `guests/${g}/dist/${g}.wasm`)));
      const t0 = performance.now();
      const types = decodeComponentTypes(bytes);
      const ms = performance.now() - t0;
      expect(Object.keys(types.exports)).toContain('edgeward:module/lifecycle@0.1.0');
      expect(verdict(bytes)).toBeUndefined();
      console.log(`[W1] read the declared types of ${g} (${(bytes.length / 1e6).toFixed(1)} MB, ${Object.keys(types.imports).length} imports) in ${ms.toFixed(1)} ms`);
    }
  });

  it('refuses a component whose type section it cannot read, instead of linking it unchecked', () => {
    const bytes = new Uint8Array([0, 0x61, 0x73, 0x6d, 0x0d, 0, 1, 0, 7, 2, 1, 0x5a]);
    expect(() => componentTypes('m', bytes)).toThrow(/module "m": its component types cannot be read: /);
  });
});

describe('W1 through the runtime: refused at deploy, before anything runs', () => {
  const fx = new Fixture();
  afterAll(async () => {
    await fx.cleanup();
    report('W1', `${refused}/${cases} mistyped declarations refused at deploy with interface, function and first difference; a mistyped logging import (no grants) refused by the runtime with type-mismatch`, refused === cases);
  });

  it('a component with no grants declaring logging.log(level: bool) is refused with type-mismatch and an event', async () => {
    const rt = await fx.runtime();
    const file = path.join(fx.dir, 'mistyped.wasm');
    const { writeFileSync } = await import('node:fs');
    writeFileSync(file, await component(logging('log: func(level: bool, message: string);'), `import edgeward:module/logging@0.1.0;\n${EXPORT_LIFECYCLE}`));
    const err = await rt.create(spec('mistyped', file)).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(RuntimeError);
    expect((err as RuntimeError).code).toBe('type-mismatch');
    expect((err as RuntimeError).message).toBe('module "mistyped": import type mismatch: edgeward:module/logging.log: parameter "level": expected enum level, got bool');
    expect(await rt.list()).toEqual([]);
    expect(rt.events().some((e) => e.kind === 'type-mismatch' && e.module === 'mistyped')).toBe(true);
  });
});
