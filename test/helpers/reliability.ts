/**
 * The reliability table (../shared/reference/reliability-scenarios.md): every scenario test calls
 * `report(id, figure)` with the number it measured. Lines go to the console (so `vitest` output shows
 * them) and, one JSON object per line, to `.cache/reliability.jsonl` (or `$EDGEWARD_RELIABILITY_OUT`),
 * which `scripts/reliability-table.mjs` prints as one table after `npm run test:reliability`.
 */
import { appendFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import SCENARIO_NAMES from './reliability-scenarios.json' with { type: 'json' };

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const OUT = process.env.EDGEWARD_RELIABILITY_OUT ?? path.join(ROOT, '.cache', 'reliability.jsonl');

/** Scenario ids of the reference table in its order, with the short name the table prints (one list, shared with scripts/reliability-table.mjs). */
export const SCENARIOS = SCENARIO_NAMES;

export type ScenarioId = keyof typeof SCENARIOS;

/** Record one scenario's figure (a short human sentence with its numbers) and whether it held. */
export function report(id: ScenarioId, figure: string, held = true): void {
  const line = { id, name: SCENARIOS[id], figure, held, at: new Date().toISOString() };
  console.log(`[${id}] ${SCENARIOS[id]}: ${figure}${held ? '' : ' (DID NOT HOLD)'}`);
  try {
    mkdirSync(path.dirname(OUT), { recursive: true });
    appendFileSync(OUT, `${JSON.stringify(line)}\n`);
  } catch {
    // The table is a report; a read-only checkout still runs the test.
  }
}
