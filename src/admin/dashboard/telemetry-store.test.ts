/**
 * The telemetry store's arithmetic, on a manual clock: rates from differences of one proxy's reports,
 * summed over proxies; a restarted proxy's counters counted from zero; shares by version; edges from
 * the caller's side; percentiles interpolated inside a bucket; proxies that fell silent dropped. And
 * the proxy's ring of recent requests: the last N kept, the oldest overwritten.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock } from '../../../test/helpers/clock.ts';
import type { TelemetryReport } from '../../api/mesh.ts';
import { type FinishedStream, RecentRequests } from '../../observability/recent-requests.ts';
import { quantileMs, TelemetryStore } from './telemetry-store.ts';

const BOUNDS = [0.01, 0.1, 1];
type Body = Omit<TelemetryReport, 'proxy' | 'stream'>;

function report(
  since: number,
  series: { route: string; service: string; requests: number; errors?: number; fast?: number }[],
): Body {
  return {
    since,
    latencyBounds: BOUNDS,
    series: series.map((s) => ({
      route: s.route,
      service: s.service,
      requests: s.requests,
      errors: s.errors ?? 0,
      clientErrors: 0,
      retries: 0,
      rateLimited: 0,
      // Every request in the 10–100 ms bucket unless said otherwise.
      latency: [s.fast ?? 0, s.requests - (s.fast ?? 0), 0, 0],
    })),
    services: [],
    inflight: 0,
  };
}

describe('telemetry store', () => {
  it('turns cumulative reports into rates, shares, edges and percentiles', () => {
    const clock = new ManualClock();
    const store = new TelemetryStore({ intervalMs: 1000, clock });
    const gw = { id: 'gw', kind: 'gateway' as const, service: 'gateway' };
    const v1 = { id: 'a-1', kind: 'sidecar' as const, service: 'a', labels: { version: 'v1' } };
    const v2 = { id: 'a-2', kind: 'sidecar' as const, service: 'a', labels: { version: 'v2' } };
    for (let t = 0; t <= 10; t++) {
      // The gateway sends 30/s to a (route r), 10% failing; a's v1 serves 20/s, v2 10/s and calls b 5/s.
      store.ingest(gw, report(1, [{ route: 'r', service: 'a', requests: 30 * t, errors: 3 * t }]));
      store.ingest(
        v1,
        report(1, [
          { route: 'inbound', service: 'inbound.a', requests: 20 * t },
          { route: 'outbound.b', service: 'b', requests: 5 * t },
        ]),
      );
      // v2 restarted at t = 6: its counters start again from zero.
      store.ingest(
        v2,
        report(t < 6 ? 1 : 2, [
          { route: 'inbound', service: 'inbound.a', requests: t < 6 ? 10 * t : 10 * (t - 6) + 10 },
        ]),
      );
      clock.advance(1000);
    }
    const o = store.overview({ windowMs: 5000, services: ['a', 'b', 'c'] });
    const node = (id: string) => o.nodes.find((n) => n.id === id)!;
    const edge = (id: string) => o.edges.find((e) => e.id === id)!;
    assert.deepEqual(
      o.nodes.map((n) => n.id),
      ['clients', 'gateway:gateway', 'service:a', 'service:b', 'service:c'],
    );
    assert.equal(edge('gateway:gateway>service:a').stat.rps, 30);
    assert.equal(edge('gateway:gateway>service:a').stat.errorRate, 0.1);
    assert.equal(edge('service:a>service:b').stat.rps, 5);
    assert.equal(node('service:a').stat.rps, 30, 'v1 20/s + v2 10/s, the reset counted from zero');
    assert.deepEqual(
      node('service:a').versions.map((v) => [v.version, Math.round(v.share! * 100)]),
      [
        ['v1', 67],
        ['v2', 33],
      ],
    );
    // b has no sidecar: it is what its callers sent it.
    assert.equal(node('service:b').stat.rps, 5);
    assert.equal(node('service:c').stat.rps, 0);
    assert.equal(node('service:c').stat.p99Ms, null);
    // All in the 10–100 ms bucket: p50 halfway through it.
    assert.equal(Math.round(edge('gateway:gateway>service:a').stat.p50Ms!), 55);
    assert.deepEqual(
      o.routes.map((r) => [r.name, r.services, r.stat.rps]),
      [['r', ['a'], 30]],
    );
    assert.ok(node('service:a').history.rps.filter((v) => v !== null).length >= 8);

    // A minute of silence: every proxy leaves.
    clock.advance(61_000);
    assert.deepEqual(store.overview().nodes, []);
  });

  it('interpolates percentiles within a bucket, and caps past the last bound', () => {
    assert.equal(quantileMs([0.01, 0.1], [10, 0, 0], 0.5), 5);
    assert.equal(quantileMs([0.01, 0.1], [0, 0, 10], 0.99), 100);
    assert.equal(quantileMs([0.01, 0.1], [0, 0, 0], 0.5), null);
  });
});

describe('recent requests', () => {
  const ctx = (id: string, trace?: string): FinishedStream => ({
    requestId: id,
    traceId: trace,
    trace: trace ? { spanId: 'span' } : null,
    startEpochMs: 1,
    method: 'GET',
    host: 'h',
    path: '/p',
    route: { name: 'r' },
    serviceName: 's',
    destination: { subset: 'v1' },
    endpoint: { authority: '127.0.0.1:1' },
    status: 200,
    code: null,
    tries: 1,
  });

  it('keeps the last N, finds by request id or trace id, oldest first', () => {
    const ring = new RecentRequests(3);
    ring.add(ctx('a', 't1'), 1, -1);
    ring.add(ctx('b', 't1'), 2, 1);
    ring.add(ctx('c'), 3, 2);
    ring.add(ctx('d', 't1'), 4, 3);
    assert.deepEqual(ring.find(['a'], 10), [], 'overwritten');
    assert.deepEqual(
      ring.find(['t1'], 10).map((r) => r.requestId),
      ['b', 'd'],
    );
    const [c] = ring.find(['c'], 10);
    assert.deepEqual([c!.traceId, c!.spanId, c!.upstreamMs, c!.subset], [null, null, 2, 'v1']);
    assert.deepEqual(new RecentRequests(0).find(['a'], 1), []);
  });
});
