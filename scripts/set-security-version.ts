/**
 * Stamp a component with a security version (anti-rollback, host/runtime/rollback.ts): appends the
 * top-level custom section `edgeward.security-version` with the version in ASCII decimal. Sign the
 * output, not the input: the signature is what makes the version count.
 *   npx tsx scripts/set-security-version.ts in.wasm 3 out.wasm
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { readSecurityVersion, withSecurityVersion } from '../host/runtime/rollback.js';

const [input, version, output] = process.argv.slice(2);
if (!input || !version || !output || !/^\d+$/.test(version)) {
  console.error('usage: npx tsx scripts/set-security-version.ts IN.wasm VERSION OUT.wasm');
  process.exit(2);
}
const bytes = readFileSync(input);
const had = readSecurityVersion(bytes);
if (had !== undefined) {
  console.error(`${input} already carries security version ${had}: stamp the unstamped build`);
  process.exit(1);
}
writeFileSync(output, withSecurityVersion(bytes, Number(version)));
console.log(`wrote ${output} with security version ${version}; now sign it (openssl dgst -sha256 -sign key.pem -out ${output}.sig ${output})`);
