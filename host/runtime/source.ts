/**
 * Where component bytes come from: a file path, a `file://` URL or an `https://` URL (fetch-source.ts).
 */
import { promises as fs } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { RuntimeError } from './errors.js';
import { fetchHttps } from './fetch-source.js';

/** Largest component accepted (a componentize-js guest is ~12 MB). */
export const MAX_COMPONENT_BYTES = 128 * 1024 * 1024;

/**
 * Read component bytes from a file path, `file://` URL or `https://` URL. An https source must carry
 * a digest (IoT Edge's `settings.digest`): bytes fetched over the network are only trusted by hash.
 */
export async function readSource(source: string, pin?: string): Promise<Uint8Array> {
  if (source.startsWith('https://')) {
    if (!pin) throw new RuntimeError('invalid', `source ${source}: an https source needs "digest": "sha256:…"`);
    return fetchHttps(source, { maxBytes: MAX_COMPONENT_BYTES });
  }
  if (/^[a-z]+:\/\//.test(source) && !source.startsWith('file://')) {
    throw new RuntimeError('invalid', `source ${source}: only file paths, file:// and https:// are supported`);
  }
  const file = source.startsWith('file://') ? fileURLToPath(source) : source;
  const st = await fs.stat(file).catch(() => {
    throw new RuntimeError('invalid', `source ${source}: no such file`);
  });
  if (!st.isFile()) throw new RuntimeError('invalid', `source ${source}: not a regular file`);
  if (st.size > MAX_COMPONENT_BYTES) throw new RuntimeError('invalid', `source ${source}: larger than ${MAX_COMPONENT_BYTES} bytes`);
  const data = await fs.readFile(file);
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength); // a view, not a copy
}
