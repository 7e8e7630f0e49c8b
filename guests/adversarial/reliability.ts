/**
 * WAT guests for the reliability scenarios (../shared/reference/reliability-scenarios.md) that need more
 * than components.ts has: handle floods (G3), a guest holding HSM sessions when it traps or is killed (G6),
 * and values near the memory cap handed to `edgeward:hsm/keys` (G4). Built like components.ts (WAT →
 * core module → component, ~1 KB each).
 */
import { parse, componentEmbed, componentNew } from '@bytecodealliance/jco';
import { core, ITOA, NESTED_MODULE, TEST_WIT } from './components.js';

const FS_TYPES = 'wasi:filesystem/types@0.2.3';
const HSM_KEYS = 'edgeward:hsm/keys@0.1.0';

/** Answers `n * 100 + code`: a count and a small code (an error index, 99 for none) in one JSON number. */
const ANSWER_COUNT = `
  (func $count (param $n i32) (param $code i32) (result i32)
    (call $itoa (i32.add (i32.mul (local.get $n) (i32.const 100)) (local.get $code))))`;

/**
 * G3, wasi:filesystem: opens its preopen again ("." as a directory, read-only) in a loop, keeping every
 * descriptor, until open-at fails or 1,000,000 are open. Answers `opened * 100 + error-code index` (99:
 * never failed). Method `r` then drops every descriptor it got and opens one more, which must work again
 * (the count is of live handles): it answers the same number, or 98 as the code if the re-open failed.
 */
const fsflood = {
  wit: `package edgeward:reliability;
world fsflood-guest { import edgeward:module/logging@0.1.0; export edgeward:module/lifecycle@0.1.0; import wasi:filesystem/types@0.2.3; import wasi:filesystem/preopens@0.2.3; }
package wasi:filesystem@0.2.3 {
  interface types {
    flags descriptor-flags { read, write, file-integrity-sync, data-integrity-sync, requested-write-sync, mutate-directory }
    flags path-flags { symlink-follow }
    flags open-flags { create, directory, exclusive, truncate }
    enum error-code { access, would-block, already, bad-descriptor, busy, deadlock, quota, exist, file-too-large, illegal-byte-sequence, in-progress, interrupted, invalid, io, is-directory, loop, too-many-links, message-size, name-too-long, no-device, no-entry, no-lock, insufficient-memory, insufficient-space, not-directory, not-empty, not-recoverable, unsupported, no-tty, no-such-device, overflow, not-permitted, pipe, read-only, invalid-seek, text-file-busy, cross-device }
    resource descriptor {
      open-at: func(path-flags: path-flags, path: string, open-flags: open-flags, %flags: descriptor-flags) -> result<descriptor, error-code>;
    }
  }
  interface preopens { use types.{descriptor}; get-directories: func() -> list<tuple<descriptor, string>>; }
}`,
  wat: core({
    imports: `(import "wasi:filesystem/preopens@0.2.3" "get-directories" (func $dirs (param i32)))
  (import "${FS_TYPES}" "[method]descriptor.open-at" (func $open (param i32 i32 i32 i32 i32 i32 i32)))
  (import "${FS_TYPES}" "[resource-drop]descriptor" (func $drop (param i32)))`,
    extra: `${ITOA}${ANSWER_COUNT}
  (data (i32.const 112) ".")
  ;; open-at(dir, ".", directory, read): 0 and the handle at 20, or 1 and the error index at 20.
  (func $openself (param $dir i32) (result i32)
    (call $open (local.get $dir) (i32.const 0) (i32.const 112) (i32.const 1) (i32.const 2) (i32.const 1) (i32.const 16))
    (i32.load8_u (i32.const 16)))`,
    invokeBody: `(local $dir i32) (local $n i32) (local $i i32) (local $code i32)
    (call $dirs (i32.const 16))
    (if (i32.eqz (i32.load (i32.const 20))) (then (return (call $count (i32.const 0) (i32.const 99)))))
    (local.set $dir (i32.load (i32.load (i32.const 16))))
    (local.set $code (i32.const 99))
    ;; Handles are kept at 8192.. (the first 12,000 of them) so that method r can drop them.
    (block $done (loop $more
      (if (call $openself (local.get $dir)) (then (local.set $code (i32.load8_u (i32.const 20))) (br $done)))
      (if (i32.lt_u (local.get $n) (i32.const 12000)) (then
        (i32.store (i32.add (i32.const 8192) (i32.shl (local.get $n) (i32.const 2))) (i32.load (i32.const 20)))))
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (br_if $more (i32.lt_u (local.get $n) (i32.const 1000000)))))
    (if (i32.and (i32.eq (i32.load8_u (local.get $mp)) (i32.const 0x72)) (i32.le_u (local.get $n) (i32.const 12000))) (then
      (block $dropped (loop $drops
        (br_if $dropped (i32.ge_u (local.get $i) (local.get $n)))
        (call $drop (i32.load (i32.add (i32.const 8192) (i32.shl (local.get $i) (i32.const 2)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $drops)))
      (if (call $openself (local.get $dir)) (then (local.set $code (i32.const 98))) (else (call $drop (i32.load (i32.const 20)))))))
    (call $count (local.get $n) (local.get $code))`,
  }),
};

/**
 * G3, wasi:http: creates `fields` resources in a loop, keeping them, 1,000,000 at most (the constructor
 * has no error case: a cap can only trap). Answers how many it made.
 */
const httpflood = {
  wit: `package edgeward:reliability;
world httpflood-guest { import edgeward:module/logging@0.1.0; export edgeward:module/lifecycle@0.1.0; import wasi:http/types@0.2.3; }
package wasi:http@0.2.3 { interface types { resource fields { constructor(); } } }`,
  wat: core({
    imports: '(import "wasi:http/types@0.2.3" "[constructor]fields" (func $fields (result i32)))',
    extra: ITOA,
    invokeBody: `(local $n i32)
    (loop $more
      (drop (call $fields))
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (br_if $more (i32.lt_u (local.get $n) (i32.const 1000000))))
    (call $itoa (local.get $n))`,
  }),
};

/**
 * G4 and G6 over `edgeward:hsm/keys`. Method (first letter):
 * - `s`: create-key-pair("k", ec-p256), then sign "started" with ecdsa-sha256 as many times as the payload
 *   has bytes; answers `signatures * 100 + 99`, or `done * 100 + key-error tag index` at the first error;
 * - `t`: create, sign once, then trap (`unreachable`) while the key service is in use;
 * - `l`: create, then sign until the deadline kills the instance;
 * - `b`: grow memory to the ceiling and hand everything above the first page to `sign` as one list<u8>;
 * - `n`: the same bytes as the key id (a string) of `create-key-pair`.
 * `b` and `n` answer `0 * 100 + tag` if the call came back at all (it must not reach the host).
 */
const hsmguest = {
  wit: `package edgeward:reliability;
world hsmguest-guest { import edgeward:module/logging@0.1.0; export edgeward:module/lifecycle@0.1.0; import edgeward:hsm/keys@0.1.0; }
package edgeward:hsm@0.1.0 {
  interface keys {
    type key-handle = string;
    variant key-error { invalid-handle, access-denied, not-found, already-exists, unsupported(string), invalid-argument(string), limit-exceeded(string), decrypt-failed, backend-unavailable, internal }
    enum key-pair-type { ec-p256, ec-p384, rsa2048, rsa3072 }
    enum sign-algorithm { ecdsa-sha256, ecdsa-sha384, rsa-pss-sha256, rsa-pkcs1-sha256, hmac-sha256 }
    create-key-pair: func(id: string, kind: key-pair-type) -> result<key-handle, key-error>;
    sign: func(key: key-handle, algorithm: sign-algorithm, message: list<u8>) -> result<list<u8>, key-error>;
  }
}`,
  wat: core({
    imports: `(import "${HSM_KEYS}" "create-key-pair" (func $create (param i32 i32 i32 i32)))
  (import "${HSM_KEYS}" "sign" (func $sign (param i32 i32 i32 i32 i32 i32)))`,
    extra: `${ITOA}${ANSWER_COUNT}
  (data (i32.const 112) "k")
  (global $hlen (mut i32) (i32.const 0))
  ;; create-key-pair("k", ec-p256); the handle is copied to 1024.. (out of the bump allocator's way).
  (func $key (result i32)
    (call $create (i32.const 112) (i32.const 1) (i32.const 0) (i32.const 16))
    (if (i32.load8_u (i32.const 16)) (then (return (i32.load8_u (i32.const 20)))))
    (global.set $hlen (i32.load (i32.const 24)))
    (memory.copy (i32.const 1024) (i32.load (i32.const 20)) (global.get $hlen))
    (i32.const 99))
  ;; sign("started") with the handle: 99, or the key-error tag.
  (func $sign1 (result i32)
    (call $sign (i32.const 1024) (global.get $hlen) (i32.const 0) (i32.const 64) (i32.const 7) (i32.const 16))
    (if (result i32) (i32.load8_u (i32.const 16)) (then (i32.load8_u (i32.const 20))) (else (i32.const 99))))
  ;; Grow to the ceiling; answers the bytes above the first page.
  (func $fill (result i32)
    (loop $grow (br_if $grow (i32.ne (memory.grow (i32.const 1)) (i32.const -1))))
    (i32.mul (i32.sub (memory.size) (i32.const 1)) (i32.const 65536)))`,
    invokeBody: `(local $op i32) (local $n i32) (local $code i32) (local $len i32)
    (local.set $op (i32.load8_u (local.get $mp)))
    (if (i32.eq (local.get $op) (i32.const 0x62)) (then
      (local.set $len (call $fill))
      (call $sign (i32.const 112) (i32.const 1) (i32.const 0) (i32.const 65536) (local.get $len) (i32.const 16))
      (return (call $count (i32.const 0) (i32.load8_u (i32.const 20))))))
    (if (i32.eq (local.get $op) (i32.const 0x6e)) (then
      (local.set $len (call $fill))
      (call $create (i32.const 65536) (local.get $len) (i32.const 0) (i32.const 16))
      (return (call $count (i32.const 0) (i32.load8_u (i32.const 20))))))
    (local.set $code (call $key))
    (if (i32.ne (local.get $code) (i32.const 99)) (then (return (call $count (i32.const 0) (local.get $code)))))
    (if (i32.eq (local.get $op) (i32.const 0x74)) (then (drop (call $sign1)) (unreachable)))
    (if (i32.eq (local.get $op) (i32.const 0x6c)) (then (loop $forever (drop (call $sign1)) (br $forever))))
    (block $done (loop $more
      (br_if $done (i32.ge_u (local.get $n) (local.get $pl)))
      (local.set $code (call $sign1))
      (br_if $done (i32.ne (local.get $code) (i32.const 99)))
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (br $more)))
    (call $count (local.get $n) (local.get $code))`,
  }),
};

/**
 * G2: declares a maximum of 65536 pages (4 GiB), asks for all of it at once, then grows one page at a time
 * filling every new page (so the pages are really committed), until refused. Answers
 * `pages * 100 + code`, code 1 if the 4 GiB grow succeeded, else 0.
 */
const touchbomb = {
  wit: `package edgeward:reliability;
world touchbomb-guest { import edgeward:module/logging@0.1.0; export edgeward:module/lifecycle@0.1.0; }`,
  wat: core({
    memory: '(memory (export "memory") 1 65536)',
    extra: `${ITOA}${ANSWER_COUNT}`,
    invokeBody: `(local $at i32) (local $big i32)
    (local.set $big (i32.ne (memory.grow (i32.const 65535)) (i32.const -1)))
    (block $full (loop $grow
      (local.set $at (memory.grow (i32.const 1)))
      (br_if $full (i32.eq (local.get $at) (i32.const -1)))
      (memory.fill (i32.mul (local.get $at) (i32.const 65536)) (i32.const 1) (i32.const 65536))
      (br $grow)))
    (call $count (memory.size) (local.get $big))`,
  }),
};

/**
 * G4, many elements: hands the host's `edgeward:test/lists.count` a list of 100,000 strings, all empty
 * (the zeroed pages it grew: every element is pointer 0, length 0), and answers what the host counted.
 */
const listflood = {
  wit: `package edgeward:test;
${TEST_WIT.lists}
world listflood-guest { import edgeward:module/logging@0.1.0; export edgeward:module/lifecycle@0.1.0; import lists; }`,
  wat: core({
    imports: '(import "edgeward:test/lists" "count" (func $cnt (param i32 i32) (result i32)))',
    extra: ITOA,
    invokeBody: '(drop (memory.grow (i32.const 13))) (call $itoa (call $cnt (i32.const 65536) (i32.const 100000)))',
  }),
};

const GUESTS = { fsflood, httpflood, hsmguest, touchbomb, listflood };

export type ReliabilityGuest = keyof typeof GUESTS;

export function isReliabilityGuest(name: string): name is ReliabilityGuest {
  return Object.hasOwn(GUESTS, name);
}

/** Build one reliability guest as component bytes. */
export async function buildReliabilityGuest(name: ReliabilityGuest): Promise<Uint8Array> {
  const g = GUESTS[name];
  const embedded = await componentEmbed({ binary: await parse(g.wat), witSource: `${g.wit}\n${NESTED_MODULE}`, world: `${name}-guest` });
  return componentNew(embedded);
}
