/** Edgeward's version and the versions of the platform pieces it reports in /systeminfo. */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The package root: host/version.ts runs from host/ (tsx) or from dist/host/ (compiled). */
function findPackageRoot(): string | undefined {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++) {
    try {
      const pkg = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: string };
      if (pkg.name === 'edgeward') return dir;
    } catch {
      /* keep walking up */
    }
    dir = path.dirname(dir);
  }
  return undefined;
}

export const PACKAGE_ROOT = findPackageRoot();

function versionAt(...rel: string[]): string {
  if (!PACKAGE_ROOT) return 'unknown';
  try {
    return (JSON.parse(readFileSync(path.join(PACKAGE_ROOT, ...rel, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

export const EDGEWARD_VERSION = versionAt();
export const JCO_VERSION = versionAt('node_modules', '@bytecodealliance', 'jco');
