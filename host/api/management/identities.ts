/**
 * Module identities on the management API, as IoT Edge has them (`GET/POST /identities`,
 * `PUT/DELETE /identities/{name}`), where POST registers a **native** module (kind `native`: a process or
 * container using an Azure IoT SDK) and gives it its own workload socket; component modules get their
 * identity from their registration (`/modules`). `GET /identities/{name}/env` (Edgeward) is the IOTEDGE_*
 * environment such a module needs.
 */
import { Hono } from 'hono';
import { z } from 'zod';
import { badRequest } from '../errors.js';
import { readJsonBody } from '../body.js';
import { apiVersion } from '../middleware/api-version.js';
import { MGMT_API_VERSION } from '../versions.js';
import { RuntimeError } from '../../runtime/types.js';
import type { NativeModuleService } from '../native-modules.js';

const postSchema = z
  .object({
    moduleId: z.string().min(1).max(65),
    managedBy: z.string().max(64).optional(),
    kind: z.literal('native').optional(),
    uid: z.number().int().nonnegative().max(2 ** 31).optional(),
  })
  .strict();

/** `provisioning`: what identityd's GET /identities/provisioning answers (source, auth, endpoint, scope…). */
export function identitiesRoutes(native: NativeModuleService, provisioning: () => unknown): Hono {
  const app = new Hono();
  app.get('/', (c) => c.json({ identities: native.identities() }));
  app.get('/provisioning', (c) => c.json(provisioning()));
  app.post('/', async (c) => {
    const body = await readJsonBody(c, { maxBytes: 4096 });
    const r = postSchema.safeParse(body);
    if (!r.success) badRequest(`invalid identity: ${r.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ')}`);
    return c.json(await native.register(r.data.moduleId, r.data.uid), 200);
  });
  app.put('/:name', async (c) => c.json(await native.regenerate(c.req.param('name')), 200));
  app.delete('/:name', async (c) => {
    if (!(await native.remove(c.req.param('name')))) throw new RuntimeError('not-found', `module "${c.req.param('name').slice(0, 80)}" not found`);
    return c.body(null, 204);
  });
  app.get('/:name/env', apiVersion({ minimum: MGMT_API_VERSION }), (c) => c.json({ env: native.env(c.req.param('name')) }));
  return app;
}
