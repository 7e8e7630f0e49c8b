/**
 * Which WIT the host serves: every interface Edgeward's own packages declare (wit/*: a new capability's
 * WIT is picked up by adding its folder there), the WASI interfaces the built-in capabilities link (from
 * the WASI packages jco ships), and the lifecycle the host calls. `hostInterfaceTable()` builds the table that
 * host/boundary/generated/host-interfaces.ts holds (regenerate with `npm run gen:wit`; a test fails when it drifts).
 */
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { edgewardCapabilities } from './index.js';
import { interfacesFromWit, nestPackage, wasiWit } from '../boundary/reference.js';
import type { InterfaceTable } from '../boundary/types.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/** The interfaces the host calls in a component. */
export const HOST_CALLED_EXPORTS = ['edgeward:module/lifecycle', 'edgeward:module/health'];
/** Edgeward's WIT packages: every folder of wit/ with a .wit file that declares an interface. */
function ownWit(): string[] {
  const dirs = readdirSync(path.join(ROOT, 'wit'), { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name).sort();
  const sources = dirs.map((dir) => readdirSync(path.join(ROOT, 'wit', dir)).filter((f) => f.endsWith('.wit')).sort()
    .map((f) => readFileSync(path.join(ROOT, 'wit', dir, f), 'utf8')));
  return sources.filter((files) => files.some((src) => /^\s*interface\s/m.test(src))).flat();
}

/** `package a:b@v; … interface c {` → `a:b/c`, for every interface a source declares. */
function interfacesDeclared(src: string): string[] {
  const pkg = /^\s*package\s+([^@;\s]+)/m.exec(src)?.[1];
  return pkg ? [...src.matchAll(/^\s*interface\s+([\w-]+)/gm)].map((m) => `${pkg}/${m[1]}`) : [];
}

export async function hostInterfaceTable(): Promise<InterfaceTable> {
  const wasi = wasiWit();
  const own = ownWit();
  const versions = new Map<string, string>();
  for (const src of own) {
    const m = /^\s*package\s+([^@;\s]+)@([^;\s]+);/m.exec(src);
    if (m) versions.set(m[1]!, m[2]!);
  }
  const versioned = (iface: string) => {
    const pkg = iface.slice(0, iface.indexOf('/'));
    return `${iface}@${pkg.startsWith('wasi:') ? wasi.version : versions.get(pkg) ?? '0.1.0'}`;
  };
  const declared = own.flatMap(interfacesDeclared).filter((i) => !HOST_CALLED_EXPORTS.includes(i));
  const served = new Set<string>([...edgewardCapabilities().flatMap((c) => c.interfaces), ...declared]);
  const packages = [wasi.source, ...own.map(nestPackage)].join('\n');
  return interfacesFromWit(packages, [...served].sort().map(versioned), HOST_CALLED_EXPORTS.map(versioned));
}
