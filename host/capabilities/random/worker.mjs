// wasi:random (random, insecure, insecure-seed), built inside the sandbox worker for one instance from
// node:crypto. A request is capped so a guest cannot make the host allocate without bound.
import { randomBytes } from 'node:crypto';

export const MAX_RANDOM_BYTES = 64 * 1024;

/** @param {bigint} len a u64 */
function bytes(len) {
  const n = Number(len);
  if (!Number.isSafeInteger(n) || n < 0 || n > MAX_RANDOM_BYTES) throw new RangeError(`random: at most ${MAX_RANDOM_BYTES} bytes per call`);
  return new Uint8Array(randomBytes(n));
}
const u64 = () => randomBytes(8).readBigUInt64LE();

export function imports() {
  return {
    'wasi:random/random': { getRandomBytes: bytes, getRandomU64: u64 },
    'wasi:random/insecure': { getInsecureRandomBytes: bytes, getInsecureRandomU64: u64 },
    'wasi:random/insecure-seed': { insecureSeed: () => [u64(), u64()] },
  };
}
