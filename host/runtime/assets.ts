/**
 * Files the runtime needs at run time that tsc does not emit (worker entry, worker-side capability
 * modules, sample guests). The daemon runs from dist/, tests run the TS sources; both find them from the
 * package root (the nearest directory above this file with a package.json).
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

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

/** Absolute path of a source-tree asset, e.g. `host/runtime/worker.mjs`. */
export function assetPath(rel: string): string {
  return path.join(packageRoot(), rel);
}

export function assetUrl(rel: string): string {
  return pathToFileURL(assetPath(rel)).href;
}
