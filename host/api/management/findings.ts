/**
 * Management route for the findings security extensions submitted (`edgeward:monitor/findings`), mounted
 * at `/findings` by the daemon's services.
 *
 *   GET /?since=f-ID&limit=N  → 200 {"findings": [{id, time, source, ruleId, severity, summary, evidence, tags, subject?}],
 *                                    "dropped": N, "quarantined": {module: {by, reason, time}}}
 *   Newest last; `since` keeps those after that id, `limit` (1..1000) the last N.
 */
import { Hono } from 'hono';
import { MAX_FINDINGS, type FindingsStore } from '../../capabilities/monitor/findings-store.js';

export function findingsRoutes(store: FindingsStore): Hono {
  const app = new Hono();
  app.get('/', (c) => {
    const { findings, dropped } = store.list();
    const since = c.req.query('since');
    const limitText = c.req.query('limit');
    const limit = limitText === undefined ? MAX_FINDINGS : Number(limitText);
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_FINDINGS) return c.json({ message: `limit: an integer from 1 to ${MAX_FINDINGS}` }, 400);
    const from = since === undefined ? 0 : findings.findIndex((f) => f.id === since) + 1;
    return c.json({ findings: findings.slice(from).slice(-limit), dropped, quarantined: store.quarantinedAll() });
  });
  return app;
}
