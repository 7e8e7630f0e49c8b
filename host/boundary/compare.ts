/**
 * Compares what a component declares for an interface with what the host defines, as wasmtime's linker
 * does before instantiation: every function the component imports must exist in the host's interface
 * with exactly the same signature (parameter names and types, result), types compared structurally and
 * recursively, resources by identity. A component may import a subset of an interface's functions.
 * The answer is the first difference, worded for the deploy error:
 * `edgeward:module/logging.log: parameter "level": expected enum level, got bool`.
 */
import type { Extern, FuncType, InstanceType, ResourceType, ValType } from './types.js';

/** A short human name for a type: its WIT name where it has one. */
export function describe(t: ValType | ResourceType | undefined): string {
  if (!t) return 'nothing';
  if (t.k === 'resource') return `resource ${t.name ?? t.origin}`;
  const named = (word: string) => (t.name ? `${word} ${t.name}` : word);
  switch (t.k) {
    case 'record': return named('record');
    case 'variant': return named('variant');
    case 'enum': return named('enum');
    case 'flags': return named('flags');
    case 'list': return t.name ? `list ${t.name}` : `list<${describe(t.of)}${t.len === undefined ? '' : `, ${t.len}`}>`;
    case 'tuple': return t.name ? `tuple ${t.name}` : `tuple<${t.of.map(describe).join(', ')}>`;
    case 'option': return t.name ? `option ${t.name}` : `option<${describe(t.of)}>`;
    case 'result': return t.name ? `result ${t.name}` : `result<${describe(t.ok)}, ${describe(t.err)}>`;
    case 'own': case 'borrow': return `${t.k}<${t.resource.name ?? t.resource.origin}>`;
    case 'stream': case 'future': return `${t.k}<${describe(t.of)}>`;
    default: return t.name ? `${t.k} (${t.name})` : t.k;
  }
}

const mismatch = (want: ValType | ResourceType | undefined, got: ValType | ResourceType | undefined) => `expected ${describe(want)}, got ${describe(got)}`;

function names(a: readonly string[], b: readonly string[], what: string): string | undefined {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if (a[i] !== b[i]) return a[i] === undefined ? `${what} ${i + 1} "${b[i]}" is not defined by the host` : b[i] === undefined ? `${what} "${a[i]}" is missing` : `${what} ${i + 1}: expected "${a[i]}", got "${b[i]}"`;
  }
  return undefined;
}

/** Named members (record fields, variant cases): same names in the same order, then the same types. */
function members(h: readonly { name: string; type?: ValType }[], g: readonly { name: string; type?: ValType }[], what: string): string | undefined {
  const n = names(h.map((m) => m.name), g.map((m) => m.name), what);
  if (n) return n;
  for (let i = 0; i < h.length; i++) {
    const d = diffType(h[i]!.type, g[i]!.type);
    if (d) return `${what} "${h[i]!.name}": ${d}`;
  }
  return undefined;
}

/** First difference between the host's type `h` and the guest's `g`, or undefined when they are equal. */
export function diffType(h: ValType | undefined, g: ValType | undefined): string | undefined {
  if (!h || !g) return h === g ? undefined : mismatch(h, g);
  if (h.k !== g.k) return mismatch(h, g);
  const inside = (where: string, d: string | undefined) => (d === undefined ? undefined : `${where}: ${d}`);
  const pre = (d: string | undefined) => (d === undefined ? undefined : `${describe(h)}: ${d}`);
  switch (h.k) {
    case 'record': return pre(members(h.fields, (g as typeof h).fields, 'field'));
    case 'variant': return pre(members(h.cases, (g as typeof h).cases, 'case'));
    case 'enum': case 'flags': return pre(names(h.names, (g as typeof h).names, h.k === 'enum' ? 'case' : 'flag'));
    case 'list': {
      const gl = g as typeof h;
      if (h.len !== gl.len) return mismatch(h, g);
      return inside(describe(h), diffType(h.of, gl.of));
    }
    case 'option': return inside(describe(h), diffType(h.of, (g as typeof h).of));
    case 'tuple': {
      const gt = (g as typeof h).of;
      if (gt.length !== h.of.length) return mismatch(h, g);
      for (let i = 0; i < h.of.length; i++) {
        const d = diffType(h.of[i], gt[i]);
        if (d) return inside(`${describe(h)} element ${i}`, d);
      }
      return undefined;
    }
    case 'result': {
      const gr = g as typeof h;
      return inside(`${describe(h)} ok`, diffType(h.ok, gr.ok)) ?? inside(`${describe(h)} error`, diffType(h.err, gr.err));
    }
    case 'own': case 'borrow': return h.resource.origin === (g as typeof h).resource.origin ? undefined : mismatch(h, g);
    case 'stream': case 'future': return inside(describe(h), diffType(h.of, (g as typeof h).of));
    default: return undefined; // primitives: same kind
  }
}

function diffFunc(h: FuncType, g: FuncType): string | undefined {
  if (h.params.length !== g.params.length) {
    return `expected ${h.params.length} parameter(s) (${h.params.map((p) => p.name).join(', ')}), got ${g.params.length} (${g.params.map((p) => p.name).join(', ')})`;
  }
  for (let i = 0; i < h.params.length; i++) {
    const hp = h.params[i]!;
    const gp = g.params[i]!;
    if (hp.name !== gp.name) return `parameter ${i + 1}: expected "${hp.name}", got "${gp.name}"`;
    const d = diffType(hp.type, gp.type);
    if (d) return `parameter "${hp.name}": ${d}`;
  }
  const d = diffType(h.result, g.result);
  return d ? `result: ${d}` : undefined;
}

function diffTypeExport(h: Extern, g: Extern): string | undefined {
  if (h.k !== 'type' || g.k !== 'type') return `expected a ${h.k}, got a ${g.k}`;
  if (h.type.k === 'resource' || g.type.k === 'resource') {
    return h.type.k === 'resource' && g.type.k === 'resource' && h.type.origin === g.type.origin ? undefined : mismatch(h.type, g.type);
  }
  return diffType(h.type, g.type);
}

/**
 * Check one interface: `direction` says who calls the functions (`import`: the guest calls the host's;
 * `export`: the host calls the guest's, so every function the host calls must be there).
 */
export function checkInterface(iface: string, host: InstanceType, guest: InstanceType, direction: 'import' | 'export'): string | undefined {
  for (const [name, g] of Object.entries(guest.exports)) {
    const h = host.exports[name];
    const where = `${iface}.${name}`;
    if (!h) {
      if (direction === 'export') continue; // extra exports are never called
      return g.k === 'func' ? `${where}: the host does not define this function` : `${where}: the host does not define this ${g.k === 'type' ? 'type' : g.k}`;
    }
    if (h.k !== g.k) return `${where}: expected a ${h.k}, got a ${g.k}`;
    const d = h.k === 'func' ? diffFunc(h, g as FuncType) : diffTypeExport(h, g);
    if (d) return `${where}: ${d}`;
  }
  if (direction === 'export') {
    for (const [name, h] of Object.entries(host.exports)) {
      if (h.k === 'func' && !guest.exports[name]) return `${iface}.${name}: the component does not export this function, which the host calls`;
    }
  }
  return undefined;
}
