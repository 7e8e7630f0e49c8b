/**
 * The reliability table (../shared/reference/reliability-scenarios.md): every scenario test calls
 * `report(id, figure)` with the number it measured. Lines go to the console (so `vitest` output shows
 * them) and, one JSON object per line, to `.cache/reliability.jsonl` (or `$EDGEWARD_RELIABILITY_OUT`),
 * which `scripts/reliability-table.mjs` prints as one table after `npm run test:reliability`.
 */
import { appendFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const OUT = process.env.EDGEWARD_RELIABILITY_OUT ?? path.join(ROOT, '.cache', 'reliability.jsonl');

/** Scenario ids of the reference table, with the short name the table prints. */
export const SCENARIOS = {
  G1: 'guest spins in an export',
  G2: 'memory bomb',
  G3: 'handle exhaustion',
  G4: 'oversized value to a capability',
  G5: 'guest calls wasi:cli/exit',
  G6: 'trap while holding an HSM session',
  G8: 'network grant per module',
  G9: '500 instantiate/dispose cycles',
  W1: 'import type-check at deploy',
  W2: 'forged, dropped, foreign handles',
  W3: 'malformed lowered values trap',
  W4: 'round-trip property test',
  W5: 'differential across key backends',
  W6: 'modified component, cache or pin',
  A1: 'cross-module identity request',
  A3: 'missing marker header',
  A5: 'oversized bodies, headers, slowloris',
  A7: 'connection flood on one module socket',
  A8: 'socket mode and stale socket',
  H1: 'kill -9 during key creation',
  H2: '1000 concurrent signs',
  H3: 'Parsec-style stress',
  H4: 'bad token, PIN, library',
  H5: 'restart keeps keys',
  H6: 'swtpm reset while running',
  H7: 'TPM dictionary-attack lockout',
  H8: 'TPM object slots exhausted',
  H9: 'fuzz decoders and front ends',
  H10: 'multitenancy of key ids',
  D1: 'a throwing capability',
} as const;

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
