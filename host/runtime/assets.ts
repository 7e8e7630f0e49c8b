/**
 * Files the runtime needs at run time besides its own modules: the worker entry and the other `.mjs` code
 * (sandbox workers, worker-side capability modules, the transpiler process, the broker protocol and the
 * boundary validator the daemon's thread imports too), and the sample guests.
 *
 * Code (`host/…`, `hsm/…`) is taken from the tree the running code was loaded from — dist/ when compiled
 * (tsc's output or the bin's bundle), the repository under tsx — so what runs is what the daemon's code
 * digest measures (host/measure/code.ts covers host/ and hsm/ of that tree). tsc emits no `.mjs`:
 * scripts/copy-mjs.mjs copies them into dist/ at every build. Guests (`guests/…`) are not code of the
 * daemon (each component is measured on its own) and come from the package root.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** The daemon's code: what the code digest measures (host/measure/code.ts), and what runs from the code tree. */
export const CODE_DIRS = ['host', 'hsm'] as const;

/** The nearest directory at or above `dir` that holds both `host/` and `hsm/`. */
export function codeRootAbove(dir: string): string {
  for (let d = dir; ; d = path.dirname(d)) {
    if (CODE_DIRS.every((c) => existsSync(path.join(d, c)))) return d;
    if (path.dirname(d) === d) throw new Error(`edgeward: no directory with ${CODE_DIRS.join(' and ')} above ${dir}`);
  }
}

let code: string | undefined;

/** The tree the running code was loaded from (dist/, or the repository under tsx). */
export function codeRoot(): string {
  return (code ??= codeRootAbove(path.dirname(fileURLToPath(import.meta.url))));
}

let root: string | undefined;

export function packageRoot(): string {
  if (root) return root;
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'package.json'))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error('edgeward: package root not found above ' + fileURLToPath(import.meta.url));
    dir = up;
  }
  root = dir;
  return dir;
}

/** Absolute path of an asset, e.g. `host/runtime/worker.mjs` (from the code tree) or a guest (package root). */
export function assetPath(rel: string): string {
  return path.join(CODE_DIRS.some((d) => rel.startsWith(`${d}/`)) ? codeRoot() : packageRoot(), rel);
}

export function assetUrl(rel: string): string {
  return pathToFileURL(assetPath(rel)).href;
}
