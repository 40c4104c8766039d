import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock } from '../../../test/helpers/clock.ts';
import { Endpoint } from './endpoint.ts';
import { OutlierDetector, type OutlierEvent, outlierSettings } from './outlier.ts';

function setup(n: number, config: Parameters<typeof outlierSettings>[0]) {
  const clock = new ManualClock();
  const endpoints = Array.from(
    { length: n },
    (_, i) =>
      new Endpoint(`http://127.0.0.1:${10_000 + i}`, {}, 1, {
        connectTimeoutMs: 1000,
        maxConnections: 1,
        keepAliveMs: 1000,
      }),
  );
  const events: OutlierEvent[] = [];
  const detector = new OutlierDetector(outlierSettings(config), endpoints, clock, (e) => events.push(e));
  return { clock, endpoints, events, detector };
}

describe('outlier detection', () => {
  it('ejects after N consecutive errors, and a success in between resets the count', () => {
    const { endpoints, detector, events } = setup(3, { consecutiveErrors: 3, maxEjectionPercent: 100 });
    const e = endpoints[0]!;
    detector.observe(e, 500);
    detector.observe(e, 503);
    detector.observe(e, 200);
    detector.observe(e, 500);
    detector.failure(e, true);
    assert.equal(e.ejected, false);
    detector.observe(e, 502);
    assert.equal(e.ejected, true);
    assert.equal(events.at(-1)?.kind, 'ejected');
    assert.equal(detector.ejectedCount, 1);
  });

  it('4xx responses are not errors', () => {
    const { endpoints, detector } = setup(2, { consecutiveErrors: 2, maxEjectionPercent: 100 });
    for (let i = 0; i < 10; i++) detector.observe(endpoints[0]!, 404);
    assert.equal(endpoints[0]!.ejected, false);
  });

  it('returns the endpoint when its ejection time is up; repeated ejections last longer, up to the maximum', () => {
    const { clock, endpoints, detector } = setup(2, {
      consecutiveErrors: 1,
      baseEjectionTime: '1s',
      maxEjectionTime: '2500ms',
      maxEjectionPercent: 100,
      interval: '0',
    });
    const e = endpoints[0]!;
    const ejectionLength = () => {
      detector.failure(e, true);
      assert.equal(e.ejected, true);
      const start = clock.now();
      while (e.ejected) clock.advance(10);
      return clock.now() - start;
    };
    assert.equal(ejectionLength(), 1000);
    assert.equal(ejectionLength(), 2000);
    assert.equal(ejectionLength(), 2500, 'capped by maxEjectionTime');
    assert.equal(ejectionLength(), 2500);
  });

  it('forgives one past ejection per interval spent in rotation', () => {
    const { clock, endpoints, detector } = setup(2, {
      consecutiveErrors: 1,
      baseEjectionTime: '1s',
      maxEjectionPercent: 100,
      interval: '10s',
    });
    const e = endpoints[0]!;
    detector.failure(e, true);
    clock.advance(1000);
    detector.failure(e, true);
    assert.equal(e.ejectedUntil - clock.now(), 2000, 'second ejection right after the first: twice as long');
    clock.advance(2000);
    clock.advance(20_000); // two intervals in rotation forgive both
    detector.failure(e, true);
    assert.equal(e.ejectedUntil - clock.now(), 1000);
  });

  it('never ejects more than maxEjectionPercent, but always allows one', () => {
    const { endpoints, detector, events } = setup(4, { consecutiveErrors: 1, maxEjectionPercent: 10 });
    detector.failure(endpoints[0]!, true);
    detector.failure(endpoints[1]!, true);
    assert.equal(endpoints[0]!.ejected, true, 'one is always allowed');
    assert.equal(endpoints[1]!.ejected, false);
    assert.equal(detector.ejectionsPrevented, 1);
    assert.equal(events.at(-1)?.kind, 'not-ejected');

    const half = setup(4, { consecutiveErrors: 1, maxEjectionPercent: 50 });
    for (const e of half.endpoints) half.detector.failure(e, true);
    assert.equal(half.endpoints.filter((e) => e.ejected).length, 2);
  });

  it('maxEjectionPercent 0 never ejects', () => {
    const { endpoints, detector } = setup(2, { consecutiveErrors: 1, maxEjectionPercent: 0 });
    detector.failure(endpoints[0]!, true);
    assert.equal(endpoints[0]!.ejected, false);
  });

  it('the gateway-error trigger counts only gateway failures in a row', () => {
    const { endpoints, detector } = setup(2, {
      consecutiveErrors: 0,
      consecutiveGatewayErrors: 2,
      maxEjectionPercent: 100,
    });
    const e = endpoints[0]!;
    detector.observe(e, 503);
    detector.observe(e, 500); // a 5xx that is not a gateway error breaks the run
    detector.observe(e, 503);
    assert.equal(e.ejected, false);
    detector.failure(e, true);
    assert.equal(e.ejected, true);
  });

  it('stop() clears the ejection timers', () => {
    const { clock, endpoints, detector } = setup(2, { consecutiveErrors: 1, maxEjectionPercent: 100 });
    detector.failure(endpoints[0]!, true);
    assert.equal(clock.pending, 1);
    detector.stop();
    assert.equal(clock.pending, 0);
  });

  it('an endpoint taken over while ejected returns on the new detector when its time is up', () => {
    const { clock, endpoints, detector } = setup(3, {
      consecutiveErrors: 1,
      baseEjectionTime: '1s',
      maxEjectionPercent: 100,
    });
    const e = endpoints[0]!;
    detector.failure(e, true);
    assert.equal(e.ejected, true);
    clock.advance(400);
    // The service is replaced (an instance joined): a new detector over the same endpoints, the old one stopped.
    const successor = new OutlierDetector(detector.settings, endpoints, clock, () => {});
    detector.stop();
    assert.equal(successor.ejectedCount, 1, 'the ejection counts against the new max ejection percent');
    clock.advance(599);
    assert.equal(e.ejected, true);
    clock.advance(1);
    assert.equal(e.ejected, false, 'back after the rest of its ejection time');
    assert.equal(successor.ejectedCount, 0);
  });
});
