/**
 * Prometheus metrics (opt-in, `[metrics] listen`): the daemon's families and hooks (daemon-metrics.ts),
 * the registry and its 0.0.4 text (registry.ts), the listener (listener.ts). services.ts composes them:
 * `openMetrics` is undefined when `[metrics]` is absent, and then nothing is wrapped or served.
 */
import { parseMetricsListen } from '../config/metrics.js';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log.js';
import { EDGEWARD_VERSION, JCO_VERSION } from '../version.js';
import { DaemonMetrics } from './daemon-metrics.js';
import { serveMetrics } from './listener.js';

export { DaemonMetrics, KEY_OPERATIONS, MODULE_STATES } from './daemon-metrics.js';
export { METRICS_CONTENT_TYPE, serveMetrics, type MetricsListener } from './listener.js';
export { escapeLabelValue, Registry } from './registry.js';

/** The daemon's metrics when `[metrics]` is configured; undefined (metrics off) otherwise. */
export function openMetrics(config: Config): DaemonMetrics | undefined {
  return config.metrics ? new DaemonMetrics({ version: EDGEWARD_VERSION, jcoVersion: JCO_VERSION }) : undefined;
}

/** Serve `metrics` on `[metrics] listen` (the schema has checked the address); returns what closes it. */
export async function listenMetrics(config: Config, metrics: DaemonMetrics, logger: Logger): Promise<() => Promise<void>> {
  const listen = parseMetricsListen(config.metrics!.listen);
  if (typeof listen === 'string') throw new Error(`[metrics] listen: ${listen}`); // unreachable: the schema refused it
  const listener = await serveMetrics(listen, () => metrics.render(), logger);
  logger.info({ address: listener.address }, 'metrics listening');
  return () => listener.close();
}
