/**
 * Guests that hand the host malformed lowered values (W3) and forged, dropped or foreign resource handles
 * (W2). Each is a tiny WAT component like those of components.ts; the Canonical ABI says every one of
 * these calls traps before the host function runs (CanonicalABI.md `load_string_from_range`,
 * `load_list_from_range`, `convert_i32_to_char`, `lift_flat_variant`, `lift_own`, `lift_borrow`).
 *
 * The host side of `edgeward:test/sink` is a capability the tests register (counting its calls).
 */
import { parse, componentEmbed, componentNew } from '@bytecodealliance/jco';
import { core, FS_IMPORTS, FS_WIT, ITOA, NESTED_MODULE } from './components.js';

/** A test interface with one function per kind of lifted value the sink guests exercise. */
export const SINK_WIT = `package edgeward:test;
interface sink {
  enum color { red, green, blue }
  record point { x: u32, y: s32 }
  variant shape { none, circle(u32), label(string) }
  take: func(s: string, b: list<u8>) -> u32;
  take-char: func(c: char) -> u32;
  take-enum: func(c: color) -> u32;
  take-rec: func(p: point, v: shape, o: option<string>, r: result<u32, string>) -> u32;
  take-list: func(l: list<u32>) -> u32;
  take-strs: func(l: list<string>) -> u32;
}`;
export const SINK = 'edgeward:test/sink';

const SINK_IMPORTS = `(import "${SINK}" "take" (func $take (param i32 i32 i32 i32) (result i32)))
  (import "${SINK}" "take-char" (func $takeChar (param i32) (result i32)))
  (import "${SINK}" "take-enum" (func $takeEnum (param i32) (result i32)))
  (import "${SINK}" "take-rec" (func $takeRec (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "${SINK}" "take-list" (func $takeList (param i32 i32) (result i32)))
  (import "${SINK}" "take-strs" (func $takeStrs (param i32 i32) (result i32)))`;

/** Bytes the malformed cases point at (addresses 512..; "started" is at 64, 7 bytes). */
const SINK_DATA = `(data (i32.const 512) "\\ff\\fe")
  (data (i32.const 520) "\\c0\\80")
  (data (i32.const 524) "\\ed\\a0\\80")
  (data (i32.const 528) "\\e2\\82")
  (data (i32.const 544) "\\00\\02\\00\\00\\02\\00\\00\\00")
  (data (i32.const 560) "\\40\\00\\00\\00\\07\\00\\00\\00")`;

/** Dispatch on the method's first byte: each case is WAT yielding the host's i32 answer. */
function dispatch(cases: Record<string, string>): string {
  return Object.entries(cases)
    .map(([m, body]) => `(if (i32.eq (local.get $op) (i32.const ${m.charCodeAt(0)})) (then (return (call $itoa ${body}))))`)
    .join('\n    ');
}

/** A valid `take-rec` argument list with `over` replacing some of its 11 flat values. */
function rec(over: Record<number, number> = {}): string {
  const args = [1, 2, 1, 5, 0, 1, 64, 7, 0, 9, 0];
  for (const [i, v] of Object.entries(over)) args[Number(i)] = v;
  return `(call $takeRec ${args.map((a) => `(i32.const ${a | 0})`).join(' ')})`;
}

/**
 * W3: every case lowers one value the Canonical ABI traps on, by the method's first letter. The `case`
 * names are what the tests print. `V` is the valid control (the host is called).
 */
export const MALFORMED_CASES: Record<string, { what: string; wat: string }> = {
  a: { what: 'invalid UTF-8 (ff fe) to logging.log', wat: '(block (result i32) (call $log (i32.const 2) (i32.const 512) (i32.const 2)) (i32.const 0))' },
  b: { what: 'logging level enum discriminant 7', wat: '(block (result i32) (call $log (i32.const 7) (i32.const 64) (i32.const 7)) (i32.const 0))' },
  c: { what: 'invalid UTF-8 (ff fe) in a string', wat: '(call $take (i32.const 512) (i32.const 2) (i32.const 0) (i32.const 0))' },
  d: { what: 'overlong UTF-8 (c0 80)', wat: '(call $take (i32.const 520) (i32.const 2) (i32.const 0) (i32.const 0))' },
  e: { what: 'UTF-8-encoded surrogate (ed a0 80)', wat: '(call $take (i32.const 524) (i32.const 3) (i32.const 0) (i32.const 0))' },
  f: { what: 'truncated UTF-8 (e2 82)', wat: '(call $take (i32.const 528) (i32.const 2) (i32.const 0) (i32.const 0))' },
  g: { what: 'string pointer+length past the end of memory', wat: '(call $take (i32.const 65530) (i32.const 16) (i32.const 0) (i32.const 0))' },
  h: { what: 'string pointer 0xfffffff0', wat: '(call $take (i32.const 0xfffffff0) (i32.const 4) (i32.const 0) (i32.const 0))' },
  i: { what: 'list<u8> pointer+length past the end of memory', wat: '(call $take (i32.const 64) (i32.const 7) (i32.const 65500) (i32.const 100))' },
  j: { what: 'list<u8> length 0xffffffff', wat: '(call $take (i32.const 64) (i32.const 7) (i32.const 16) (i32.const 0xffffffff))' },
  k: { what: 'empty list<u8> at a pointer past the end of memory', wat: '(call $take (i32.const 64) (i32.const 7) (i32.const 0x10008) (i32.const 0))' },
  l: { what: 'misaligned list<u32> pointer', wat: '(call $takeList (i32.const 514) (i32.const 2))' },
  m: { what: 'char 0xd800 (surrogate)', wat: '(call $takeChar (i32.const 0xd800))' },
  n: { what: 'char 0x110000', wat: '(call $takeChar (i32.const 0x110000))' },
  o: { what: 'char 0x80000000', wat: '(call $takeChar (i32.const 0x80000000))' },
  p: { what: 'enum discriminant 3 of 3 cases', wat: '(call $takeEnum (i32.const 3))' },
  q: { what: 'variant discriminant 3 of 3 cases', wat: rec({ 2: 3 }) },
  r: { what: 'option discriminant 2', wat: rec({ 5: 2 }) },
  s: { what: 'result discriminant 2', wat: rec({ 8: 2 }) },
  t: { what: 'option<string> with invalid UTF-8', wat: rec({ 6: 512, 7: 2 }) },
  u: { what: 'list<string> length 0xffffffff', wat: '(call $takeStrs (i32.const 16) (i32.const 0xffffffff))' },
  v: { what: 'list<string> whose element is invalid UTF-8', wat: '(call $takeStrs (i32.const 544) (i32.const 1))' },
  w: { what: 'list<string> whose elements run past the end of memory', wat: '(call $takeStrs (i32.const 65532) (i32.const 1))' },
  x: { what: 'list<u32> at pointer 0xfffffff0', wat: '(call $takeList (i32.const 0xfffffff0) (i32.const 2))' },
};

/** The valid control cases: the host is called (so a test of the counter can fail). */
const VALID_CASES: Record<string, string> = {
  V: '(call $take (i32.const 64) (i32.const 7) (i32.const 64) (i32.const 7))',
  W: rec(),
  X: '(call $takeStrs (i32.const 560) (i32.const 1))',
  Y: '(call $takeChar (i32.const 0x1f600))',
};

/** The W3 guest: method `<letter>` makes one malformed call (MALFORMED_CASES), `U` answers invalid UTF-8. */
const MALFORMED_WAT = core({
  imports: SINK_IMPORTS,
  extra: `${ITOA}\n  ${SINK_DATA}`,
  invokeBody: `(local $op i32)
    (local.set $op (i32.load8_u (local.get $mp)))
    ;; U: the export's own result is not valid UTF-8 (lifted by the host from the guest's answer)
    (if (i32.eq (local.get $op) (i32.const 85)) (then (return (call $ok (i32.const 512) (i32.const 2)))))
    ${dispatch({ ...Object.fromEntries(Object.entries(MALFORMED_CASES).map(([k, v]) => [k, v.wat])), ...VALID_CASES })}
    (call $err (i32.const 80) (i32.const 10))`,
});

/**
 * The property guest: its invoke payload is a JSON string of hex digits; the bytes are copied to 0x8000
 * and the first ones are read as the flat arguments of one `sink` call, chosen by the method:
 * `t` take(s, b) (4 × i32), `c` take-char (1), `e` take-enum (1), `r` take-rec (11), `l` take-strs (2).
 * Pointers in the arguments may point into the copied bytes (0x8000 + offset) or anywhere else.
 */
export const LIFTER_DATA = 0x8000;
const LIFTER_WAT = core({
  imports: SINK_IMPORTS,
  extra: `${ITOA}
  (func $nib (param $c i32) (result i32)
    (if (result i32) (i32.le_u (local.get $c) (i32.const 57))
      (then (i32.sub (local.get $c) (i32.const 48)))
      (else (i32.sub (local.get $c) (i32.const 87)))))
  (func $arg (param $i i32) (result i32) (i32.load (i32.add (i32.const ${LIFTER_DATA}) (i32.shl (local.get $i) (i32.const 2)))))`,
  invokeBody: `(local $op i32) (local $i i32) (local $n i32)
    (local.set $op (i32.load8_u (local.get $mp)))
    ;; the payload is "<hex>": skip the quotes, decode pairs of lower-case hex digits to 0x8000..
    (local.set $n (i32.shr_u (i32.sub (local.get $pl) (i32.const 2)) (i32.const 1)))
    (block $done (loop $bytes
      (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
      (i32.store8 (i32.add (i32.const ${LIFTER_DATA}) (local.get $i))
        (i32.or
          (i32.shl (call $nib (i32.load8_u (i32.add (local.get $pp) (i32.add (i32.const 1) (i32.shl (local.get $i) (i32.const 1)))))) (i32.const 4))
          (call $nib (i32.load8_u (i32.add (local.get $pp) (i32.add (i32.const 2) (i32.shl (local.get $i) (i32.const 1))))))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $bytes)))
    ${dispatch({
      t: '(call $take (call $arg (i32.const 0)) (call $arg (i32.const 1)) (call $arg (i32.const 2)) (call $arg (i32.const 3)))',
      c: '(call $takeChar (call $arg (i32.const 0)))',
      e: '(call $takeEnum (call $arg (i32.const 0)))',
      r: `(call $takeRec ${Array.from({ length: 11 }, (_, i) => `(call $arg (i32.const ${i}))`).join(' ')})`,
      l: '(call $takeStrs (call $arg (i32.const 0)) (call $arg (i32.const 1)))',
    })}
    (call $err (i32.const 80) (i32.const 10))`,
});

/**
 * W2: the handles guest. Payload: a JSON number N (a handle index) where a case needs one.
 * `o` opens "f.txt" for writing, writes "mine", keeps the handle open and answers its index;
 * `r` reads up to 64 bytes at 0 from handle N (answers the bytes); `w` writes "evil" through handle N;
 * `d` drops handle N; `f` opens, drops, then reads the dropped handle; `D` opens and drops twice;
 * `W` opens "victim.txt", drops it, then writes through the dropped handle.
 */
const HANDLES_WAT = core({
  imports: FS_IMPORTS,
  extra: `${ITOA}
  (data (i32.const 512) "f.txt")
  (data (i32.const 520) "victim.txt")
  (data (i32.const 536) "mine")
  (data (i32.const 544) "evil")
  (global $dir (mut i32) (i32.const -1))
  (func $preopen (result i32)
    (if (i32.eq (global.get $dir) (i32.const -1)) (then
      (call $dirs (i32.const 16))
      (global.set $dir (i32.load (i32.load (i32.const 16))))))
    (global.get $dir))
  ;; open-at(preopen, path, create|truncate, read|write) → handle (unreachable on an error)
  (func $openw (param $p i32) (param $l i32) (result i32)
    (call $open (call $preopen) (i32.const 0) (local.get $p) (local.get $l) (i32.const 9) (i32.const 3) (i32.const 16))
    (if (i32.load8_u (i32.const 16)) (then (unreachable)))
    (i32.load (i32.const 20)))
  ;; the decimal number in the payload
  (func $num (param $pp i32) (param $pl i32) (result i32)
    (local $i i32) (local $n i32) (local $c i32)
    (block $done (loop $digits
      (br_if $done (i32.ge_u (local.get $i) (local.get $pl)))
      (local.set $c (i32.load8_u (i32.add (local.get $pp) (local.get $i))))
      (br_if $done (i32.or (i32.lt_u (local.get $c) (i32.const 48)) (i32.gt_u (local.get $c) (i32.const 57))))
      (local.set $n (i32.add (i32.mul (local.get $n) (i32.const 10)) (i32.sub (local.get $c) (i32.const 48))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $digits)))
    (local.get $n))`,
  invokeBody: `(local $op i32) (local $fd i32) (local $h i32)
    (local.set $op (i32.load8_u (local.get $mp)))
    (local.set $h (call $num (local.get $pp) (local.get $pl)))
    (if (i32.eq (local.get $op) (i32.const 111)) (then ;; o
      (local.set $fd (call $openw (i32.const 512) (i32.const 5)))
      (call $write (local.get $fd) (i32.const 536) (i32.const 4) (i64.const 0) (i32.const 16))
      (return (call $itoa (local.get $fd)))))
    (if (i32.eq (local.get $op) (i32.const 114)) (then ;; r
      (call $read (local.get $h) (i64.const 64) (i64.const 0) (i32.const 16))
      (if (i32.load8_u (i32.const 16)) (then (return (call $err (i32.const 80) (i32.const 10)))))
      (return (call $ok (i32.load (i32.const 20)) (i32.load (i32.const 24))))))
    (if (i32.eq (local.get $op) (i32.const 119)) (then ;; w
      (call $write (local.get $h) (i32.const 544) (i32.const 4) (i64.const 0) (i32.const 16))
      (return (call $itoa (i32.load8_u (i32.const 16))))))
    (if (i32.eq (local.get $op) (i32.const 100)) (then ;; d
      (call $drop (local.get $h))
      (return (call $ok (i32.const 0) (i32.const 0)))))
    (if (i32.eq (local.get $op) (i32.const 102)) (then ;; f
      (local.set $fd (call $openw (i32.const 512) (i32.const 5)))
      (call $drop (local.get $fd))
      (call $read (local.get $fd) (i64.const 64) (i64.const 0) (i32.const 16))
      (return (call $ok (i32.const 0) (i32.const 0)))))
    (if (i32.eq (local.get $op) (i32.const 68)) (then ;; D
      (local.set $fd (call $openw (i32.const 512) (i32.const 5)))
      (call $drop (local.get $fd))
      (call $drop (local.get $fd))
      (return (call $ok (i32.const 0) (i32.const 0)))))
    (if (i32.eq (local.get $op) (i32.const 87)) (then ;; W
      (local.set $fd (call $openw (i32.const 520) (i32.const 10)))
      (call $drop (local.get $fd))
      (call $write (local.get $fd) (i32.const 544) (i32.const 4) (i64.const 0) (i32.const 16))
      (return (call $ok (i32.const 0) (i32.const 0)))))
    (call $err (i32.const 80) (i32.const 10))`,
});

/**
 * The same sink, lowered by a guest whose canonical options say `string-encoding=utf16`: `a` a lone
 * surrogate (d800), `b` a string at an odd address, `c` a string running past the end of memory,
 * `V` "hi" (valid, answers "1"). Built with `latin1+utf16` it is refused at deploy (jco cannot transpile it).
 */
export const UTF16_CASES: Record<string, string> = {
  a: 'lone surrogate d800 in a UTF-16 string',
  b: 'UTF-16 string at an odd address',
  c: 'UTF-16 string past the end of memory',
};
const UTF16_WAT = core({
  imports: SINK_IMPORTS,
  extra: `${ITOA}
  (data (i32.const 600) "\\00\\d8")
  (data (i32.const 620) "h\\00i\\00")
  (data (i32.const 640) "1\\00")`,
  invokeBody: `(local $op i32)
    (local.set $op (i32.load8_u (local.get $mp)))
    ;; V answers "1" (UTF-16, aligned) after a valid call
    (if (i32.eq (local.get $op) (i32.const 86)) (then
      (drop (call $take (i32.const 620) (i32.const 2) (i32.const 620) (i32.const 4)))
      (return (call $ok (i32.const 640) (i32.const 1)))))
    ${dispatch({
      a: '(call $take (i32.const 600) (i32.const 1) (i32.const 0) (i32.const 0))',
      b: '(call $take (i32.const 621) (i32.const 1) (i32.const 0) (i32.const 0))',
      c: '(call $take (i32.const 65534) (i32.const 2) (i32.const 0) (i32.const 0))',
    })}
    (call $err (i32.const 80) (i32.const 10))`,
});

const GUESTS = {
  malformed: { wit: `${SINK_WIT}\nworld malformed-guest { import edgeward:module/logging@0.1.0; export edgeward:module/lifecycle@0.1.0; import sink; }`, wat: MALFORMED_WAT },
  lifter: { wit: `${SINK_WIT}\nworld lifter-guest { import edgeward:module/logging@0.1.0; export edgeward:module/lifecycle@0.1.0; import sink; }`, wat: LIFTER_WAT },
  utf16: { wit: `${SINK_WIT}\nworld utf16-guest { import edgeward:module/logging@0.1.0; export edgeward:module/lifecycle@0.1.0; import sink; }`, wat: UTF16_WAT },
  handles: {
    wit: `package edgeward:adversarial;
world handles-guest { import edgeward:module/logging@0.1.0; export edgeward:module/lifecycle@0.1.0; import wasi:filesystem/types@0.2.3; import wasi:filesystem/preopens@0.2.3; }
${FS_WIT}`,
    wat: HANDLES_WAT,
  },
};

export type MalformedGuest = keyof typeof GUESTS;

/** Build one of these guests as component bytes, its strings lowered in `encoding` (default utf8). */
export async function buildMalformedGuest(name: MalformedGuest, encoding?: 'utf16' | 'compact-utf16'): Promise<Uint8Array> {
  const g = GUESTS[name];
  const binary = await parse(g.wat);
  return componentNew(await componentEmbed({ binary, witSource: `${g.wit}\n${NESTED_MODULE}`, world: `${name}-guest`, ...(encoding ? { stringEncoding: encoding } : {}) }));
}
