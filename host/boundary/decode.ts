/**
 * Reads what a component declares: the types of its imports and exports, from the component binary
 * (Component Model Binary.md), without running or transpiling anything. Core modules are skipped by their
 * section length, so a 12 MB guest costs only its type sections.
 *
 * Only what the type check needs is modelled: the type, func, instance and component index spaces, with
 * outer aliases and nested components. Anything this reader does not know (an async canon builtin, a core
 * type inside a type declaration, a future opcode) is an error: a component whose types cannot be read is
 * refused, never linked unchecked.
 *
 * One file on purpose: ComponentReader's methods follow Binary.md's productions in order and call each
 * other freely (a value type holds a record holds a value type…); split across files, the grammar would be
 * read in pieces for nothing. The bytes themselves (LEB128, names, vectors) are reader.ts's.
 */
import type { ComponentType, Extern, FuncType, InstanceType, PrimName, ResourceType, TypeExtern, ValType } from './types.js';
import { unversioned } from './types.js';
import { ComponentTypeError, Reader } from './reader.js';

export { ComponentTypeError } from './reader.js';

const PRIMS: Record<number, PrimName> = {
  0x7f: 'bool', 0x7e: 's8', 0x7d: 'u8', 0x7c: 's16', 0x7b: 'u16', 0x7a: 's32', 0x79: 'u32',
  0x78: 's64', 0x77: 'u64', 0x76: 'f32', 0x75: 'f64', 0x74: 'char', 0x73: 'string', 0x64: 'error-context',
};

/** Sorts (Binary.md `sort`); the core sort is 0x00 followed by a core sort byte. */
const SORT = { core: 0x00, func: 0x01, value: 0x02, type: 0x03, component: 0x04, instance: 0x05 } as const;

type TypeEntry = ValType | ResourceType | FuncType | InstanceType | ComponentType;

/** One component, component type or instance type being read: its index spaces and enclosing scope. */
class Scope {
  readonly types: TypeEntry[] = [];
  readonly funcs: FuncType[] = [];
  readonly instances: InstanceType[] = [];
  readonly components: ComponentType[] = [];
  readonly imports: Record<string, Extern> = {};
  readonly exports: Record<string, Extern> = {};
  constructor(readonly parent?: Scope) {}

  type(i: number): TypeEntry {
    const t = this.types[i];
    if (!t) throw new ComponentTypeError(`type index ${i} out of range`);
    return t;
  }
}

const MAX_DEPTH = 64;

/** The declared types of a component: its imports and exports by full name. */
export function decodeComponentTypes(bytes: Uint8Array): ComponentType {
  if (bytes.length < 8 || bytes[0] !== 0 || bytes[1] !== 0x61 || bytes[2] !== 0x73 || bytes[3] !== 0x6d || bytes[6] !== 1) {
    throw new ComponentTypeError('not a component');
  }
  const top = new ComponentReader().component(new Reader(bytes), undefined, 0);
  return { k: 'component', imports: top.imports, exports: top.exports };
}

/**
 * The reader of one component's types: Binary.md's productions as methods, in its order. Its one piece of
 * state is the counter that names the component's own (fresh) resource types.
 */
class ComponentReader {
  private localResources = 0;
  private fresh(name?: string): ResourceType { return ({ k: 'resource', origin: `local:${this.localResources++}`, ...(name ? { name } : {}) }); }

  private valType(r: Reader, scope: Scope): ValType {
    const b = r.peek();
    if ((b & 0x80) === 0 && b >= 0x40) {
      r.pos++;
      const prim = PRIMS[b];
      if (!prim) throw new ComponentTypeError(`unknown value type opcode 0x${b.toString(16)}`);
      return { k: prim };
    }
    const t = scope.type(r.u32());
    if (t.k === 'func' || t.k === 'instance' || t.k === 'component' || t.k === 'resource') throw new ComponentTypeError(`a ${t.k} type used as a value type`);
    return t;
  }

  private resourceAt(scope: Scope, i: number): ResourceType {
    const t = scope.type(i);
    if (t.k !== 'resource') throw new ComponentTypeError(`own/borrow of a ${t.k} type`);
    return t;
  }

  private defValType(r: Reader, scope: Scope, op: number): ValType {
    switch (op) {
      case 0x72: return { k: 'record', fields: r.vec(() => ({ name: r.string(), type: this.valType(r, scope) })) };
      case 0x71: return {
        k: 'variant',
        cases: r.vec(() => {
          const name = r.string();
          const type = r.optional(() => this.valType(r, scope));
          if (r.byte() !== 0) throw new ComponentTypeError('variant case refinements are not supported');
          return type ? { name, type } : { name };
        }),
      };
      case 0x70: return { k: 'list', of: this.valType(r, scope) };
      case 0x67: { const of = this.valType(r, scope); return { k: 'list', of, len: r.u32() }; }
      case 0x6f: return { k: 'tuple', of: r.vec(() => this.valType(r, scope)) };
      case 0x6e: return { k: 'flags', names: r.vec(() => r.string()) };
      case 0x6d: return { k: 'enum', names: r.vec(() => r.string()) };
      case 0x6b: return { k: 'option', of: this.valType(r, scope) };
      case 0x6a: {
        const ok = r.optional(() => this.valType(r, scope));
        const err = r.optional(() => this.valType(r, scope));
        return { k: 'result', ...(ok ? { ok } : {}), ...(err ? { err } : {}) };
      }
      case 0x69: return { k: 'own', resource: this.resourceAt(scope, r.u32()) };
      case 0x68: return { k: 'borrow', resource: this.resourceAt(scope, r.u32()) };
      case 0x66: case 0x65: {
        const of = r.optional(() => this.valType(r, scope));
        return { k: op === 0x66 ? 'stream' : 'future', ...(of ? { of } : {}) };
      }
      default: {
        const prim = PRIMS[op];
        if (prim) return { k: prim };
        throw new ComponentTypeError(`unknown type opcode 0x${op.toString(16)}`);
      }
    }
  }

  private funcType(r: Reader, scope: Scope): FuncType {
    const params = r.vec(() => ({ name: r.string(), type: this.valType(r, scope) }));
    const tag = r.byte();
    if (tag === 0x00) return { k: 'func', params, result: this.valType(r, scope) };
    if (tag !== 0x01) throw new ComponentTypeError(`bad function result list 0x${tag.toString(16)}`);
    const named = r.vec(() => ({ name: r.string(), type: this.valType(r, scope) }));
    if (named.length > 1) throw new ComponentTypeError('functions with several named results are not supported');
    return named[0] ? { k: 'func', params, result: named[0].type } : { k: 'func', params };
  }

  private name(r: Reader): string {
    const tag = r.byte();
    if (tag !== 0x00 && tag !== 0x01) throw new ComponentTypeError(`unknown extern name form 0x${tag.toString(16)}`);
    return r.string();
  }

  /** An import or export declaration's description; adds the new index (if any) to `scope`. */
  private externDesc(r: Reader, scope: Scope, declName: string): Extern {
    const tag = r.byte();
    switch (tag) {
      case 0x00:
        if (r.byte() !== 0x11) throw new ComponentTypeError('bad core extern description');
        r.u32();
        return { k: 'module' };
      case 0x01: {
        const f = scope.type(r.u32());
        if (f.k !== 'func') throw new ComponentTypeError(`"${declName}": func of a ${f.k} type`);
        scope.funcs.push(f);
        return f;
      }
      case 0x02: {
        const vb = r.byte();
        if (vb !== 0x01) throw new ComponentTypeError('value imports are not supported');
        return { k: 'value', type: this.valType(r, scope) };
      }
      case 0x03: {
        const bound = r.byte();
        let t: ValType | ResourceType;
        if (bound === 0x01) t = { k: 'resource', origin: '', name: declName };
        else if (bound === 0x00) {
          const target = scope.type(r.u32());
          if (target.k === 'func' || target.k === 'instance' || target.k === 'component') throw new ComponentTypeError(`"${declName}": type bound to a ${target.k}`);
          // A resource keeps its identity; a value type gets the name it is exported under.
          t = target.k === 'resource' ? target : { ...target, name: declName };
        } else throw new ComponentTypeError(`bad type bound 0x${bound.toString(16)}`);
        scope.types.push(t);
        return { k: 'type', type: t };
      }
      case 0x04: case 0x05: {
        const t = scope.type(r.u32());
        const want = tag === 0x04 ? 'component' : 'instance';
        if (t.k !== want) throw new ComponentTypeError(`"${declName}": ${want} of a ${t.k} type`);
        if (t.k === 'instance') scope.instances.push(t);
        if (t.k === 'component') scope.components.push(t);
        return t;
      }
      default: throw new ComponentTypeError(`unknown extern description 0x${tag.toString(16)}`);
    }
  }

  /** Name the resources an import brings (`wasi:io/streams#output-stream`): their identity from now on. */
  private nameResources(importName: string, ext: Extern): void {
    if (ext.k !== 'instance') return;
    for (const [n, e] of Object.entries(ext.exports)) {
      if (e.k === 'type' && e.type.k === 'resource' && e.type.origin === '') e.type.origin = `${unversioned(importName)}#${n}`;
    }
  }

  private alias(r: Reader, scope: Scope): void {
    const sort = r.byte();
    if (sort === SORT.core) {
      r.byte();
      const target = r.byte();
      if (target === 0x01) { r.u32(); r.string(); return; }
      if (target === 0x02) { r.u32(); r.u32(); return; }
      throw new ComponentTypeError(`bad core alias target 0x${target.toString(16)}`);
    }
    const target = r.byte();
    if (target === 0x00) {
      const inst = scope.instances[r.u32()];
      const exportName = r.string();
      if (!inst) throw new ComponentTypeError('alias of an instance index out of range');
      const item = inst.exports[exportName];
      if (!item) throw new ComponentTypeError(`alias of "${exportName}", which the instance does not export`);
      this.pushSorted(scope, sort, item);
      return;
    }
    if (target === 0x02) {
      let up = r.u32();
      const idx = r.u32();
      let s: Scope | undefined = scope;
      while (up-- > 0) s = s?.parent;
      if (!s) throw new ComponentTypeError('outer alias beyond the outermost component');
      if (sort === SORT.type) scope.types.push(s.type(idx));
      else if (sort === SORT.component) {
        const c = s.components[idx];
        if (!c) throw new ComponentTypeError('outer alias of a component index out of range');
        scope.components.push(c);
      } else throw new ComponentTypeError(`outer alias of sort 0x${sort.toString(16)}`);
      return;
    }
    throw new ComponentTypeError(`bad alias target 0x${target.toString(16)}`);
  }

  private pushSorted(scope: Scope, sort: number, item: Extern): void {
    if (sort === SORT.func && item.k === 'func') scope.funcs.push(item);
    else if (sort === SORT.instance && item.k === 'instance') scope.instances.push(item);
    else if (sort === SORT.component && item.k === 'component') scope.components.push(item);
    else if (sort === SORT.type && item.k === 'type') scope.types.push(item.type);
    else if (sort !== SORT.value) throw new ComponentTypeError(`alias sort 0x${sort.toString(16)} does not match a ${item.k}`);
  }

  /** Declarations of a component type (`imports`) or instance type. */
  private decls(r: Reader, parent: Scope, depth: number, component: boolean): Scope {
    const scope = new Scope(parent);
    const n = r.u32();
    for (let i = 0; i < n; i++) {
      const tag = r.byte();
      if (tag === 0x00) throw new ComponentTypeError('core type declarations inside a component or instance type are not supported');
      else if (tag === 0x01) scope.types.push(this.defType(r, scope, depth + 1));
      else if (tag === 0x02) this.alias(r, scope);
      else if (tag === 0x04) { const nm = this.name(r); scope.exports[nm] = this.externDesc(r, scope, nm); }
      else if (tag === 0x03 && component) {
        const nm = this.name(r);
        const ext = this.externDesc(r, scope, nm);
        this.nameResources(nm, ext);
        scope.imports[nm] = ext;
      } else throw new ComponentTypeError(`unknown declaration 0x${tag.toString(16)}`);
    }
    return scope;
  }

  private defType(r: Reader, scope: Scope, depth: number): TypeEntry {
    if (depth > MAX_DEPTH) throw new ComponentTypeError('types nested too deeply');
    const op = r.byte();
    switch (op) {
      case 0x40: return this.funcType(r, scope);
      case 0x41: { const s = this.decls(r, scope, depth, true); return { k: 'component', imports: s.imports, exports: s.exports }; }
      case 0x42: return { k: 'instance', exports: this.decls(r, scope, depth, false).exports };
      case 0x3f: {
        if (r.byte() !== 0x7f) throw new ComponentTypeError('resource representation other than i32');
        r.optional(() => r.u32());
        return this.fresh();
      }
      case 0x43: case 0x3e: throw new ComponentTypeError('async component-model types are not supported');
      default: return this.defValType(r, scope, op);
    }
  }

  private sortIdx(r: Reader, scope: Scope): Extern | undefined {
    const sort = r.byte();
    if (sort === SORT.core) { r.byte(); r.u32(); return undefined; }
    const i = r.u32();
    switch (sort) {
      case SORT.func: return scope.funcs[i] ?? this.missing('func', i);
      case SORT.instance: return scope.instances[i] ?? this.missing('instance', i);
      case SORT.component: return scope.components[i] ?? this.missing('component', i);
      case SORT.type: {
        const t = scope.type(i);
        if (t.k === 'func' || t.k === 'instance' || t.k === 'component') return t;
        return { k: 'type', type: t } satisfies TypeExtern;
      }
      case SORT.value: return undefined;
      default: throw new ComponentTypeError(`unknown sort 0x${sort.toString(16)}`);
    }
  }
  private missing(what: string, i: number): never { throw new ComponentTypeError(`${what} index ${i} out of range`); }

  private canonOpts(r: Reader): void {
    r.vec(() => {
      const o = r.byte();
      if (o <= 0x02 || o === 0x06) return;
      if (o >= 0x03 && o <= 0x05) { r.u32(); return; }
      if (o === 0x07) { r.u32(); return; }
      throw new ComponentTypeError(`unknown canonical option 0x${o.toString(16)}`);
    });
  }

  /** A component (the outermost or a nested one): its sections in order, into a new scope. */
  component(r: Reader, parent: Scope | undefined, depth: number): Scope {
    if (depth > MAX_DEPTH) throw new ComponentTypeError('components nested too deeply');
    const scope = new Scope(parent);
    r.pos += 8; // preamble, checked by the caller for the outermost component
    while (r.pos < r.end) {
      const id = r.byte();
      const size = r.u32();
      const end = r.pos + size;
      if (end > r.end) throw new ComponentTypeError(`section ${id} runs past the end`);
      const s = new Reader(r.bytes, r.pos, end);
      this.section(id, s, scope, depth);
      if (s.pos !== end) throw new ComponentTypeError(`section ${id} has ${end - s.pos} unread bytes`);
      r.pos = end;
    }
    return scope;
  }

  private section(id: number, s: Reader, scope: Scope, depth: number): void {
    switch (id) {
      case 0: case 1: case 2: case 3: case 9: case 12: s.pos = s.end; break; // custom, core module/instance/type, start, values
      case 4: {
        const nested = this.component(new Reader(s.bytes, s.pos, s.end), scope, depth + 1);
        scope.components.push({ k: 'component', imports: nested.imports, exports: nested.exports });
        s.pos = s.end;
        break;
      }
      case 5: s.vec(() => this.instanceExpr(s, scope)); break;
      case 6: s.vec(() => this.alias(s, scope)); break;
      case 7: s.vec(() => scope.types.push(this.defType(s, scope, depth))); break;
      case 8: s.vec(() => this.canon(s, scope)); break;
      case 10: s.vec(() => this.importDecl(s, scope)); break;
      case 11: s.vec(() => this.exportDecl(s, scope)); break;
      default: throw new ComponentTypeError(`unknown section id ${id}`);
    }
  }

  private instanceExpr(s: Reader, scope: Scope): void {
    const how = s.byte();
    if (how === 0x00) {
      const c = scope.components[s.u32()];
      if (!c) throw new ComponentTypeError('instantiate of a component index out of range');
      s.vec(() => { s.string(); this.sortIdx(s, scope); });
      scope.instances.push({ k: 'instance', exports: c.exports });
    } else if (how === 0x01) {
      const exports: Record<string, Extern> = {};
      s.vec(() => { const nm = this.name(s); const item = this.sortIdx(s, scope); if (item) exports[nm] = item; });
      scope.instances.push({ k: 'instance', exports });
    } else throw new ComponentTypeError(`unknown instance expression 0x${how.toString(16)}`);
  }

  private canon(s: Reader, scope: Scope): void {
    const op = s.byte();
    if (op === 0x00) {
      if (s.byte() !== 0x00) throw new ComponentTypeError('bad canon lift');
      s.u32(); this.canonOpts(s);
      const f = scope.type(s.u32());
      if (f.k !== 'func') throw new ComponentTypeError('canon lift to a non-function type');
      scope.funcs.push(f);
    } else if (op === 0x01) {
      if (s.byte() !== 0x00) throw new ComponentTypeError('bad canon lower');
      s.u32(); this.canonOpts(s);
    } else if (op === 0x02 || op === 0x03 || op === 0x04 || op === 0x07) s.u32();
    else throw new ComponentTypeError(`canonical builtin 0x${op.toString(16)} (component-model async or threads) is not supported`);
  }

  private importDecl(s: Reader, scope: Scope): void {
    const nm = this.name(s);
    const ext = this.externDesc(s, scope, nm);
    this.nameResources(nm, ext);
    scope.imports[nm] = ext;
  }

  private exportDecl(s: Reader, scope: Scope): void {
    const nm = this.name(s);
    const sort = s.peek();
    const inferred = this.sortIdx(s, scope);
    const ascribed = s.optional(() => this.externDesc(s, scope, nm));
    const item = ascribed ?? inferred;
    if (!item) return;
    // An export adds an index in its sort (externDesc already did for an ascribed type).
    if (!ascribed) this.pushSorted(scope, sort, item);
    scope.exports[nm] = item;
  }
}
