/**
 * System routes: IoT Edge's GET /systeminfo and /systeminfo/resources, and Edgeward's own
 * /system/status, /system/log-level, /system/restart, /system/logs and /config/reload; IoT Edge's
 * POST /device/reprovision.
 */
import os from 'node:os';
import { promises as fs } from 'node:fs';
import { Hono } from 'hono';
import { stream } from 'hono/streaming';
import type { StreamingApi } from 'hono/utils/stream';
import { apiVersion } from '../middleware/api-version.js';
import { badRequest } from '../errors.js';
import { readJsonBody } from '../body.js';
import { logLevelSchema } from '../../config/schema.js';
import type { DaemonControl } from './control.js';
import { MGMT_API_VERSION } from '../versions.js';
import type { MemoryBudget } from '../../status.js';

const MAX_TAIL = 100_000;

/**
 * `memory`: the runtime's memory budget (host/runtime/memory-budget.ts), added to /system/status as its
 * `memory` object (an Edgeward extension; absent when the runtime does not report one).
 */
export function systemRoutes(daemon: DaemonControl, memory?: () => Promise<MemoryBudget>): Hono {
  const app = new Hono();
  app.get('/systeminfo', apiVersion(), (c) => c.json(systemInfo(daemon)));
  app.get('/systeminfo/resources', apiVersion({ minimum: '2019-11-05' }), (c) => c.json(systemResources()));

  const own = apiVersion({ minimum: MGMT_API_VERSION });
  app.get('/system/status', own, async (c) => {
    // The budget is extra: its failure never fails the status.
    const [status, budget] = await Promise.all([daemon.status(), memory?.().catch(() => undefined)]);
    return c.json(budget ? { ...status, memory: budget } : status);
  });
  app.put('/system/log-level', own, async (c) => {
    const body = await readJsonBody(c, { required: true, maxBytes: 1024 });
    const parsed = logLevelSchema.safeParse((body as { level?: unknown } | undefined)?.level);
    if (!parsed.success) badRequest(`invalid level: expected one of ${logLevelSchema.options.join(', ')}`);
    daemon.setLogLevel(parsed.data);
    return c.json({ level: parsed.data });
  });
  app.post('/system/restart', own, (c) => {
    daemon.requestRestart();
    return c.json({ message: 'restarting' }, 202);
  });
  app.post('/config/reload', own, async (c) => c.json(await daemon.reload()));
  // IoT Edge's route: 204, then the daemon restarts onto the new assignment.
  app.post('/device/reprovision', apiVersion({ minimum: '2019-10-22' }), async (c) => {
    await daemon.reprovision();
    return c.body(null, 204);
  });
  app.get('/system/logs', own, async (c) => {
    const tailRaw = c.req.query('tail');
    if (tailRaw !== undefined && !/^\d{1,6}$/.test(tailRaw)) badRequest('invalid tail: expected a number');
    const tail = tailRaw === undefined ? 200 : Math.min(Number(tailRaw), MAX_TAIL);
    const follow = c.req.query('follow') === 'true';
    c.header('content-type', 'text/plain; charset=utf-8');
    return stream(c, (s) => streamDaemonLog(s, daemon, tail, follow));
  });
  return app;
}

/** The last `tail` lines of the daemon's log, then (with `follow`) what is appended, until the client goes. */
async function streamDaemonLog(s: StreamingApi, daemon: DaemonControl, tail: number, follow: boolean): Promise<void> {
  const file = daemon.logFile;
  const text = await fs.readFile(file, 'utf8').catch(() => '');
  const lines = text.split('\n').filter(Boolean);
  for (const line of lines.slice(-tail)) await s.write(line + '\n');
  if (!follow) return;
  let offset = Buffer.byteLength(text);
  let open = true;
  s.onAbort(() => {
    open = false;
  });
  while (open && !daemon.stopping) {
    await new Promise((r) => setTimeout(r, 250));
    const st = await fs.stat(file).catch(() => undefined);
    if (!st) continue;
    if (st.size < offset) offset = 0; // rotated
    if (st.size > offset) {
      const fh = await fs.open(file, 'r');
      const buf = Buffer.alloc(st.size - offset);
      await fh.read(buf, 0, buf.length, offset);
      await fh.close();
      offset = st.size;
      await s.write(buf.toString('utf8'));
    }
  }
}

/** IoT Edge SystemResources (no disks: a WASI module has no filesystem of its own to report). */
function systemResources(): Record<string, unknown> {
  const mem = process.memoryUsage();
  return {
    host_uptime: Math.round(os.uptime()),
    process_uptime: Math.round(process.uptime()),
    used_cpu: os.loadavg()[0],
    used_ram: os.totalmem() - os.freemem(),
    total_ram: os.totalmem(),
    process_rss: mem.rss,
    disks: [],
  };
}

/** IoT Edge SystemInfo, plus Edgeward's runtime platform fields. */
export function systemInfo(daemon: DaemonControl): Record<string, unknown> {
  return {
    osType: os.platform(),
    kernel_release: os.release(),
    kernel_version: os.version(),
    architecture: os.machine(),
    cpus: os.cpus().length,
    total_memory: os.totalmem(),
    version: daemon.version,
    server_version: `node ${process.versions.node}; v8 ${process.versions.v8}`,
    runtime: { platform: 'wasi-p2-components', node: process.versions.node, v8: process.versions.v8, jco: daemon.jcoVersion },
    uptime: Math.round(process.uptime()),
    provisioning: { type: daemon.provisioningType, dynamicReprovisioning: false, alwaysReprovisionOnStartup: false },
  };
}
