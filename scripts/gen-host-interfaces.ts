/**
 * Regenerates host/boundary/generated/host-interfaces.ts: the types of every interface the host serves,
 * read from wit/ and jco's WASI WIT (`npm run gen:wit`). The deploy-time import type check compares each
 * component against this table; host/boundary/generated.test.ts fails when it drifts from the WIT.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { hostInterfaceTable } from '../host/capabilities/wit-table.js';
import { renderHostInterfaces } from '../host/boundary/render.js';

const out = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../host/boundary/generated/host-interfaces.ts');
writeFileSync(out, renderHostInterfaces(await hostInterfaceTable()));
console.log(`wrote ${path.relative(process.cwd(), out)}`);
