import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { startControlPlane, type TestControlPlane } from '../../../test/helpers/mesh.ts';
import { silentLogger } from '../../observability/logger.ts';
import { InstanceAgent } from './registration.ts';

describe('instance agent', () => {
  let cp: TestControlPlane | undefined;
  after(async () => cp?.close());

  it('registers the instance only once the app answers its readiness check', async () => {
    cp = await startControlPlane();
    let ready = false;
    let refusedChecks = 0;
    const app = createServer((req, res) => {
      if (req.url === '/healthz' && !ready) refusedChecks++;
      res.statusCode = req.url === '/healthz' && ready ? 200 : 503;
      res.end();
    });
    await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
    const port = (app.address() as { port: number }).port;
    const agent = new InstanceAgent({
      url: cp.url,
      registration: { id: 'photo-1', service: 'photo-service', address: '127.0.0.1', port, ttlMs: 3000 },
      app: `http://127.0.0.1:${port}`,
      readyPath: '/healthz',
      log: silentLogger(),
      checkIntervalMs: 50,
    });
    try {
      agent.start();
      // The agent has asked several times and been told 503 each time.
      const deadline0 = performance.now() + 3000;
      while (refusedChecks < 4 && performance.now() < deadline0) await sleep(10);
      assert.ok(refusedChecks >= 4, `${refusedChecks} readiness checks`);
      assert.deepEqual(await cp.registry.list(), [], 'not registered while the app answers 503');
      assert.equal(agent.status().registered, false);
      ready = true;
      await agent.appReady;
      const deadline = performance.now() + 3000;
      while ((await cp.registry.list()).length === 0 && performance.now() < deadline) await sleep(20);
      const [instance] = await cp.registry.list();
      assert.equal(instance?.id, 'photo-1');
      assert.equal(instance?.health, 'healthy');
    } finally {
      await agent.deregister();
      agent.close();
      app.close();
    }
  });
});
