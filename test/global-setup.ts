/**
 * Build once before the suite: end-to-end tests run the compiled CLI, as a user would: tsc's dist/, then
 * the bundle the `edgeward` bin runs (scripts/bundle.mjs). Type errors do not stop the emit here;
 * `npm run build` in scripts/test-all.sh is where they fail the run. A bundle that cannot be built stops
 * the suite.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export default function setup(): void {
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
  const r = spawnSync(process.execPath, [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], { cwd: root, encoding: 'utf8' });
  if (r.status !== 0) process.stderr.write(`[global-setup] tsc reported errors (dist/ emitted anyway):\n${r.stdout.slice(0, 4000)}\n`);
  const b = spawnSync(process.execPath, [path.join(root, 'scripts', 'bundle.mjs')], { cwd: root, encoding: 'utf8' });
  if (b.status !== 0) throw new Error(`[global-setup] bundling the CLI failed:\n${b.stdout}${b.stderr}`);
}
