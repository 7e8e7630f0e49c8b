#!/usr/bin/env node
// The closing lines of the README's test command, printed last so that the tail of a long log names what
// failed: the totals, then each failed test (file, title, the first lines of its error) and each failed
// reliability scenario. Exits 1 when anything failed or no test ran.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = process.env.SUMMARY_ROOT ?? path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const file = path.join(root, '.cache', 'vitest.json');
if (!existsSync(file)) { console.error('error: vitest wrote no report (.cache/vitest.json)'); process.exit(1); }
const r = JSON.parse(readFileSync(file, 'utf8'));
// eslint-disable-next-line no-control-regex
const plain = (s) => String(s).replace(/\x1b\[[0-9;]*m/g, '');
const failed = [];
const flaky = [];
for (const f of r.testResults ?? []) {
  const rel = path.relative(root, f.name);
  const tests = (f.assertionResults ?? []).filter((a) => a.status === 'failed');
  // Passed on a retry (--retry): the first attempt's error is still in failureMessages.
  for (const a of f.assertionResults ?? []) {
    if (a.status === 'passed' && a.failureMessages?.length) flaky.push({ where: `${path.relative(root, f.name)} > ${a.fullName ?? a.title}`, why: a.failureMessages.join('\n') });
  }
  for (const a of tests) failed.push({ where: `${rel} > ${a.fullName ?? a.title}`, why: (a.failureMessages ?? []).join('\n') });
  // A file that failed outside any test (an import error, a hook, an unhandled error) has no failed test.
  if (f.status === 'failed' && tests.length === 0) failed.push({ where: rel, why: f.message ?? '(failed outside a test)' });
}
let rc = 0;
const show = (x) => {
  for (const line of plain(x.why).split('\n').filter((l) => l.trim()).slice(0, 6)) console.log(`     ${line.slice(0, 300)}`);
};
if (flaky.length) {
  console.log(`==> flaky: failed once, passed on the retry (${flaky.length}); fix these`);
  for (const x of flaky) { console.log(`FLAKY ${x.where}`); show(x); }
}
if (failed.length) {
  rc = 1;
  console.log(`==> failed (${failed.length})`);
  for (const x of failed) {
    console.log(`FAIL ${x.where}`);
    show(x);
  }
}
const rel = path.join(root, '.cache', 'reliability.jsonl');
if (existsSync(rel)) {
  const latest = new Map();
  for (const line of readFileSync(rel, 'utf8').split('\n')) {
    try { const x = JSON.parse(line); latest.set(x.id, x); } catch { /* a torn or empty line */ }
  }
  for (const x of latest.values()) if (x.held === false) { rc = 1; console.log(`NOT HELD ${x.id} ${x.name}: ${x.figure}`); }
}
if (r.numTotalTests === 0) { console.error('error: no test ran'); rc = 1; }
console.log(`${r.numPassedTests} passed (${flaky.length} on a retry), ${r.numFailedTests} failed, ${r.numPendingTests + r.numTodoTests} skipped` +
  (r.success === false && failed.length === 0 ? ' (vitest reported a failure outside the tests: unhandled errors, see above)' : ''));
if (r.success === false) rc = 1;
process.exit(rc);
