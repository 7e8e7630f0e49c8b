/**
 * The typed boundary's cost, each against a baseline measured side by side in the same run:
 * - the deploy-time type check of a componentize-js guest (read its declared types from the 12 MB binary
 *   and compare them with the host's WIT) vs the sha256 measurement every deploy and start already does
 *   over the same bytes;
 * - the argument check at a capability entry (validate.mjs) vs calling the same function unguarded, for
 *   the always-linked `logging.log(level, message)` and the HSM `sign(key, algorithm, message)`.
 * Target (issue 11): the checks cost a small fraction of what they guard: type check ≤ 0.5× the sha256 of
 * the component; guarded call overhead ≤ 1 µs.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkBoundary, componentTypes } from '../host/boundary/check.js';
import { HOST_INTERFACES } from '../host/boundary/generated/host-interfaces.js';
import { guardInterface } from '../host/boundary/validate.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function timeMs(fn: () => void, runs: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    fn();
    out.push(performance.now() - t0);
  }
  return out;
}

const hello = path.join(root, 'guests/hello/dist/hello.wasm');
if (!existsSync(hello)) throw new Error('build the sample guests first: npm run build:guests');
const bytes = new Uint8Array(readFileSync(hello));
const check = () => {
  const t = componentTypes('hello', bytes);
  checkBoundary('hello', t);
};
const sha = () => { createHash('sha256').update(bytes).digest(); };
check(); sha(); // warm-up
const checkMs: number[] = [];
const shaMs: number[] = [];
for (let i = 0; i < 15; i++) {
  checkMs.push(...timeMs(check, 1));
  shaMs.push(...timeMs(sha, 1));
}
const c = median(checkMs);
const s = median(shaMs);
console.log(`type check of hello (${(bytes.length / 1e6).toFixed(1)} MB): ${c.toFixed(2)} ms; sha256 of the same bytes: ${s.toFixed(2)} ms`);
console.log(`type check / sha256 ratio = ${(c / s).toFixed(3)} (target ≤ 0.5)`);

/** ns per call of `f` over n calls, median of 7 rounds. */
function nsPerCall(f: () => void, n = 200_000): number {
  const rounds: number[] = [];
  for (let r = 0; r < 7; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) f();
    rounds.push(Number(process.hrtime.bigint() - t0) / n);
  }
  return median(rounds);
}

let sink = 0;
const rawLog = { log: (level: string, message: string) => { sink += level.length + message.length; } };
const guardedLog = guardInterface('edgeward:module/logging', HOST_INTERFACES.imports['edgeward:module/logging']!, { ...rawLog });
const rawSign = { sign: (key: string, algorithm: unknown, message: Uint8Array) => { sink += key.length + message.length + (algorithm ? 1 : 0); } };
const guardedSign = guardInterface('edgeward:hsm/keys', HOST_INTERFACES.imports['edgeward:hsm/keys']!, { ...rawSign });
const msg = new Uint8Array(64);
const alg = (HOST_INTERFACES.imports['edgeward:hsm/keys']!.exports['sign'] as { params: { type: { k: string; names?: string[]; cases?: { name: string }[] } }[] }).params[1]!.type;
const algValue = alg.k === 'enum' ? alg.names![0] : { tag: alg.cases![0]!.name };
for (const [name, raw, guarded] of [
  ['logging.log', () => rawLog.log('info', 'a line of forty characters, more or less'), () => guardedLog.log('info', 'a line of forty characters, more or less')],
  ['keys.sign', () => rawSign.sign('handle.abc.def', algValue, msg), () => guardedSign.sign('handle.abc.def', algValue as never, msg)],
] as const) {
  raw(); guarded();
  const r = nsPerCall(raw);
  const g = nsPerCall(guarded);
  console.log(`${name}: guarded ${g.toFixed(0)} ns/call, unguarded ${r.toFixed(0)} ns/call, overhead ${(g - r).toFixed(0)} ns = ${((g - r) / 1000).toFixed(3)} µs (target ≤ 1 µs)`);
}
if (sink < 0) console.log(sink);
