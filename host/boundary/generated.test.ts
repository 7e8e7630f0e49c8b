/** The generated host interface table is what wit/ and jco's WASI WIT say today (regenerate: npm run gen:wit). */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { hostInterfaceTable } from '../capabilities/wit-table.js';
import { renderHostInterfaces } from './render.js';

it('generated/host-interfaces.ts matches the WIT (run `npm run gen:wit` after changing wit/)', async () => {
  const file = path.join(path.dirname(fileURLToPath(import.meta.url)), 'generated', 'host-interfaces.ts');
  expect(renderHostInterfaces(await hostInterfaceTable())).toBe(readFileSync(file, 'utf8'));
}, 60_000);
