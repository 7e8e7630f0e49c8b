/** Types of worker.mjs (the sandbox worker loads the .mjs itself; unit tests import it). */
export const HOST_INTERFACE: string;
export const MAX_FIELDS: number;
export function imports(ctx: { host?: Record<string, Record<string, (...args: unknown[]) => unknown>>; maxValueBytes: number }): Record<string, Record<string, any>>;
