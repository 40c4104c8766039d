import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { RolloutSignals, TelemetryReport } from '../../api/mesh.ts';
import {
  DEFAULT_ROLLOUT_MAX_ERROR_RATE,
  DEFAULT_ROLLOUT_MIN_REQUESTS,
  DEFAULT_ROLLOUT_WATCH_MS,
} from '../../core/defaults.ts';
import { difference, judge, rolloutPolicy, selectCanaries, signalsOf, totalsOf } from './policy.ts';

const proxies = (n: number) => Array.from({ length: n }, (_, i) => `gw-${String(i + 1).padStart(2, '0')}`);

describe('canary selection', () => {
  it('takes the share rounded up, at least one and at most all', () => {
    assert.equal(selectCanaries(proxies(10), { percent: 10 }, 'v1').length, 1);
    assert.equal(selectCanaries(proxies(11), { percent: 10 }, 'v1').length, 2);
    assert.equal(selectCanaries(proxies(3), { percent: 1 }, 'v1').length, 1);
    assert.equal(selectCanaries(proxies(20), { percent: 25 }, 'v1').length, 5);
    assert.equal(selectCanaries(proxies(4), { percent: 100 }, 'v1').length, 4);
    assert.equal(selectCanaries(proxies(4), { count: 2 }, 'v1').length, 2);
    assert.equal(selectCanaries(proxies(4), { count: 9 }, 'v1').length, 4);
    assert.deepEqual(selectCanaries([], { percent: 50 }, 'v1'), []);
  });

  it('is deterministic for a change, whatever the order the proxies are listed in', () => {
    const all = proxies(30);
    const a = selectCanaries(all, { percent: 20 }, 'model-abc');
    const b = selectCanaries([...all].reverse(), { percent: 20 }, 'model-abc');
    assert.deepEqual(a, b);
    assert.deepEqual(a, [...a].sort(), 'sorted by id');
    for (const id of a) assert.ok(all.includes(id));
  });

  it('spreads different changes over different proxies', () => {
    const all = proxies(30);
    const seen = new Set<string>();
    for (let v = 0; v < 20; v++) for (const id of selectCanaries(all, { count: 1 }, `model-${v}`)) seen.add(id);
    // 20 draws of one among 30 by a hash: the first by name is not always picked.
    assert.ok(seen.size > 5, `only ${[...seen].join(', ')}`);
  });
});

describe('rollout options', () => {
  it('applies defaults and resolves units', () => {
    assert.deepEqual(rolloutPolicy({ canaryProxies: '10%' }), {
      share: { percent: 10 },
      shareText: '10%',
      watchMs: DEFAULT_ROLLOUT_WATCH_MS,
      errorRate: DEFAULT_ROLLOUT_MAX_ERROR_RATE,
      p99Ms: null,
      minRequests: DEFAULT_ROLLOUT_MIN_REQUESTS,
    });
    assert.deepEqual(
      rolloutPolicy({ canaryProxies: 2, watch: '1m', thresholds: { errorRate: 0, p99: '500ms', minRequests: 0 } }),
      { share: { count: 2 }, shareText: '2', watchMs: 60_000, errorRate: 0, p99Ms: 500, minRequests: 0 },
    );
  });

  it('says what is wrong', () => {
    assert.match(String(rolloutPolicy({ canaryProxies: '0%' })), /above 0%/);
    assert.match(String(rolloutPolicy({ canaryProxies: '100.5%' })), /at most 100%/);
    assert.match(String(rolloutPolicy({ canaryProxies: '10%', thresholds: { p99: '0' } })), /above 0/);
  });
});

const report = (since: number, series: [number, number, number[]][]): TelemetryReport => ({
  proxy: 'p',
  stream: 's',
  since,
  latencyBounds: [0.01, 0.1, 1],
  series: series.map(([requests, errors, latency], i) => ({
    route: `r${i}`,
    service: 'svc',
    requests,
    errors,
    clientErrors: 0,
    retries: 0,
    rateLimited: 0,
    latency,
  })),
  services: [],
  inflight: 0,
});

describe('signals from telemetry', () => {
  it('takes what a proxy served between two reports, over all its series', () => {
    const start = totalsOf(report(1, [[100, 1, [90, 10, 0, 0]]]));
    const end = totalsOf(
      report(1, [
        [150, 11, [130, 20, 0, 0]],
        [10, 0, [0, 0, 10, 0]],
      ]),
    );
    const d = difference(start, end);
    assert.equal(d.requests, 60);
    assert.equal(d.errors, 10);
    assert.deepEqual(d.latency, [40, 10, 10, 0]);
  });

  it('counts from zero when the counters restarted', () => {
    const d = difference(totalsOf(report(1, [[100, 5, [100, 0, 0, 0]]])), totalsOf(report(2, [[7, 1, [7, 0, 0, 0]]])));
    assert.equal(d.requests, 7);
    assert.equal(d.errors, 1);
  });

  it('sums proxies, with a p99 from the summed buckets', () => {
    const a = difference(totalsOf(report(1, [[0, 0, [0, 0, 0, 0]]])), totalsOf(report(1, [[100, 0, [100, 0, 0, 0]]])));
    const b = difference(totalsOf(report(1, [[0, 0, [0, 0, 0, 0]]])), totalsOf(report(1, [[100, 10, [0, 0, 100, 0]]])));
    const s = signalsOf([a, b]);
    assert.equal(s.proxies, 2);
    assert.equal(s.requests, 200);
    assert.equal(s.errorRate, 0.05);
    // Half the requests took 100 ms–1 s: the 99th percentile is inside that bucket.
    assert.ok(s.p99Ms! > 100 && s.p99Ms! <= 1000, String(s.p99Ms));
    assert.deepEqual(signalsOf([]), { proxies: 0, requests: 0, errors: 0, errorRate: null, p99Ms: null });
  });
});

const signals = (requests: number, errors: number, p99Ms: number | null = 20): RolloutSignals => ({
  proxies: 1,
  requests,
  errors,
  errorRate: requests > 0 ? errors / requests : null,
  p99Ms: requests > 0 ? p99Ms : null,
});
const policy = { errorRate: 0.05, p99Ms: 500, minRequests: 20 };

describe('the threshold decision', () => {
  it('rolls back at once when the canaries error rate crosses the threshold', () => {
    const v = judge(signals(40, 3), signals(100, 0), policy, false);
    assert.equal(v.action, 'rollback');
    assert.ok(v.action === 'rollback');
    assert.equal(v.metric, 'errorRate');
    assert.equal(v.value, 0.075);
    assert.equal(v.threshold, 0.05);
    assert.equal(v.reason, 'canary error rate 7.5% (3 of 40 requests) is above the threshold 5.0% (baseline 0.0%)');
  });

  it('an error rate at the threshold is not above it', () => {
    assert.deepEqual(judge(signals(40, 2), null, policy, false), { action: 'wait' });
  });

  it('rolls back when the canaries p99 crosses its threshold, and never judges latency without one', () => {
    const v = judge(signals(40, 0, 750), signals(40, 0, 30), policy, false);
    assert.ok(v.action === 'rollback');
    assert.equal(v.metric, 'p99Ms');
    assert.equal(v.value, 750);
    assert.match(
      v.reason,
      /canary p99 latency 750ms \(over 40 requests\) is above the threshold 500ms \(baseline 30ms\)/,
    );
    assert.equal(judge(signals(40, 0, 750), null, { ...policy, p99Ms: null }, true).action, 'promote');
  });

  it('waits for enough requests before judging', () => {
    assert.deepEqual(judge(signals(19, 19), null, policy, false), { action: 'wait' });
    assert.equal(judge(signals(20, 19), null, policy, false).action, 'rollback');
    // minRequests 0: the first request is enough, but no request is never a crossing.
    assert.equal(judge(signals(1, 1), null, { ...policy, minRequests: 0 }, false).action, 'rollback');
    assert.deepEqual(judge(signals(0, 0), null, { ...policy, minRequests: 0 }, false), { action: 'wait' });
  });

  it('errorRate 0 rolls back on any error', () => {
    assert.equal(judge(signals(1000, 1), null, { ...policy, errorRate: 0 }, false).action, 'rollback');
  });

  it('promotes at the end of the window when nothing crossed, saying so, also with too few requests', () => {
    const ok = judge(signals(50, 1, 40), signals(50, 0), policy, true);
    assert.ok(ok.action === 'promote');
    assert.equal(
      ok.reason,
      'the watch window passed with no threshold crossed: canary error rate 2.0% over 50 requests, p99 40ms',
    );
    const idle = judge(signals(3, 3), null, policy, true);
    assert.ok(idle.action === 'promote');
    assert.match(idle.reason, /served 3 requests, fewer than the 20 needed to judge/);
  });

  it('does not let the baseline decide: a failing baseline does not excuse failing canaries', () => {
    assert.equal(judge(signals(100, 50), signals(100, 60), policy, false).action, 'rollback');
    assert.equal(judge(signals(100, 0), signals(100, 60), policy, true).action, 'promote');
  });
});
