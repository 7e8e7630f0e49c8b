// Bench only (bench/workload.ts): the baseline for the workload API's `sign` — a bare hono app on Unix
// sockets, served the way Edgeward serves its apps (@hono/node-server's request listener on node:http),
// answering the same JSON. Per request it does what a minimal sign must: parse the JSON body, decode
// `data` from base64, HMAC-SHA256 it with the module's key (HMAC-SHA256(master, module name), derived once
// at start and held in memory) and answer {"digest": base64}. No api-version check, no caller check, no
// limits, no key service. argv: a JSON object {socketPath: moduleName}; the master key (base64) on stdin.
// Prints "ready" once every socket listens.
import http from 'node:http';
import { createHmac } from 'node:crypto';
import { rmSync } from 'node:fs';
import { getRequestListener } from '@hono/node-server';
import { Hono } from 'hono';

const sockets = JSON.parse(process.argv[2]);
let stdin = '';
for await (const c of process.stdin) stdin += c;
const master = Buffer.from(stdin, 'base64');
const keys = new Map(Object.values(sockets).map((m) => [m, createHmac('sha256', master).update(m).digest()]));

const app = new Hono();
app.post('/modules/:name/genid/:genid/sign', async (c) => {
  const key = keys.get(c.req.param('name'));
  if (!key) return c.json({ message: 'forbidden' }, 403);
  const body = await c.req.json();
  const digest = createHmac('sha256', key).update(Buffer.from(body.data, 'base64')).digest('base64');
  return c.json({ digest });
});

const listener = getRequestListener(app.fetch);
await Promise.all(
  Object.keys(sockets).map((p) => {
    rmSync(p, { force: true });
    return new Promise((resolve) => http.createServer(listener).listen(p, resolve));
  }),
);
process.stdout.write('ready\n');
process.on('SIGTERM', () => process.exit(0));
