import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import { moduleCaller } from './module-caller.js';

const generations = new Map([['sensor', 'g1'], ['$edgeAgent', 'g7']]);

function app(bound: string | undefined): Hono {
  const registered = { bound, generationOf: (m: string) => generations.get(m) };
  const a = new Hono();
  a.post('/modules/:name/genid/:genid/sign', moduleCaller({ ...registered, withGenid: true }), (c) => c.text(c.get('module')));
  a.post('/modules/:name/certificate/identity', moduleCaller(registered), (c) => c.text(c.get('module')));
  return a;
}

describe('moduleCaller', () => {
  it('the caller is the bound module, named by the path with or without its $', async () => {
    expect(await (await app('sensor').request('/modules/sensor/genid/g1/sign', { method: 'POST' })).text()).toBe('sensor');
    expect(await (await app('$edgeAgent').request('/modules/edgeAgent/certificate/identity', { method: 'POST' })).text()).toBe('$edgeAgent');
  });

  it('another module, an unregistered one, a stale generation or the shared socket: the same 403', async () => {
    const refused = [
      [app('sensor'), '/modules/other/genid/g1/sign'],
      [app('sensor'), '/modules/sensor/genid/g0/sign'],
      [app('ghost'), '/modules/ghost/certificate/identity'],
      [app(undefined), '/modules/sensor/genid/g1/sign'],
    ] as const;
    for (const [a, p] of refused) {
      const r = await a.request(p, { method: 'POST' });
      expect(r.status, p).toBe(403);
      expect(await r.text()).toBe('{"message":"forbidden"}');
    }
  });
});
