/**
 * The host's side of the type check, from WIT: a world importing every interface the host serves (and
 * exporting what it calls) is embedded into a dummy core module and made a component with jco's
 * wasm-tools, then read back with the same decoder as a guest. Used by `npm run gen:wit` (which writes
 * generated/host-interfaces.ts) and by tests that register capabilities of their own. Never at run time
 * in the daemon: jco's wasm-tools is large.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { decodeComponentTypes } from './decode.js';
import { unversioned, type InstanceType, type InterfaceTable } from './types.js';

/** `package a:b@1.0;` + body → `package a:b@1.0 { body }`, so many packages can share one WIT source. */
export function nestPackage(source: string): string {
  const m = /^\s*package\s+([^;{\s]+)\s*;/m.exec(source);
  if (!m) throw new Error('WIT source without a `package` line');
  return `package ${m[1]} {\n${source.slice(0, m.index)}${source.slice(m.index + m[0].length)}\n}`;
}

/** The WASI packages jco ships (the same WIT jco's own WASI host is written against). */
export function wasiWit(version = '0.2.12'): { version: string; source: string } {
  // jco's package.json is not exported: find the package from its main entry (dist/api.js).
  const require = createRequire(import.meta.url);
  const dir = path.join(path.dirname(require.resolve('@bytecodealliance/jco')), '..', 'lib', 'wit', 'builtin', version);
  const source = readdirSync(dir).filter((d) => d.startsWith('wasi-')).sort()
    .map((d) => nestPackage(readFileSync(path.join(dir, d, 'package.wit'), 'utf8'))).join('\n');
  return { version, source };
}

/**
 * Instance types of `imports` and `exports` (interface names with version, e.g. `wasi:io/streams@0.2.12`)
 * as a world built from `packages` (WIT source, packages already nested) declares them.
 */
export async function interfacesFromWit(packages: string, imports: readonly string[], exports: readonly string[] = []): Promise<InterfaceTable> {
  const { componentEmbed, componentNew } = await import('@bytecodealliance/jco');
  const world = [
    'package edgeward:reference;',
    'world reference {',
    ...imports.map((i) => `  import ${i};`),
    ...exports.map((e) => `  export ${e};`),
    '}',
    packages,
  ].join('\n');
  const embedded = await componentEmbed({ dummy: true, witSource: world, world: 'reference' });
  const types = decodeComponentTypes(await componentNew(embedded));
  const pick = (from: Record<string, unknown>): Record<string, InstanceType> => {
    const out: Record<string, InstanceType> = {};
    for (const [name, ext] of Object.entries(from)) if ((ext as InstanceType).k === 'instance') out[unversioned(name)] = ext as InstanceType;
    return out;
  };
  return { imports: pick(types.imports), exports: pick(types.exports) };
}

/** Types of the interfaces one WIT package defines (a test capability's `package x:y; interface z {…}`). */
export async function interfacesOfPackage(source: string): Promise<Record<string, InstanceType>> {
  const m = /^\s*package\s+([^;{\s]+)\s*;/m.exec(source);
  if (!m) throw new Error('WIT source without a `package` line');
  const [pkg, version] = m[1]!.split('@');
  const names = [...source.matchAll(/^\s*interface\s+([a-z0-9-]+)/gm)].map((x) => `${pkg}/${x[1]}${version ? `@${version}` : ''}`);
  return (await interfacesFromWit(nestPackage(source), names)).imports;
}
