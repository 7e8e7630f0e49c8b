// A worker-side module for test/runtime-start.test.ts: evaluating it writes the file named by its URL's
// `out` query, so a test sees whether (and when) a sandbox worker imported it.
import { writeFileSync } from 'node:fs';

const out = new URL(import.meta.url).searchParams.get('out');
if (out) writeFileSync(out, 'evaluated');

export function imports() {
  return {};
}
