/**
 * `npm run bench`: builds dist/ from the sources, then runs every benchmark in bench/ (each also runs alone
 * with `npx tsx bench/<name>.ts`, after `npm run build`), one after the other so they do not compete for the
 * two cores, and collects their closing lines. The build comes first because memory.ts, workload.ts and
 * runtime.ts's new-process starts run the daemon's code from dist/ (its .mjs workers too, copied there by the
 * build): a stale dist/ would measure old code.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const dir = path.dirname(fileURLToPath(import.meta.url));
const only = process.argv.slice(2);
const files = readdirSync(dir)
  .filter((f) => f.endsWith('.ts') && f !== 'run.ts')
  .filter((f) => only.length === 0 || only.some((o) => f.startsWith(o)))
  .sort();
const build = spawnSync('npm', ['run', 'build'], { stdio: ['ignore', 'ignore', 'inherit'] });
if (build.status !== 0) {
  console.error(`npm run build failed (exit ${build.status}): nothing measured`);
  process.exit(1);
}
console.log('built dist/ from the sources (npm run build)');
const summary: string[] = [];
let failed = 0;
for (const f of files) {
  console.log(`\n=== bench/${f}`);
  const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(dir, f)], { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' });
  process.stdout.write(r.stdout);
  if (r.status !== 0) {
    failed++;
    summary.push(`${f}: FAILED (exit ${r.status})`);
  } else {
    // Every line that states a target, so the summary holds each figure the issues ask for.
    const targeted = r.stdout.trim().split('\n').filter((l) => /target/.test(l));
    summary.push(...(targeted.length > 0 ? targeted : r.stdout.trim().split('\n').filter((l) => /ratio|=/.test(l)).slice(-4)));
  }
}
console.log('\n=== summary');
for (const line of summary) console.log(line);
process.exitCode = failed ? 1 : 0;
