// Defence in depth at every capability entry: before a host function runs, the JS values it received are
// checked against the host's WIT (the interface types of host/boundary/types.ts), as jco represents them:
// bool → boolean; integers → number in range (s64/u64 → bigint in range); char → one Unicode scalar value;
// string → well-formed string; list → Array or the matching typed array; record/flags → object; tuple →
// Array; enum → one of its cases; variant/result → {tag, val}; option → undefined or the value; own/borrow →
// a resource object. Plain ESM with no imports, so the sandbox worker (worker.mjs) and the daemon's broker
// (sandbox/broker.ts) share it. One validator per interface, built once from the description: no hand-written
// checks per function.
/** @import { FuncType, InstanceType, ValType } from './types.js' */

/** A check of one call's arguments: throws BoundaryValueError, or returns. @typedef {(args: unknown[]) => void} ArgsChecker */

/** @type {Record<'s8' | 'u8' | 's16' | 'u16' | 's32' | 'u32', [number, number]>} */
const INT_RANGE = {
  s8: [-128, 127], u8: [0, 255], s16: [-32768, 32767], u16: [0, 65535], s32: [-2147483648, 2147483647], u32: [0, 4294967295],
};
/** @type {Record<'s64' | 'u64', [bigint, bigint]>} */
const BIG_RANGE = { s64: [-(2n ** 63n), 2n ** 63n - 1n], u64: [0n, 2n ** 64n - 1n] };
/** @type {Record<string, (new (length: number) => ArrayLike<unknown>) | undefined>} */
const TYPED_ARRAY = {
  u8: Uint8Array, s8: Int8Array, u16: Uint16Array, s16: Int16Array, u32: Uint32Array, s32: Int32Array,
  u64: BigUint64Array, s64: BigInt64Array, f32: Float32Array, f64: Float64Array,
};

/** A value the guest cannot have meant: the call traps, the host function is not called. */
export class BoundaryValueError extends TypeError {
  /** @param {string} message */
  constructor(message) {
    super(message);
    this.name = 'BoundaryValueError';
  }
}

/** kebab-case → lowerCamelCase, as jco names functions, methods, record fields and flags. @param {string} name */
export function camel(name) {
  return name.split('-').map((w, i) => (i === 0 ? w : w.charAt(0).toUpperCase() + w.slice(1))).join('');
}
/** kebab-case → UpperCamelCase, as jco names resource classes. @param {string} name */
export function pascal(name) {
  const c = camel(name);
  return c.charAt(0).toUpperCase() + c.slice(1);
}

/** A short description of an untrusted value, for the trap's message. @param {unknown} v */
function show(v) {
  if (typeof v === 'string') return `string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`;
  if (typeof v === 'bigint') return `bigint ${v}`;
  if (v === null) return 'null';
  if (Array.isArray(v)) return `array of ${v.length}`;
  if (ArrayBuffer.isView(v)) return `${v.constructor.name} of ${/** @type {ArrayLike<unknown>} */ (/** @type {unknown} */ (v)).length}`;
  if (typeof v === 'object') return 'object';
  return `${typeof v} ${String(v)}`;
}

/** @param {ValType} t */
function typeName(t) {
  if (t.name) return `${t.k} ${t.name}`;
  return t.k;
}

/** Throws the trap for a value that is not of the type checked. @typedef {() => never} Bad */
/** @template {ValType['k']} K @typedef {Extract<ValType, { k: K }>} Of */

/**
 * Throws BoundaryValueError when `v` is not a JS value of WIT type `t`; `where` names the place.
 * @param {ValType} t @param {any} v an untrusted value, narrowed by the checks below @param {string} where
 * @returns {void}
 */
export function check(t, v, where) {
  /** @type {Bad} */
  const bad = () => { throw new BoundaryValueError(`${where}: expected ${typeName(t)}, got ${show(v)}`); };
  switch (t.k) {
    case 'list': return checkList(t, v, where, bad);
    case 'tuple':
      if (!Array.isArray(v) || v.length !== t.of.length) bad();
      for (const [i, ti] of t.of.entries()) check(ti, v[i], `${where}[${i}]`);
      return;
    case 'record':
      if (!v || typeof v !== 'object' || Array.isArray(v)) bad();
      for (const f of t.fields) check(f.type, v[camel(f.name)], `${where}.${camel(f.name)}`);
      return;
    case 'flags': return checkFlags(t, v, where, bad);
    case 'enum': if (typeof v !== 'string' || !t.names.includes(v)) bad(); return;
    case 'variant': return checkVariant(t, v, where, bad);
    case 'option': return checkOption(t, v, where, bad);
    case 'result': return checkResult(t, v, where, bad);
    case 'own': case 'borrow':
      if (!v || typeof v !== 'object') throw new BoundaryValueError(`${where}: expected ${t.k}<${t.resource.name ?? t.resource.origin}>, got ${show(v)}`);
      return;
    default:
      if (!checkScalar(t.k, v, bad)) throw new BoundaryValueError(`${where}: values of type ${t.k} cannot cross this boundary`);
  }
}

/**
 * Checks `v` against a scalar type (bool, the integers, floats, char, string); false when `k` is none.
 * @param {string} k @param {any} v @param {Bad} bad @returns {boolean}
 */
function checkScalar(k, v, bad) {
  switch (k) {
    case 'bool': if (typeof v !== 'boolean') bad(); return true;
    case 's8': case 'u8': case 's16': case 'u16': case 's32': case 'u32': {
      const [lo, hi] = INT_RANGE[k];
      if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi) bad();
      return true;
    }
    case 's64': case 'u64': {
      const [lo, hi] = BIG_RANGE[k];
      if (typeof v !== 'bigint' || v < lo || v > hi) bad();
      return true;
    }
    case 'f32': case 'f64': if (typeof v !== 'number') bad(); return true;
    case 'char': {
      if (typeof v !== 'string') bad();
      const cp = v.codePointAt(0);
      if (cp === undefined || String.fromCodePoint(cp).length !== v.length || (cp >= 0xd800 && cp <= 0xdfff)) bad();
      return true;
    }
    case 'string': if (typeof v !== 'string' || !v.isWellFormed()) bad(); return true;
    default: return false;
  }
}

/** An Array, or the typed array jco uses for a list of numbers. @param {Of<'list'>} t @param {any} v @param {string} where @param {Bad} bad */
function checkList(t, v, where, bad) {
  const Typed = TYPED_ARRAY[t.of.k];
  if (Typed && v instanceof Typed) { if (t.len !== undefined && v.length !== t.len) bad(); return; }
  if (!Array.isArray(v) || (t.len !== undefined && v.length !== t.len)) bad();
  for (let i = 0; i < v.length; i++) check(t.of, v[i], `${where}[${i}]`);
}

/** An object of booleans by camelCase name; a flag left out is false. @param {Of<'flags'>} t @param {any} v @param {string} where @param {Bad} bad */
function checkFlags(t, v, where, bad) {
  if (!v || typeof v !== 'object' || Array.isArray(v)) bad();
  for (const n of t.names) {
    const f = v[camel(n)];
    if (f !== undefined && typeof f !== 'boolean') throw new BoundaryValueError(`${where}.${camel(n)}: expected a flag (boolean), got ${show(f)}`);
  }
}

/** `{ tag, val }` with one of its cases, and a payload exactly when the case has one. @param {Of<'variant'>} t @param {any} v @param {string} where @param {Bad} bad */
function checkVariant(t, v, where, bad) {
  if (!v || typeof v !== 'object') bad();
  const c = t.cases.find((x) => x.name === v.tag);
  if (!c) bad();
  if (c.type) check(c.type, v.val, `${where}(${c.name})`);
  else if (v.val !== undefined) throw new BoundaryValueError(`${where}(${c.name}): a case without a payload got ${show(v.val)}`);
}

/** undefined (or null), or the value; an option of an option is `{ tag: 'some', val }`. @param {Of<'option'>} t @param {any} v @param {string} where @param {Bad} bad */
function checkOption(t, v, where, bad) {
  if (v === undefined || v === null) return;
  if (t.of.k === 'option') {
    if (typeof v !== 'object' || v.tag !== 'some') bad();
    check(t.of, v.val, `${where}?`);
  } else check(t.of, v, `${where}?`);
}

/** `{ tag: 'ok' | 'err', val }`. @param {Of<'result'>} t @param {any} v @param {string} where @param {Bad} bad */
function checkResult(t, v, where, bad) {
  if (!v || typeof v !== 'object' || (v.tag !== 'ok' && v.tag !== 'err')) bad();
  const inner = v.tag === 'ok' ? t.ok : t.err;
  if (inner) check(inner, v.val, `${where}(${v.tag})`);
}

/**
 * A checker of one function's arguments (`params` after `skip` leading ones, e.g. a method's self).
 * @param {string} iface @param {string} fnName @param {FuncType} fn @param {number} [skip]
 * @returns {ArgsChecker}
 */
export function argsChecker(iface, fnName, fn, skip = 0) {
  const params = fn.params.slice(skip);
  const where = `${iface}.${fnName}`;
  return (args) => {
    if (args.length !== params.length) throw new BoundaryValueError(`${where}: expected ${params.length} argument(s), got ${args.length}`);
    for (const [i, p] of params.entries()) check(p.type, args[i], `${where}: parameter "${p.name}"`);
  };
}

/** @param {ArgsChecker} checker @param {Function} impl @returns {Function & { [GUARDED]?: true }} */
function guard(checker, impl) {
  /** @this {unknown} @param {unknown[]} args */
  const wrapped = function (...args) {
    checker(args);
    return impl.apply(this, args);
  };
  Object.defineProperty(wrapped, 'name', { value: impl.name });
  return wrapped;
}

const GUARDED = Symbol('edgeward.guarded');

/**
 * Wrap the import object of one interface (`fns`: what the worker hands jco's glue) so every function,
 * method, static function and constructor the WIT `types` describes checks its arguments first. Classes
 * are patched in place (one worker serves one instance) or, for constructors, replaced by a Proxy that
 * keeps `instanceof`. Returns the object to link.
 * @template {Record<string, unknown>} T
 * @param {string} iface @param {InstanceType} types @param {T} fns
 * @returns {T}
 */
export function guardInterface(iface, types, fns) {
  /** @type {Record<string, any>} */
  const out = { ...fns };
  const ctors = new Map();
  for (const [name, ext] of Object.entries(types.exports)) {
    if (ext.k !== 'func') continue;
    const m = /^\[(method|static|constructor)\]([a-z0-9-]+)(?:\.([a-z0-9-]+))?$/.exec(name);
    if (!m) {
      const js = camel(name);
      if (typeof out[js] === 'function') out[js] = guard(argsChecker(iface, name, ext), out[js]);
      continue;
    }
    const [, kind, resource, member] = /** @type {[string, 'method' | 'static' | 'constructor', string, string | undefined]} */ (/** @type {unknown} */ (m));
    const cls = out[pascal(resource)];
    if (typeof cls !== 'function') continue;
    if (kind === 'constructor') { ctors.set(pascal(resource), argsChecker(iface, name, ext)); continue; }
    if (member === undefined) throw new BoundaryValueError(`${iface}: ${name} names no member of resource ${resource}`);
    const target = kind === 'method' ? cls.prototype : cls;
    const js = camel(member);
    const impl = target[js];
    if (typeof impl !== 'function' || impl[GUARDED]) continue;
    const g = guard(argsChecker(iface, name, ext, kind === 'method' ? 1 : 0), impl);
    g[GUARDED] = true;
    Object.defineProperty(target, js, { value: g, writable: true, configurable: true });
  }
  for (const [cname, checker] of ctors) {
    out[cname] = new Proxy(out[cname], {
      /** @param {Function} target @param {unknown[]} args @param {Function} newTarget */
      construct(target, args, newTarget) {
        checker(args);
        return Reflect.construct(target, args, newTarget);
      },
    });
  }
  return /** @type {T} */ (out);
}

/**
 * Checkers of plain functions by their JS name (the daemon's broker: host-side capability functions).
 * @param {string} iface @param {InstanceType} types @returns {Map<string, ArgsChecker>}
 */
export function functionCheckers(iface, types) {
  /** @type {Map<string, ArgsChecker>} */
  const out = new Map();
  for (const [name, ext] of Object.entries(types.exports)) {
    if (ext.k === 'func' && !name.startsWith('[')) out.set(camel(name), argsChecker(iface, name, ext));
  }
  return out;
}
