import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ManualClock } from '../../../test/helpers/clock.ts';
import { startUpstream, type Upstream } from '../../../test/helpers/servers.ts';
import { Endpoint } from './endpoint.ts';
import { HealthChecker, type HealthEvent, healthSettings } from './health-check.ts';

async function until(condition: () => boolean, what: string, timeoutMs = 3000) {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

describe('active health checks', () => {
  let upstream: Upstream;
  let status = 200;
  let hang = false;
  before(async () => {
    upstream = await startUpstream((req, res) => {
      if (hang) return;
      res.statusCode = req.url === '/healthz' ? status : 404;
      res.end('ok');
    });
  });
  after(() => upstream.close());

  function setup(config: Partial<Parameters<typeof healthSettings>[0]> = {}) {
    const clock = new ManualClock();
    const endpoint = new Endpoint(upstream.url, {}, 1, {
      connectTimeoutMs: 1000,
      maxConnections: 1,
      keepAliveMs: 1000,
    });
    const events: HealthEvent[] = [];
    const checker = new HealthChecker(
      healthSettings({ path: '/healthz', interval: '1s', jitter: '0', ...config }),
      [endpoint],
      clock,
      (e) => events.push(e),
      () => 0.5,
    );
    return { clock, endpoint, events, checker, record: () => checker.record(endpoint)! };
  }

  it('starts unchecked, and the first passing check makes the endpoint healthy at once', async () => {
    status = 200;
    const { clock, endpoint, checker, record, events } = setup({ healthyThreshold: 3 });
    assert.equal(endpoint.health, 'unchecked');
    assert.equal(endpoint.available, false);
    checker.start();
    clock.advance(0);
    await until(() => record().checks === 1, 'the first check');
    assert.equal(endpoint.health, 'healthy');
    assert.equal(endpoint.available, true);
    assert.equal(events.at(-1)?.status, 'healthy');
    assert.equal(upstream.seen.at(-1)?.headers['user-agent'], 'meshgate-health-check');
    checker.stop();
  });

  it('takes an endpoint out after unhealthyThreshold failures and back after healthyThreshold passes', async () => {
    status = 200;
    const { clock, endpoint, checker, record } = setup({ unhealthyThreshold: 2, healthyThreshold: 2 });
    checker.start();
    clock.advance(0);
    await until(() => record().checks === 1, 'check 1');
    status = 503;
    clock.advance(1000);
    await until(() => record().checks === 2, 'check 2');
    assert.equal(endpoint.health, 'healthy', 'one failure is not enough');
    clock.advance(1000);
    await until(() => record().checks === 3, 'check 3');
    assert.equal(endpoint.health, 'unhealthy');
    assert.equal(record().lastResult, 'status 503');
    status = 200;
    clock.advance(1000);
    await until(() => record().checks === 4, 'check 4');
    assert.equal(endpoint.health, 'unhealthy', 'one pass is not enough');
    clock.advance(1000);
    await until(() => record().checks === 5, 'check 5');
    assert.equal(endpoint.health, 'healthy');
    checker.stop();
  });

  it('schedules each check an interval plus jitter after the last one ends', async () => {
    status = 200;
    const { clock, checker, record } = setup({ interval: '1s', jitter: '400ms' });
    checker.start();
    clock.advance(0);
    await until(() => record().checks === 1, 'check 1');
    await until(() => clock.pending === 1, 'the next check to be scheduled');
    clock.advance(1199); // random() is 0.5: the next check is due at 1000 + 200 ms
    // Its timer has not fired (the manual clock fires due timers inside advance()).
    assert.equal(clock.pending, 1, 'the next check is still waiting');
    assert.equal(record().checks, 1);
    clock.advance(1);
    assert.equal(clock.pending, 0, 'the check started');
    await until(() => record().checks === 2, 'check 2');
    checker.stop();
  });

  it('fails a check that takes longer than the timeout', async () => {
    hang = true;
    try {
      const { clock, endpoint, checker, record } = setup({ timeout: '100ms' });
      checker.start();
      clock.advance(0);
      await until(() => record().checks === 1, 'the timed-out check');
      assert.equal(record().lastResult, 'timeout');
      assert.equal(endpoint.health, 'unhealthy');
      checker.stop();
    } finally {
      hang = false;
    }
  });

  it('accepts the configured statuses and ranges only', async () => {
    status = 204;
    const { clock, endpoint, checker, record } = setup({ expectedStatuses: [200, '300-399'] });
    checker.start();
    clock.advance(0);
    await until(() => record().checks === 1, 'check');
    assert.equal(endpoint.health, 'unhealthy');
    assert.equal(record().lastResult, 'status 204');
    checker.stop();
  });

  it('a refused connection fails the check', async () => {
    const gone = await startUpstream();
    await gone.close();
    const clock = new ManualClock();
    const endpoint = new Endpoint(gone.url, {}, 1, { connectTimeoutMs: 1000, maxConnections: 1, keepAliveMs: 1000 });
    const checker = new HealthChecker(healthSettings({ path: '/healthz' }), [endpoint], clock, () => {});
    assert.equal(await checker.check(endpoint), false);
    assert.equal(checker.record(endpoint)!.lastResult, 'connect failure: ECONNREFUSED');
    checker.stop();
  });

  it('stop() cancels the schedule', async () => {
    status = 200;
    const { clock, checker, record } = setup();
    checker.start();
    clock.advance(0);
    await until(() => record().checks === 1, 'check 1');
    await until(() => clock.pending === 1, 'the next check to be scheduled');
    checker.stop();
    assert.equal(clock.pending, 0);
    clock.advance(10_000);
    // Nothing was left to fire: no check can start, now or later.
    assert.equal(clock.pending, 0);
    assert.equal(record().checks, 1);
  });
});
