/** The logger the roots of trust write to: pino's interface (the daemon passes its own child loggers). */
export type { Logger } from 'pino';
