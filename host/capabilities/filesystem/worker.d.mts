/** Types of worker.mjs (the sandbox worker loads the .mjs itself; the unit test imports it). */
export const DATA_QUOTA_BYTES: number;
export const ENTRY_BYTES: number;
export const MAX_PATH_BYTES: number;
export const MAX_IO_BYTES: number;
export const MAX_LIVE_DESCRIPTORS: number;
export const PREOPEN_NAME: string;
export function imports(ctx: { dataDir?: string }): Record<string, Record<string, unknown>>;
