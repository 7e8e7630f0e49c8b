/** Types of worker.mjs (the sandbox worker loads the .mjs itself; unit tests import it). */
export const HOST_INTERFACE: string;
export const MAX_FIELDS: number;
/** Live wasi:http and wasi:io resources one instance may hold (io/worker.mjs). */
export const MAX_LIVE_RESOURCES: number;
export function imports(ctx: { host?: Record<string, Record<string, (...args: unknown[]) => unknown>>; maxValueBytes: number }): Record<string, Record<string, any>>;
