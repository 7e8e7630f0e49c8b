/** What `edgeward system status` shows of one service; every service reports itself in this shape. */
export interface ServiceStatus {
  name: string;
  status: 'running' | 'ready' | 'degraded' | 'down';
  detail: string;
}

/**
 * The memory budget `system status` shows (host/runtime/memory-budget.ts), in bytes. The daemon's figures
 * are the whole process (its RSS includes every sandbox worker thread); a module's are its own share.
 */
export interface MemoryBudget {
  daemon: { rss: number; heapUsed: number; heapTotal: number; external: number; arrayBuffers: number };
  modules: ModuleMemory[];
  /** Component bytes per digest, counted once however many modules run it; `modules` are those that share it. */
  code: { digest: string; bytes: number; modules: string[] }[];
  /** How long each worker had to answer (a worker busy in a guest call answers after it). */
  probeTimeoutMs: number;
}

/** One running module's share. Figures are null when its worker did not answer in time (`state: busy`). */
export interface ModuleMemory {
  name: string;
  digest: string;
  state: 'ok' | 'busy';
  /** Sum of its instance's linear memories' byte lengths (grown; RSS counts only the pages touched). */
  linearBytes: number | null;
  /** Its worker's V8 heap: used, total (allocated), limit (its resourceLimits); other off-heap (external besides linear memory, malloced). */
  heapUsedBytes: number | null;
  heapTotalBytes: number | null;
  heapLimitBytes: number | null;
  externalBytes: number | null;
  /** The compiled component it shares with `codeSharedBy - 1` other modules (see MemoryBudget.code). */
  codeBytes: number;
  codeSharedBy: number;
}
