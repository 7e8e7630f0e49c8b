/**
 * Guests for the "daemon survives its own bugs" tests (test/reliability/survive.test.ts).
 *
 * `buildMistypedLogging`: a guest that declares a host import with other types than the host's WIT
 * (issue 11): its world imports `edgeward:module/logging@0.1.0` with `log: func(level: bool, message:
 * string)` where wit/module/module.wit has the `level` enum. It needs no grant (logging is always linked). jco builds the glue from the
 * component's own declaration, so without a deploy-time type check the host's logging is called with a
 * JS boolean as the level. `invoke` logs one line with level `true` and answers "ok".
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, componentEmbed, componentNew } from '@bytecodealliance/jco';
import { core, ITOA, TEST_WIT } from './components.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const MODULE_WIT = readFileSync(path.join(here, '../../wit/module/module.wit'), 'utf8');

/** module.wit with the logging interface's `level` parameter declared as a `bool`. */
const MISTYPED_WIT = MODULE_WIT.replace(/log: func\(level: level, message: string\);/, 'log: func(level: bool, message: string);');
if (MISTYPED_WIT === MODULE_WIT) throw new Error('wit/module/module.wit changed: the mistyped guest no longer replaces the log signature');

/** `start` of the shared core logs with discriminant 2 (info); a `bool` lifts only 0 or 1, so it logs with 1. */
const WAT = core({
  invokeBody: '(call $log (i32.const 1) (i32.const 64) (i32.const 7)) (call $ok (i32.const 64) (i32.const 7))',
}).replace('(call $log (i32.const 2) (i32.const 64) (i32.const 7))', '(call $log (i32.const 1) (i32.const 64) (i32.const 7))');

/** The component bytes (~600 bytes). */
export async function buildMistypedLogging(): Promise<Uint8Array> {
  const binary = await parse(WAT);
  return componentNew(await componentEmbed({ binary, witSource: MISTYPED_WIT, world: 'module' }));
}

/**
 * A guest importing the test capability `edgeward:test/fallible.attempt(x: u32) -> result<u32, string>`
 * (tests register it host-side): invoke calls it with the payload's length and answers the ok value as
 * decimal text, or the error string as its own error. So a capability's deliberate WIT error reaches the
 * guest as a value (and an exception without `payload` does not).
 */
const FALLIBLE_WIT = `package edgeward:test;
${TEST_WIT.fallible}
world fallible-guest { import edgeward:module/logging@0.1.0; export edgeward:module/lifecycle@0.1.0; import fallible; }
package edgeward:module@0.1.0 {
${MODULE_WIT.replace(/^package [^;]+;$/m, '')}
}`;

/** The core: attempt(pl) writes the result at 16 (discriminant byte; ok u32 at 20, or err string ptr/len at 20/24). */
const FALLIBLE_WAT = core({
  imports: '(import "edgeward:test/fallible" "attempt" (func $attempt (param i32 i32)))',
  extra: ITOA,
  invokeBody: `(call $attempt (local.get $pl) (i32.const 16))
    (if (result i32) (i32.load8_u (i32.const 16))
      (then (call $err (i32.load (i32.const 20)) (i32.load (i32.const 24))))
      (else (call $itoa (i32.load (i32.const 20)))))`,
});

export async function buildFallible(): Promise<Uint8Array> {
  const binary = await parse(FALLIBLE_WAT);
  return componentNew(await componentEmbed({ binary, witSource: FALLIBLE_WIT, world: 'fallible-guest' }));
}
