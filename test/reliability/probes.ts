/** What the reliability tests read about this process (the daemon's side of the sandbox) from /proc. */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';

export const MiB = 1024 * 1024;

/** Open file descriptors of this process. */
export const openFds = (): number => readdirSync('/proc/self/fd').length;

/** Threads of this process (the main thread, libuv and V8 helpers, one per sandbox worker). */
export const threads = (): number => readdirSync('/proc/self/task').length;

/** A field of /proc/self/status in bytes (VmRSS, VmHWM: kB there). */
function statusBytes(field: 'VmRSS' | 'VmHWM'): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync('/proc/self/status', 'utf8'));
  if (!m) throw new Error(`/proc/self/status has no ${field}`);
  return Number(m[1]) * 1024;
}

/**
 * Peak RSS from now on: resets the kernel's high-water mark (clear_refs 5, Linux >= 4.0) and returns a
 * function that answers how far the peak rose above the RSS at the reset.
 */
export function peakRssFromNow(): () => number {
  writeFileSync('/proc/self/clear_refs', '5');
  const base = statusBytes('VmRSS');
  return () => statusBytes('VmHWM') - base;
}

/** Bytes this process has read through read(2) and friends so far (/proc/self/io rchar). */
export function bytesRead(): number {
  const m = /^rchar:\s+(\d+)$/m.exec(readFileSync('/proc/self/io', 'utf8'));
  if (!m) throw new Error('/proc/self/io has no rchar');
  return Number(m[1]);
}

/** Median and maximum of a list of numbers. */
export function p50max(xs: readonly number[]): { p50: number; max: number } {
  const s = [...xs].sort((a, b) => a - b);
  return { p50: s[Math.floor(s.length / 2)] ?? NaN, max: s.at(-1) ?? NaN };
}
