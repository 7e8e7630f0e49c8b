/** generated/ holds what jco writes from the WIT today (regenerate: npm run gen:wit). */
import { expect, it } from 'vitest';
import { generatedDrift } from '../../../scripts/gen-capability-types.js';

it('generated/ matches the WIT (run `npm run gen:wit` after changing it)', async () => {
  expect(await generatedDrift('attest')).toEqual([]);
}, 60_000);
