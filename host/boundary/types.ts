/**
 * Component Model types as plain data: what a component declares it imports and exports, and what the
 * host defines (generated from wit/ and jco's WASI WIT). Structural, as the Component Model compares value
 * types; resources compare by where they are defined (`wasi:io/streams#output-stream`), as they are
 * nominal. Plain JSON-able objects, so the host's side can be generated once and checked in.
 */

export type PrimName = 'bool' | 's8' | 'u8' | 's16' | 'u16' | 's32' | 'u32' | 's64' | 'u64' | 'f32' | 'f64' | 'char' | 'string' | 'error-context';

/** A resource type: `origin` names where it is defined (`<interface>#<name>`), which is its identity. */
export interface ResourceType { k: 'resource'; origin: string; name?: string }

export type ValType = (
  | { k: PrimName }
  | { k: 'record'; fields: { name: string; type: ValType }[] }
  | { k: 'variant'; cases: { name: string; type?: ValType }[] }
  | { k: 'list'; of: ValType; len?: number }
  | { k: 'tuple'; of: ValType[] }
  | { k: 'flags'; names: string[] }
  | { k: 'enum'; names: string[] }
  | { k: 'option'; of: ValType }
  | { k: 'result'; ok?: ValType; err?: ValType }
  | { k: 'own' | 'borrow'; resource: ResourceType }
  | { k: 'stream' | 'future'; of?: ValType }
) & { name?: string };

export interface FuncType { k: 'func'; params: { name: string; type: ValType }[]; result?: ValType }
export interface InstanceType { k: 'instance'; exports: Record<string, Extern> }
export interface ComponentType { k: 'component'; imports: Record<string, Extern>; exports: Record<string, Extern> }
/** A type export of an instance: a value type (`eq`) or a resource (`sub resource`). */
export interface TypeExtern { k: 'type'; type: ValType | ResourceType }
export type Extern = FuncType | InstanceType | ComponentType | TypeExtern | { k: 'module' } | { k: 'value'; type: ValType };

/** The host's side: interface name without version → its instance type. */
export interface InterfaceTable {
  imports: Record<string, InstanceType>;
  exports: Record<string, InstanceType>;
}

/** `wasi:clocks/wall-clock@0.2.3` → `wasi:clocks/wall-clock`. */
export function unversioned(name: string): string {
  const at = name.indexOf('@');
  return at < 0 ? name : name.slice(0, at);
}
