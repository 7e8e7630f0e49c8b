/**
 * What the daemon measures about itself: its code digest and its effective config digest.
 *
 * Code digest (`edgeward-code-v1`): SHA-256 over the text
 *   "edgeward-code-v1\nversion <package version>\n" + one line "<sha256 hex>  <path>\n" per file
 * for every regular file under `host/` and `hsm/` of the tree the running daemon was loaded from (dist/
 * when compiled, the source tree under tsx), paths relative to that tree, sorted bytewise. An operator
 * reproduces it with: cd dist && { printf 'edgeward-code-v1\nversion %s\n' V; find host hsm -type f |
 * LC_ALL=C sort | xargs sha256sum; } | sha256sum.
 *
 * Config digest: SHA-256 of the canonical JSON (keys sorted) of the effective config with secrets
 * redacted (`redactConfig`, plus the TPM hierarchy passwords), so the measurement never carries a secret
 * and is the same at every boot of an unchanged device.
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { canonicalJson } from '../../hsm/tpm/eventlog.js';
import { redactConfig, REDACTED } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { EDGEWARD_VERSION } from '../version.js';
import { CODE_DIRS, codeRootAbove } from '../runtime/assets.js';

export { codeRootAbove };

/**
 * The tree this module was loaded from: dist/ or the repository root, the nearest directory above this
 * file that holds both `host/` and `hsm/` (from dist/host/measure/, from the bundle in dist/host/bundle/,
 * or from the sources under tsx). The runtime loads its `.mjs` code from the same tree (runtime/assets.ts).
 */
export const CODE_ROOT = codeRootAbove(path.dirname(fileURLToPath(import.meta.url)));

async function filesUnder(root: string, rel: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await fs.readdir(path.join(root, rel), { withFileTypes: true })) {
    const p = `${rel}/${e.name}`;
    if (e.isDirectory()) out.push(...(await filesUnder(root, p)));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

export interface CodeDigest {
  version: string;
  digest: string;
  files: number;
}

export async function codeDigest(root = CODE_ROOT, version = EDGEWARD_VERSION): Promise<CodeDigest> {
  const files = (await Promise.all(CODE_DIRS.map((d) => filesUnder(root, d).catch(() => [] as string[])))).flat().sort((a, b) => (Buffer.compare(Buffer.from(a), Buffer.from(b))));
  const h = createHash('sha256').update(`edgeward-code-v1\nversion ${version}\n`);
  for (const f of files) h.update(`${createHash('sha256').update(await fs.readFile(path.join(root, f))).digest('hex')}  ${f}\n`);
  return { version, digest: `sha256:${h.digest('hex')}`, files: files.length };
}

/** The effective config as measured: redacted, canonical JSON. */
export function measuredConfig(config: Config): { canonical: string; digest: string } {
  const red = redactConfig(config) as Record<string, unknown> & { tpm?: { hierarchy_authorization?: Record<string, unknown> } };
  const ha = red.tpm?.hierarchy_authorization;
  if (ha) red.tpm = { ...red.tpm, hierarchy_authorization: Object.fromEntries(Object.keys(ha).map((k) => [k, REDACTED])) };
  const canonical = canonicalJson(red);
  return { canonical, digest: `sha256:${createHash('sha256').update(canonical).digest('hex')}` };
}
