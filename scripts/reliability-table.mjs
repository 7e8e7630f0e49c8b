#!/usr/bin/env node
// Prints the reliability table from the figures the scenario tests reported (test/helpers/reliability.ts):
// the newest line per scenario, in the reference table's order; a scenario with no figure says so.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const file = process.env.EDGEWARD_RELIABILITY_OUT ?? path.join(root, '.cache', 'reliability.jsonl');
const order = ['G1', 'G2', 'G3', 'G4', 'G5', 'G6', 'G8', 'G9', 'W1', 'W2', 'W3', 'W4', 'W5', 'W6', 'A1', 'A3', 'A5', 'A7', 'A8', 'H1', 'H2', 'H3', 'H4', 'H5', 'H6', 'H7', 'H8', 'H9', 'H10', 'D1'];
const latest = new Map();
if (existsSync(file)) {
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    try { const r = JSON.parse(line); latest.set(r.id, r); } catch { /* a torn line */ }
  }
}
const rows = order.map((id) => latest.get(id) ?? { id, name: '', figure: '(no figure reported in this run)', held: undefined });
console.log('| # | scenario | held | figure |');
console.log('|---|---|---|---|');
for (const r of rows) console.log(`| ${r.id} | ${r.name} | ${r.held === undefined ? '—' : r.held ? 'yes' : '**no**'} | ${r.figure.replace(/\|/g, '\\|')} |`);
if ([...latest.values()].some((r) => r.held === false)) process.exitCode = 1;
