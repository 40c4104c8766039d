import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock } from '../../core/clock.ts';
import { AdaptiveConcurrency, adaptiveConcurrencySettings } from './adaptive-concurrency.ts';

const base = adaptiveConcurrencySettings({ minRttInterval: '0s', minRttRequests: 10, jitter: 0 });

/** Finishes `n` tries that each took `rttMs`, admitted one after another. */
function finish(ac: AdaptiveConcurrency, clock: ManualClock, n: number, rttMs: number): void {
  for (let i = 0; i < n; i++) {
    assert.ok(ac.tryAcquire(), 'a try under the limit is admitted');
    const at = clock.now();
    clock.advance(rttMs);
    ac.release(at);
  }
}

/** Keeps `inFlight` tries in flight for one sample interval, each taking `rttMs`, then recalculates. */
function interval(ac: AdaptiveConcurrency, clock: ManualClock, inFlight: number, rttMs: number): void {
  let admitted = 0;
  for (let i = 0; i < inFlight; i++) if (ac.tryAcquire()) admitted++;
  // Each try "took" rttMs: released with its start set back accordingly. All but the last end just
  // before the recalculation is due, the last one triggers it.
  clock.advance(Math.max(rttMs, ac.settings.sampleIntervalMs) - 1);
  for (let i = 1; i < admitted; i++) ac.release(clock.now() - rttMs);
  clock.advance(1);
  if (admitted > 0) ac.release(clock.now() - rttMs);
}

describe('adaptive concurrency', () => {
  it('holds the limit at minConcurrency until minRTT is measured, then sheds over it', () => {
    const clock = new ManualClock();
    const ac = new AdaptiveConcurrency(base, clock);
    assert.equal(ac.limit, 3);
    assert.ok(ac.tryAcquire() && ac.tryAcquire() && ac.tryAcquire());
    assert.equal(ac.tryAcquire(), false, 'the fourth try is over the limit');
    assert.equal(ac.shed, 1);
    clock.advance(20);
    for (let i = 0; i < 3; i++) ac.release(clock.now() - 20);
    assert.equal(ac.inFlight, 0);
    finish(ac, clock, 7, 20);
    assert.equal(ac.minRttMs, 20);
    assert.equal(ac.describe().measuringMinRtt, false);
  });

  it('grows while latency stays at minRTT and demand fills the limit, up to maxConcurrency', () => {
    const clock = new ManualClock();
    const ac = new AdaptiveConcurrency({ ...base, maxConcurrency: 50 }, clock);
    finish(ac, clock, 10, 20);
    const limits: number[] = [];
    for (let i = 0; i < 60; i++) {
      interval(ac, clock, ac.limit, 20);
      limits.push(ac.limit);
    }
    for (let i = 1; i < limits.length; i++) assert.ok(limits[i]! >= limits[i - 1]!, `never falls: ${limits}`);
    assert.equal(ac.limit, 50, 'reaches maxConcurrency');
    assert.ok(ac.lastGradient > 1);
  });

  it('does not grow while demand stays under half the limit (app-limited)', () => {
    const clock = new ManualClock();
    const ac = new AdaptiveConcurrency({ ...base, minConcurrency: 10 }, clock);
    finish(ac, clock, 10, 20);
    assert.equal(ac.limit, 10);
    for (let i = 0; i < 20; i++) interval(ac, clock, 4, 20);
    assert.equal(ac.limit, 10);
  });

  it('falls when latency rises past minRTT × (1 + tolerance), by at most half per step, to minConcurrency', () => {
    const clock = new ManualClock();
    const ac = new AdaptiveConcurrency({ ...base, maxConcurrency: 200, smoothing: 1 }, clock);
    finish(ac, clock, 10, 20);
    while (ac.limit < 200) interval(ac, clock, ac.limit, 20);
    interval(ac, clock, 200, 400);
    assert.equal(ac.lastGradient, 0.5, 'the gradient is clamped at 0.5');
    assert.equal(ac.limit, Math.floor(200 * 0.5 + Math.sqrt(200)));
    for (let i = 0; i < 20; i++) interval(ac, clock, ac.limit, 400);
    // L = 0.5 L + √L settles at 4; with no headroom the floor is minConcurrency.
    assert.equal(ac.limit, 4);
    // Within tolerance (25 %): no fall.
    const before = ac.limit;
    interval(ac, clock, ac.limit, 24);
    assert.ok(ac.limit >= before);
  });

  it('a configured headroom replaces √limit, and 0 means none', () => {
    const clock = new ManualClock();
    const ac = new AdaptiveConcurrency({ ...base, minConcurrency: 16, headroom: 0, smoothing: 1, tolerance: 0 }, clock);
    finish(ac, clock, 10, 20);
    interval(ac, clock, 16, 20);
    assert.equal(ac.limit, 16, 'gradient 1 and no headroom: unchanged');
    const ac2 = new AdaptiveConcurrency(
      { ...base, minConcurrency: 16, headroom: 4, smoothing: 1, tolerance: 0 },
      clock,
    );
    finish(ac2, clock, 10, 20);
    interval(ac2, clock, 16, 20);
    assert.equal(ac2.limit, 20);
  });

  it('measures minRTT again every minRttInterval, at minConcurrency, ignoring tries admitted before', () => {
    const clock = new ManualClock();
    const settings = adaptiveConcurrencySettings({ minRttInterval: '10s', minRttRequests: 10, jitter: 0 });
    assert.equal(settings.minRttIntervalMs, 10_000);
    const ac2 = new AdaptiveConcurrency(settings, clock);
    finish(ac2, clock, 10, 20);
    while (ac2.limit < 30) interval(ac2, clock, ac2.limit, 20);
    const grown = ac2.limit;
    // A try admitted before the next measurement, ending late and slow, is not part of it.
    assert.ok(ac2.tryAcquire());
    const oldStart = clock.now();
    clock.advance(10_000);
    interval(ac2, clock, 1, 20); // the interval is due: the measurement starts
    assert.equal(ac2.describe().measuringMinRtt, true);
    assert.equal(ac2.limit, 3);
    ac2.release(oldStart);
    finish(ac2, clock, 10, 30);
    assert.equal(ac2.minRttMs, 30, 'the new minRTT, without the stale try');
    assert.ok(ac2.limit >= grown - 1, `the limit from before the measurement is back: ${ac2.limit} vs ${grown}`);
  });

  it('settles below twice the capacity of a service that queues beyond K at once', () => {
    // A service that serves K tries at once in S ms each and queues the rest (FIFO), under demand that
    // always exceeds the limit. The limit must settle where latency stays within 2 × S.
    const K = 16;
    const S = 40;
    const clock = new ManualClock();
    const ac = new AdaptiveConcurrency(
      adaptiveConcurrencySettings({ minRttInterval: '0s', jitter: 0, minRttRequests: 20 }),
      clock,
    );
    const slots = new Array<number>(K).fill(0); // when each slot frees
    const inflight: { start: number; end: number }[] = [];
    const latencies: number[] = [];
    for (let t = 0; t < 20_000; t++) {
      // Finish what is due.
      for (let i = inflight.length - 1; i >= 0; i--) {
        const r = inflight[i]!;
        if (r.end <= clock.now()) {
          inflight.splice(i, 1);
          ac.release(r.start);
          if (t > 5_000) latencies.push(r.end - r.start);
        }
      }
      // Demand: 3 new tries every ms (≈ 3 × 16 / 40 ms × … far over capacity), admitted if under the limit.
      for (let n = 0; n < 3; n++) {
        if (!ac.tryAcquire()) continue;
        let slot = 0;
        for (let i = 1; i < K; i++) if (slots[i]! < slots[slot]!) slot = i;
        const begin = Math.max(clock.now(), slots[slot]!);
        slots[slot] = begin + S;
        inflight.push({ start: clock.now(), end: begin + S });
      }
      clock.advance(1);
    }
    latencies.sort((a, b) => a - b);
    const p99 = latencies[Math.floor(latencies.length * 0.99)]!;
    assert.ok(ac.limit >= K, `the limit keeps the service busy: ${ac.limit}`);
    assert.ok(ac.limit < 2 * K, `the limit stays under 2 × K: ${ac.limit}`);
    assert.ok(p99 < 2 * S, `p99 ${p99} ms stays under 2 × ${S} ms`);
    assert.ok(ac.shed > 0);
  });
});
