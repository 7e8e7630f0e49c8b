/**
 * Tiny hand-written guests (WAT → core module → component with the `module` world embedded), one per
 * property the sandbox must hold. ~1 KB each and instantiated in microseconds, so tests build them in
 * memory instead of paying componentize-js's seconds per guest.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, componentEmbed, componentNew } from '@bytecodealliance/jco';

const here = path.dirname(fileURLToPath(import.meta.url));
const MODULE_WIT = readFileSync(path.join(here, '../../wit/module/module.wit'), 'utf8');

const LIFECYCLE = 'edgeward:module/lifecycle@0.1.0';

/** Shared core: bump allocator, `log` import, start that logs "started", stop, and a result area at 0. */
export function core(opts: { imports?: string; invokeBody: string; extra?: string; memory?: string; startBody?: string }): string {
  return `(module
  (import "edgeward:module/logging@0.1.0" "log" (func $log (param i32 i32 i32)))
  ${opts.imports ?? ''}
  ${opts.memory ?? '(memory (export "memory") 1)'}
  (global $bump (mut i32) (i32.const 4096))
  (data (i32.const 64) "started")
  (data (i32.const 80) "bad method")
  ;; Bump allocator that rewinds when it reaches the end of the first page: values live for one call.
  (func $alloc (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
    (local $p i32)
    (local.set $p (i32.and (i32.add (global.get $bump) (i32.const 7)) (i32.const -8)))
    (if (i32.gt_u (i32.add (local.get $p) (local.get 3)) (i32.const 65536)) (then (local.set $p (i32.const 4096))))
    (if (i32.gt_u (i32.add (local.get $p) (local.get 3)) (i32.const 65536)) (then (unreachable)))
    (global.set $bump (i32.add (local.get $p) (local.get 3)))
    (local.get $p))
  (func (export "${LIFECYCLE}#start") (param i32 i32) (result i32)
    ${opts.startBody ?? '(call $log (i32.const 2) (i32.const 64) (i32.const 7))'}
    (i32.store (i32.const 0) (i32.const 0))
    (i32.const 0))
  (func (export "${LIFECYCLE}#stop"))
  (func $ok (param $ptr i32) (param $len i32) (result i32)
    (i32.store (i32.const 0) (i32.const 0))
    (i32.store (i32.const 4) (local.get $ptr))
    (i32.store (i32.const 8) (local.get $len))
    (i32.const 0))
  (func $err (param $ptr i32) (param $len i32) (result i32)
    (i32.store (i32.const 0) (i32.const 1))
    (i32.store (i32.const 4) (local.get $ptr))
    (i32.store (i32.const 8) (local.get $len))
    (i32.const 0))
  ${opts.extra ?? ''}
  (func (export "${LIFECYCLE}#invoke") (param $mp i32) (param $ml i32) (param $pp i32) (param $pl i32) (result i32)
    ${opts.invokeBody})
)`;
}

/** Writes the decimal form of $n at 32..48 and returns its length (for answers like "1024"). */
export const ITOA = `
  (func $itoa (param $n i32) (result i32)
    (local $i i32) (local $len i32)
    (local.set $i (i32.const 47))
    (loop $digits
      (i32.store8 (local.get $i) (i32.add (i32.const 48) (i32.rem_u (local.get $n) (i32.const 10))))
      (local.set $len (i32.add (local.get $len) (i32.const 1)))
      (local.set $n (i32.div_u (local.get $n) (i32.const 10)))
      (local.set $i (i32.sub (local.get $i) (i32.const 1)))
      (br_if $digits (i32.ne (local.get $n) (i32.const 0))))
    (call $ok (i32.sub (i32.const 48) (local.get $len)) (local.get $len)))`;

export const WAT_GUESTS = {
  /** Answers every method with its payload; method "fail" answers an error. */
  echo: core({
    invokeBody: `(if (result i32) (i32.and (i32.eq (local.get $ml) (i32.const 4)) (i32.eq (i32.load (local.get $mp)) (i32.const 0x6c696166)))
      (then (call $err (i32.const 80) (i32.const 10)))
      (else (call $ok (local.get $pp) (local.get $pl))))`,
  }),
  /** G1: `loop {}` in an export. */
  spin: core({ invokeBody: '(loop $forever (br $forever)) (unreachable)' }),
  /** G2: grows memory one page at a time until refused; answers the number of pages it reached. */
  membomb: core({
    extra: ITOA,
    invokeBody: `(loop $grow (br_if $grow (i32.ne (memory.grow (i32.const 1)) (i32.const -1)))) (call $itoa (memory.size))`,
  }),
  /** G2: declares a memory that needs 2000 pages (125 MiB) before it runs. */
  bigmin: core({ memory: '(memory (export "memory") 2000)', invokeBody: '(call $ok (i32.const 0) (i32.const 0))' }),
  /** Logs one line per payload byte in a tight loop (log flood). */
  chatty: core({
    invokeBody: `(local $i i32)
    (block $done (loop $lines
      (br_if $done (i32.ge_u (local.get $i) (local.get $pl)))
      (call $log (i32.const 2) (i32.const 64) (i32.const 7))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $lines)))
    (call $ok (i32.const 0) (i32.const 0))`,
  }),
  /** A trap mid-call (`unreachable`). */
  crash: core({ invokeBody: '(unreachable)' }),
  /** A trap in its `start`: every start of it fails. */
  startcrash: core({ startBody: '(unreachable)', invokeBody: '(call $ok (i32.const 0) (i32.const 0))' }),
};

export type WatGuest = keyof typeof WAT_GUESTS;

/** The slice of wasi:filesystem@0.2.3 the `fs` guest calls, with the real names, types and enum order. */
export const FS_WIT = `package wasi:filesystem@0.2.3 {
  interface types {
    type filesize = u64;
    flags descriptor-flags { read, write, file-integrity-sync, data-integrity-sync, requested-write-sync, mutate-directory }
    flags path-flags { symlink-follow }
    flags open-flags { create, directory, exclusive, truncate }
    enum error-code { access, would-block, already, bad-descriptor, busy, deadlock, quota, exist, file-too-large, illegal-byte-sequence, in-progress, interrupted, invalid, io, is-directory, loop, too-many-links, message-size, name-too-long, no-device, no-entry, no-lock, insufficient-memory, insufficient-space, not-directory, not-empty, not-recoverable, unsupported, no-tty, no-such-device, overflow, not-permitted, pipe, read-only, invalid-seek, text-file-busy, cross-device }
    resource descriptor {
      read: func(length: filesize, offset: filesize) -> result<tuple<list<u8>, bool>, error-code>;
      write: func(buffer: list<u8>, offset: filesize) -> result<filesize, error-code>;
      open-at: func(path-flags: path-flags, path: string, open-flags: open-flags, %flags: descriptor-flags) -> result<descriptor, error-code>;
      symlink-at: func(old-path: string, new-path: string) -> result<_, error-code>;
    }
  }
  interface preopens { use types.{descriptor}; get-directories: func() -> list<tuple<descriptor, string>>; }
}`;

/** wasi:filesystem `error-code` cases in WIT order: the `fs` guest answers errors as their index. */
export const FS_ERROR_CODES: readonly string[] = /enum error-code \{ ([^}]+) \}/.exec(FS_WIT)![1]!.split(', ');

const FS_TYPES = 'wasi:filesystem/types@0.2.3';
/** Core imports of FS_WIT's preopen, open-at, read, write and drop, shared by the guests that use files. */
export const FS_IMPORTS = `(import "wasi:filesystem/preopens@0.2.3" "get-directories" (func $dirs (param i32)))
  (import "${FS_TYPES}" "[method]descriptor.open-at" (func $open (param i32 i32 i32 i32 i32 i32 i32)))
  (import "${FS_TYPES}" "[method]descriptor.read" (func $read (param i32 i64 i64 i32)))
  (import "${FS_TYPES}" "[method]descriptor.write" (func $write (param i32 i32 i32 i64 i32)))
  (import "${FS_TYPES}" "[resource-drop]descriptor" (func $drop (param i32)))`;
/**
 * The `fs` guest: the method's first letter is the operation, the payload a path in its preopen.
 * The payload is the path as a JSON string (no escapes).
 * `w<text>` creates/truncates the file and writes <text>; `r` reads it (up to 64 bytes); `p` answers the
 * preopen's name; `s<target>` asks for a symlink at the path pointing to <target>; `q` writes one byte at
 * offset 16 MiB (the default quota). A filesystem error is answered as the error-code's index
 * (FS_ERROR_CODES); "99" means no preopen.
 */
const FS_WAT = core({
  imports: `${FS_IMPORTS}
  (import "${FS_TYPES}" "[method]descriptor.symlink-at" (func $symlink (param i32 i32 i32 i32 i32 i32)))`,
  extra: `${ITOA}
  (data (i32.const 104) "x")
  (global $dir (mut i32) (i32.const -1))
  (func $fail (param $code i32) (result i32)
    (drop (call $itoa (local.get $code)))
    (i32.store (i32.const 0) (i32.const 1))
    (i32.const 0))
  ;; The preopen (fetched once), or -1.
  (func $preopen (result i32)
    (if (i32.eq (global.get $dir) (i32.const -1)) (then
      (call $dirs (i32.const 16))
      (if (i32.ne (i32.load (i32.const 20)) (i32.const 0)) (then
        (global.set $dir (i32.load (i32.load (i32.const 16))))))))
    (global.get $dir))
  ;; open-at(dir, no-follow, path, oflags, dflags) → handle at 20 when 16 is 0, else the error at 20.
  (func $openat (param $pp i32) (param $pl i32) (param $of i32) (param $df i32) (result i32)
    (call $open (call $preopen) (i32.const 0) (local.get $pp) (local.get $pl) (local.get $of) (local.get $df) (i32.const 16))
    (i32.load8_u (i32.const 16)))`,
  invokeBody: `(local $op i32) (local $fd i32)
    (if (i32.eq (call $preopen) (i32.const -1)) (then (return (call $fail (i32.const 99)))))
    (local.set $op (i32.load8_u (local.get $mp)))
    ;; The payload is a JSON string: the path is what is between its quotes (no escapes).
    (if (i32.and (i32.ge_u (local.get $pl) (i32.const 2)) (i32.eq (i32.load8_u (local.get $pp)) (i32.const 0x22))) (then
      (local.set $pp (i32.add (local.get $pp) (i32.const 1)))
      (local.set $pl (i32.sub (local.get $pl) (i32.const 2)))))
    ;; p: the preopen's name
    (if (i32.eq (local.get $op) (i32.const 0x70)) (then
      (call $dirs (i32.const 16))
      (call $drop (i32.load (i32.load (i32.const 16))))
      (return (call $ok (i32.load offset=4 (i32.load (i32.const 16))) (i32.load offset=8 (i32.load (i32.const 16)))))))
    ;; s<target>: symlink-at(target, path)
    (if (i32.eq (local.get $op) (i32.const 0x73)) (then
      (call $symlink (call $preopen) (i32.add (local.get $mp) (i32.const 1)) (i32.sub (local.get $ml) (i32.const 1)) (local.get $pp) (local.get $pl) (i32.const 16))
      (if (i32.load8_u (i32.const 16)) (then (return (call $fail (i32.load8_u (i32.const 17))))))
      (return (call $ok (i32.const 0) (i32.const 0)))))
    ;; r: open read-only, read 64 bytes at 0
    (if (i32.eq (local.get $op) (i32.const 0x72)) (then
      (if (call $openat (local.get $pp) (local.get $pl) (i32.const 0) (i32.const 1)) (then (return (call $fail (i32.load8_u (i32.const 20))))))
      (local.set $fd (i32.load (i32.const 20)))
      (call $read (local.get $fd) (i64.const 64) (i64.const 0) (i32.const 16))
      (call $drop (local.get $fd))
      (if (i32.load8_u (i32.const 16)) (then (return (call $fail (i32.load8_u (i32.const 20))))))
      (return (call $ok (i32.load (i32.const 20)) (i32.load (i32.const 24))))))
    ;; w<text> / q: create|truncate, read|write
    (if (i32.or (i32.eq (local.get $op) (i32.const 0x77)) (i32.eq (local.get $op) (i32.const 0x71))) (then
      (if (call $openat (local.get $pp) (local.get $pl) (i32.const 9) (i32.const 3)) (then (return (call $fail (i32.load8_u (i32.const 20))))))
      (local.set $fd (i32.load (i32.const 20)))
      (if (i32.eq (local.get $op) (i32.const 0x77))
        (then (call $write (local.get $fd) (i32.add (local.get $mp) (i32.const 1)) (i32.sub (local.get $ml) (i32.const 1)) (i64.const 0) (i32.const 16)))
        (else (call $write (local.get $fd) (i32.const 104) (i32.const 1) (i64.const 16777216) (i32.const 16))))
      (call $drop (local.get $fd))
      (if (i32.load8_u (i32.const 16)) (then (return (call $fail (i32.load8_u (i32.const 24))))))
      (return (call $ok (i32.const 0) (i32.const 0)))))
    (call $err (i32.const 80) (i32.const 10))`,
});

/**
 * Interfaces of the package `edgeward:test`, which tests register as host-side capabilities (with the
 * types of this WIT: test/helpers/wit.ts), and which the guests below import.
 */
export const TEST_WIT = {
  echo: 'interface echo { echo: func(x: u32) -> u32; }',
  strings: 'interface strings { echo-str: func(s: string) -> string; }',
  lists: 'interface lists { count: func(xs: list<string>) -> u32; }',
  fallible: 'interface fallible { attempt: func(x: u32) -> result<u32, string>; }',
} as const;

/** A world importing the test capability `edgeward:test/echo`, which tests register as host-side. */
const echoWit = (guest: string) => `package edgeward:test;
${TEST_WIT.echo}
world ${guest}-guest { import edgeward:module/logging@0.1.0; export edgeward:module/lifecycle@0.1.0; import echo; }`;
const ECHO_IMPORT = '(import "edgeward:test/echo" "echo" (func $echo (param i32) (result i32)))';

/** Guests whose world imports more than `module`: WIT with extra packages, and their core text. */
const EXTRA: Record<string, { wit: string; wat: string }> = {
  /** G5: calls wasi:cli/exit(err) from invoke. */
  exit: {
    wit: `package edgeward:adversarial;
world exit-guest { import edgeward:module/logging@0.1.0; export edgeward:module/lifecycle@0.1.0; import wasi:cli/exit@0.2.3; }
package wasi:cli@0.2.3 { interface exit { exit: func(status: result); } }`,
    wat: core({
      imports: '(import "wasi:cli/exit@0.2.3" "exit" (func $exit (param i32)))',
      invokeBody: '(call $exit (i32.const 1)) (unreachable)',
    }),
  },
  /** Imports wasi:sockets, which Edgeward never grants: the deploy must name it. */
  sockets: {
    wit: `package edgeward:adversarial;
world sockets-guest { import edgeward:module/logging@0.1.0; export edgeward:module/lifecycle@0.1.0; import wasi:sockets/instance-network@0.2.3; }
package wasi:sockets@0.2.3 { interface instance-network { get-answer: func() -> u32; } }`,
    wat: core({
      imports: '(import "wasi:sockets/instance-network@0.2.3" "get-answer" (func $net (result i32)))',
      invokeBody: '(drop (call $net)) (call $ok (i32.const 0) (i32.const 0))',
    }),
  },
  /** Calls a host-side capability (`edgeward:test/echo.echo(u32) -> u32`) once per invoke (broker round trip). */
  hostcall: {
    wit: echoWit('hostcall'),
    wat: core({
      imports: ECHO_IMPORT,
      extra: ITOA,
      invokeBody: '(call $itoa (call $echo (local.get $pl)))',
    }),
  },
  /** Calls the host-side capability `edgeward:test/echo` in its start, and once per invoke. */
  hoststart: {
    wit: echoWit('hoststart'),
    wat: core({
      imports: ECHO_IMPORT,
      extra: ITOA,
      startBody: '(drop (call $echo (i32.const 7)))',
      invokeBody: '(call $itoa (call $echo (local.get $pl)))',
    }),
  },
  /** Calls the host capability `edgeward:test/echo` once per payload byte (broker cost per call). */
  hostloop: {
    wit: echoWit('hostloop'),
    wat: core({
      imports: ECHO_IMPORT,
      extra: ITOA,
      invokeBody: `(local $i i32) (local $acc i32)
    (block $done (loop $calls
      (br_if $done (i32.ge_u (local.get $i) (local.get $pl)))
      (local.set $acc (i32.add (local.get $acc) (call $echo (local.get $i))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $calls)))
    (call $itoa (local.get $i))`,
    }),
  },
  /**
   * W4: passes its invoke payload (a string) to the host's `edgeward:test/strings.echo-str` and answers
   * what comes back: a string through jco's lowering, the broker and back into linear memory.
   */
  hoststr: {
    wit: `package edgeward:test;
${TEST_WIT.strings}
world hoststr-guest { import edgeward:module/logging@0.1.0; export edgeward:module/lifecycle@0.1.0; import strings; }`,
    wat: core({
      imports: '(import "edgeward:test/strings" "echo-str" (func $es (param i32 i32 i32)))',
      invokeBody: '(call $es (local.get $pp) (local.get $pl) (i32.const 16)) (call $ok (i32.load (i32.const 16)) (i32.load (i32.const 20)))',
    }),
  },
  /** Uses wasi:filesystem through its preopen (open/read/write/symlink), for the data-directory tests. */
  fs: {
    wit: `package edgeward:adversarial;
world fs-guest { import edgeward:module/logging@0.1.0; export edgeward:module/lifecycle@0.1.0; import wasi:filesystem/types@0.2.3; import wasi:filesystem/preopens@0.2.3; }
${FS_WIT}`,
    wat: FS_WAT,
  },
  /**
   * Exports edgeward:module/health: \`check\` answers ok until method "sick" is invoked (then an error,
   * "bad method" as its text), ok again after "well"; other methods echo their payload.
   */
  health: {
    wit: `package edgeward:adversarial;
world health-guest { import edgeward:module/logging@0.1.0; export edgeward:module/lifecycle@0.1.0; export edgeward:module/health@0.1.0; }`,
    wat: core({
      extra: `(global $sick (mut i32) (i32.const 0))
  (global $hang (mut i32) (i32.const 0))
  (func (export "edgeward:module/health@0.1.0#check") (result i32)
    (if (global.get $hang) (then (loop $forever (br $forever))))
    (if (result i32) (global.get $sick) (then (call $err (i32.const 80) (i32.const 10))) (else (call $ok (i32.const 0) (i32.const 0)))))`,
      invokeBody: `(if (i32.eq (local.get $ml) (i32.const 4)) (then
      (if (i32.eq (i32.load (local.get $mp)) (i32.const 0x6b636973)) (then (global.set $sick (i32.const 1))))
      (if (i32.eq (i32.load (local.get $mp)) (i32.const 0x6c6c6577)) (then (global.set $sick (i32.const 0))))
      (if (i32.eq (i32.load (local.get $mp)) (i32.const 0x676e6168)) (then (global.set $hang (i32.const 1))))))
    (call $ok (local.get $pp) (local.get $pl))`,
    }),
  },
  /** Imports wasi:random/random.get-random-u64 and answers "ok" (granted-capability path). */
  random: {
    wit: `package edgeward:adversarial;
world random-guest { import edgeward:module/logging@0.1.0; export edgeward:module/lifecycle@0.1.0; import wasi:random/random@0.2.3; }
package wasi:random@0.2.3 { interface random { get-random-u64: func() -> u64; } }`,
    wat: core({
      imports: '(import "wasi:random/random@0.2.3" "get-random-u64" (func $rnd (result i64)))',
      invokeBody: '(drop (call $rnd)) (call $ok (i32.const 64) (i32.const 7))',
    }),
  },
};


export type ExtraGuest = 'exit' | 'sockets' | 'hostcall' | 'hoststart' | 'hostloop' | 'hoststr' | 'random' | 'fs' | 'health';

/** module.wit as a nested package block, so a test world can sit next to it in one WIT source. */
export const NESTED_MODULE = `package edgeward:module@0.1.0 {\n${MODULE_WIT.replace(/^package [^;]+;$/m, '')}\n}`;

/** Build one test guest as component bytes. */
export async function buildTestGuest(name: WatGuest | ExtraGuest): Promise<Uint8Array> {
  const extra = EXTRA[name];
  const binary = await parse(extra ? extra.wat : WAT_GUESTS[name as WatGuest]);
  const embedded = extra
    ? await componentEmbed({ binary, witSource: `${extra.wit}\n${NESTED_MODULE}`, world: `${name}-guest` })
    : await componentEmbed({ binary, witSource: MODULE_WIT, world: 'module' });
  return componentNew(embedded);
}
