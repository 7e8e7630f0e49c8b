#!/usr/bin/env node
// Prints the reliability table from the figures the scenario tests reported (test/helpers/reliability.ts):
// the newest line per scenario, in the reference table's order; a scenario with no figure says so.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const file = process.env.EDGEWARD_RELIABILITY_OUT ?? path.join(root, '.cache', 'reliability.jsonl');
// The scenario ids and names, in the reference table's order (shared with test/helpers/reliability.ts).
const names = JSON.parse(readFileSync(path.join(root, 'test', 'helpers', 'reliability-scenarios.json'), 'utf8'));
const order = Object.keys(names);
const latest = new Map();
if (existsSync(file)) {
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    try { const r = JSON.parse(line); latest.set(r.id, r); } catch { /* a torn line */ }
  }
}
const rows = order.map((id) => latest.get(id) ?? { id, name: names[id], figure: '(no figure reported in this run)', held: undefined });
console.log('| # | scenario | held | figure |');
console.log('|---|---|---|---|');
for (const r of rows) console.log(`| ${r.id} | ${r.name} | ${r.held === undefined ? '—' : r.held ? 'yes' : '**no**'} | ${r.figure.replace(/\|/g, '\\|')} |`);
if ([...latest.values()].some((r) => r.held === false)) process.exitCode = 1;
