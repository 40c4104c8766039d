import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  backoffMs,
  compileRetryPolicy,
  FAILURE_CONNECT,
  FAILURE_REQUEST,
  FAILURE_RESET,
  isIdempotent,
  parseRetryAfter,
  RetryBudget,
  retriableFailure,
  retriableResponse,
  retryBudgetSettings,
} from './retry.ts';

const budget = () => new RetryBudget(retryBudgetSettings(undefined), 0);

describe('retry policy', () => {
  it('is null without retries anywhere, or with attempts 0', () => {
    assert.equal(compileRetryPolicy(undefined, undefined, budget()), null);
    assert.equal(compileRetryPolicy({ attempts: 3 }, { attempts: 0 }, budget()), null);
  });

  it('takes the route’s fields over the service’s, field by field', () => {
    const p = compileRetryPolicy(
      { attempts: 3, on: ['5xx'], perTryTimeout: '1s', backoff: { base: '10ms', max: '1s' } },
      { on: ['reset'] },
      budget(),
    )!;
    assert.equal(p.attempts, 3);
    assert.deepEqual(p.conditions, ['reset']);
    assert.equal(p.perTryTimeoutMs, 1000);
    assert.equal(p.backoffBaseMs, 10);
    assert.equal(p.backoffMaxMs, 1000);
  });

  it('has safe defaults: 2 retries on gateway errors, 25–250 ms backoff, 64 KiB replay, idempotent only', () => {
    const p = compileRetryPolicy({}, undefined, budget())!;
    assert.equal(p.attempts, 2);
    assert.deepEqual(p.conditions, ['gateway-error', 'refused-stream']);
    assert.equal(p.backoffBaseMs, 25);
    assert.equal(p.backoffMaxMs, 250);
    assert.equal(p.replayBufferBytes, 65536);
    assert.equal(p.nonIdempotent, false);
    assert.equal(p.maxRetryAfterMs, 10_000);
  });

  it('maps failures to conditions', () => {
    const connectOnly = compileRetryPolicy({ on: ['connect-failure'] }, undefined, budget())!;
    assert.equal(retriableFailure(connectOnly, FAILURE_CONNECT), true);
    assert.equal(retriableFailure(connectOnly, FAILURE_RESET), false);
    const reset = compileRetryPolicy({ on: ['reset'] }, undefined, budget())!;
    assert.equal(retriableFailure(reset, FAILURE_RESET), true);
    assert.equal(retriableFailure(reset, FAILURE_CONNECT), false);
    for (const on of ['gateway-error', '5xx'] as const) {
      const p = compileRetryPolicy({ on: [on] }, undefined, budget())!;
      assert.equal(retriableFailure(p, FAILURE_CONNECT), true, on);
      assert.equal(retriableFailure(p, FAILURE_RESET), true, on);
      assert.equal(retriableFailure(p, FAILURE_REQUEST), false, on);
    }
  });

  it('maps responses to conditions', () => {
    const gateway = compileRetryPolicy({ on: ['gateway-error'] }, undefined, budget())!;
    assert.deepEqual(
      [500, 502, 503, 504, 200, 429].map((s) => retriableResponse(gateway, s, {})),
      [false, true, true, true, false, false],
    );
    const any5xx = compileRetryPolicy({ on: ['5xx'] }, undefined, budget())!;
    assert.deepEqual(
      [500, 501, 599, 499].map((s) => retriableResponse(any5xx, s, {})),
      [true, true, true, false],
    );
    const codes = compileRetryPolicy({ on: ['retriable-status-codes'], statusCodes: [409, 429] }, undefined, budget())!;
    assert.deepEqual(
      [409, 429, 503].map((s) => retriableResponse(codes, s, {})),
      [true, true, false],
    );
    const grpc = compileRetryPolicy({ on: ['unavailable', 'resource-exhausted'] }, undefined, budget())!;
    assert.equal(retriableResponse(grpc, 200, { 'grpc-status': '14' }), true);
    assert.equal(retriableResponse(grpc, 200, { 'grpc-status': '8' }), true);
    assert.equal(retriableResponse(grpc, 200, { 'grpc-status': '13' }), false);
    assert.equal(retriableResponse(grpc, 200, {}), false);
  });

  it('knows the idempotent methods', () => {
    assert.deepEqual(['GET', 'HEAD', 'PUT', 'DELETE', 'OPTIONS', 'TRACE', 'POST', 'PATCH'].map(isIdempotent), [
      true,
      true,
      true,
      true,
      true,
      true,
      false,
      false,
    ]);
  });

  it('backs off exponentially with full jitter, capped', () => {
    const p = compileRetryPolicy({ backoff: { base: '100ms', max: '1s' } }, undefined, budget())!;
    assert.equal(
      backoffMs(p, 1, () => 0),
      0,
    );
    assert.equal(
      backoffMs(p, 1, () => 0.999),
      99,
    );
    assert.equal(
      backoffMs(p, 2, () => 0.999),
      199,
    );
    assert.equal(
      backoffMs(p, 3, () => 0.5),
      200,
    );
    assert.equal(
      backoffMs(p, 10, () => 0.999),
      999,
      'capped at max',
    );
    for (let i = 0; i < 1000; i++) {
      const ms = backoffMs(p, 4);
      assert.ok(ms >= 0 && ms < 800);
    }
  });

  it('reads Retry-After as seconds or an HTTP date', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    assert.equal(parseRetryAfter('3', now), 3000);
    assert.equal(parseRetryAfter(' 0 ', now), 0);
    assert.equal(parseRetryAfter('Thu, 01 Jan 2026 00:00:05 GMT', now), 5000);
    assert.equal(parseRetryAfter('Wed, 31 Dec 2025 23:00:00 GMT', now), 0, 'a past date: no wait');
    assert.equal(parseRetryAfter('soon', now), null);
    assert.equal(parseRetryAfter(undefined, now), null);
  });
});

describe('retry budget', () => {
  it('allows the minimum per second even without traffic', () => {
    const b = new RetryBudget({ percent: 20, minPerSecond: 5, windowMs: 10_000 }, 0);
    let allowed = 0;
    for (let i = 0; i < 100; i++) if (b.tryWithdraw(100)) allowed++;
    assert.equal(allowed, 5, 'one second’s worth at start');
    assert.equal(b.exhausted, 95);
  });

  it('keeps retries within percent of requests plus the minimum rate, over any stretch of time', () => {
    const percent = 20;
    const minPerSecond = 10;
    const b = new RetryBudget({ percent, minPerSecond, windowMs: 10_000 }, 0);
    // 30 s of 200 requests/s, each failing and asking for 3 retries.
    let requests = 0;
    let retries = 0;
    for (let ms = 0; ms < 30_000; ms += 5) {
      b.deposit(ms);
      requests++;
      for (let r = 0; r < 3; r++) if (b.tryWithdraw(ms)) retries++;
    }
    const bound = (requests * percent) / 100 + minPerSecond * 30;
    assert.ok(retries <= bound, `${retries} retries > ${bound}`);
    assert.ok(retries >= requests * 0.19, `${retries} retries: the budget should be used, not starved`);
  });

  it('forgets requests and retries older than the window', () => {
    const b = new RetryBudget({ percent: 10, minPerSecond: 0, windowMs: 1000 }, 0);
    for (let i = 0; i < 100; i++) b.deposit(0);
    let first = 0;
    while (b.tryWithdraw(50)) first++;
    assert.equal(first, 10);
    // 1.2 s later the old requests are gone: nothing left to retry on.
    assert.equal(b.tryWithdraw(1250), false);
    for (let i = 0; i < 50; i++) b.deposit(1300);
    let second = 0;
    while (b.tryWithdraw(1300)) second++;
    assert.equal(second, 5);
  });

  it('with percent 0 allows only the minimum rate', () => {
    const b = new RetryBudget({ percent: 0, minPerSecond: 2, windowMs: 1000 }, 0);
    for (let i = 0; i < 1000; i++) b.deposit(10);
    let allowed = 0;
    while (b.tryWithdraw(10)) allowed++;
    assert.equal(allowed, 2);
  });
});
